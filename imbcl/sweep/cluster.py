"""Where tasks run: this process, a local Dask cluster, or an existing Dask cluster.

``scheduler`` (a :func:`imbcl.sweep.run` parameter, else env ``IMBCL_SCHEDULER``) is one of

- ``None``: this process's own ``LocalCluster``, one single-threaded worker process per core
  (``IMBCL_WORKERS`` overrides the count), started on first need and closed at exit;
- ``"inprocess"``: serially in this process (tests, debugging);
- an address such as ``"tcp://host:8786"``: an existing scheduler (``dask scheduler``);
- a ``distributed.Client``, or a cluster object (``LocalCluster``, dask-jobqueue's
  ``SLURMCluster``, ...).

Workers get imbcl's thread policy: ``OMP_WAIT_POLICY=PASSIVE`` and ``IMBCL_THREADS`` (default
1) in their environment before torch loads (for workers this module starts; workers started
elsewhere need them in theirs), and every task applies ``IMBCL_THREADS``.
"""

from __future__ import annotations

import atexit
import os
import weakref

import dask
from distributed import Client, LocalCluster

from imbcl.sweep.env import NumericEnv, source_hash
from imbcl.sweep.worker import WorkerEnvError, worker_env

IN_PROCESS = "inprocess"
WAIT_FOR_WORKERS_S = 300.0

_connections: dict[str, Client] = {}
_default: dict[str, LocalCluster | Client] = {}
_worker_envs: weakref.WeakKeyDictionary[Client, NumericEnv] = weakref.WeakKeyDictionary()


def positive_int_env(name: str, default: int) -> int:
    """Env variable ``name`` as a positive int, ``default`` if unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer (got {raw!r})")
    return int(raw)


def worker_threads() -> int:
    """Torch threads per worker: ``IMBCL_THREADS``, default 1."""
    return positive_int_env("IMBCL_THREADS", 1)


def worker_count() -> int:
    """Workers of the local cluster: ``IMBCL_WORKERS``, default the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return positive_int_env("IMBCL_WORKERS", cores or 1)


def local_cluster(n_workers: int | None = None) -> LocalCluster:
    """A ``LocalCluster`` of ``n_workers`` (default :func:`worker_count`) single-threaded worker
    processes, no dashboard, imbcl's thread policy in their environment from the start.

    The variables go through Dask's ``distributed.nanny.pre-spawn-environ`` (set in this
    process's environment before each worker process is spawned, and again when a dead worker
    is restarted), as Dask itself does for ``OMP_NUM_THREADS``.
    """
    n = worker_count() if n_workers is None else n_workers
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_workers must be a positive int (got {n!r})")
    policy = {"OMP_WAIT_POLICY": "PASSIVE", "IMBCL_THREADS": str(worker_threads())}
    with dask.config.set(
        {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in policy.items()}
    ):
        return LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )


def default_client() -> Client:
    """The client of this process's own local cluster, started on the first call."""
    if "client" not in _default:
        _default["cluster"] = local_cluster()
        _default["client"] = Client(_default["cluster"], set_as_default=False)
    return _default["client"]


def connect(scheduler: object) -> Client:
    """A client for a scheduler address, a cluster object or a client (returned as is).

    Clients made here are kept per scheduler address and closed at exit.
    """
    if isinstance(scheduler, Client):
        return scheduler
    if isinstance(scheduler, str):
        if "://" not in scheduler:
            raise ValueError(
                f"scheduler must be {IN_PROCESS!r}, an address such as 'tcp://host:8786', a "
                f"distributed.Client or a cluster object (got {scheduler!r})"
            )
        address = scheduler
    elif isinstance(getattr(scheduler, "scheduler_address", None), str):
        address = scheduler.scheduler_address
    else:
        raise TypeError(
            f"scheduler must be {IN_PROCESS!r}, an address, a distributed.Client or a cluster "
            f"object with a scheduler_address (got {type(scheduler).__name__})"
        )
    client = _connections.get(address)
    if client is None or client.status in ("closing", "closed"):
        client = Client(scheduler, set_as_default=False)
        _connections[address] = client
    return client


def workers_env(client: Client) -> NumericEnv:
    """The numeric environment of the client's workers, asked once per client.

    Waits up to :data:`WAIT_FOR_WORKERS_S` for a first worker. Raises ``WorkerEnvError`` if the
    workers disagree, or run other imbcl source than this process.
    """
    if client in _worker_envs:
        return _worker_envs[client]
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError:
        raise TimeoutError(
            f"no Dask worker joined scheduler {client.scheduler.address} within "
            f"{WAIT_FOR_WORKERS_S:.0f} s: start workers with `dask worker <address> --nthreads 1`"
        ) from None
    by_worker = client.run(worker_env)
    distinct = set(by_worker.values())
    if len(distinct) > 1:
        lines = [f"{w}: {e.to_dict()}" for w, e in sorted(by_worker.items())]
        raise WorkerEnvError(
            "the workers' numeric environments differ, so their results would not be "
            "interchangeable; run a sweep on workers of one kind:\n" + "\n".join(lines)
        )
    (env,) = distinct
    if env.source != source_hash():
        raise WorkerEnvError(
            f"the workers of {client.scheduler.address} run other imbcl source than this "
            "process (a worker hashes the source once, when it first runs imbcl): restart them "
            "from this checkout"
        )
    _worker_envs[client] = env
    return env


def close() -> None:
    """Close the clients made here and this process's local cluster (also done at exit)."""
    for client in _connections.values():
        client.close()
    _connections.clear()
    if "client" in _default:
        _default.pop("client").close()
        _default.pop("cluster").close()


atexit.register(close)
