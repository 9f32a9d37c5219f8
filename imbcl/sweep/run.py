"""``run``: a list of tasks in, their results out, in task order; every result through the store.

Cached tasks are read from the store and never recomputed. The others run on Dask (or in this
process); each is written to the store by whoever computed it, the moment it is done, so a
killed client or worker loses only the tasks in flight, and re-running the same call computes
only the missing ones.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
from distributed import Client, as_completed

from imbcl.sweep.cluster import (
    IN_PROCESS,
    connect,
    default_client,
    worker_threads,
    workers_env,
)
from imbcl.sweep.env import NumericEnv
from imbcl.sweep.failures import Failure, SweepError, failures_table
from imbcl.sweep.progress import Progress, bar_enabled
from imbcl.sweep.store import Store
from imbcl.sweep.task import Result, Task, resolve
from imbcl.sweep.worker import compute, execute

ERRORS = ("raise", "collect")


class StoreNotSharedError(RuntimeError):
    """A worker stored a result that this process cannot read back."""


class Results(list):
    """``run``'s return value: per task, in task order, its :class:`Result` (``None`` where it
    failed, with ``errors="collect"``).

    ``status``: per task, ``"cached"``, ``"computed"`` or ``"failed"``; ``failures``: one row
    per failed task (label, fn, kwargs, error, message, traceback).
    """

    def __init__(
        self, results: list[Result | None], status: list[str], failures: pd.DataFrame
    ) -> None:
        super().__init__(results)
        self.status = status
        self.failures = failures


def run(
    tasks: Sequence[Task],
    *,
    store: Store | str | os.PathLike | None = None,
    scheduler: object = None,
    progress: bool | None = None,
    name: str | None = None,
    retries: int = 0,
    errors: str = "raise",
) -> Results:
    """Results of ``tasks``, in order, from the store or computed (and stored).

    ``store``: a :class:`Store` or its root (default :func:`imbcl.sweep.store.default_root`).
    ``scheduler``: where to compute (see :mod:`imbcl.sweep.cluster`; default env
    ``IMBCL_SCHEDULER``, else this process's local cluster). ``progress``: draw a bar (default
    env ``IMBCL_PROGRESS``, on). ``name``: the sweep's label in progress and errors (e.g.
    ``"ch2"``). ``retries``: extra attempts for a task that raises (a task whose worker dies is
    rescheduled by Dask regardless, up to ``distributed.scheduler.allowed-failures`` times).
    ``errors``: ``"raise"`` raises :class:`SweepError` listing every failed task once all tasks
    have finished; ``"collect"`` returns ``None`` in their slots and lists them in
    ``Results.failures``.
    """
    tasks, name = checked_arguments(tasks, name, retries, errors)
    store = store if isinstance(store, Store) else Store(store)
    store.remove_stale_temps()

    env, get_client = backend(scheduler)
    keys = [task.key(env) for task in tasks]
    unique = dict(zip(keys, tasks, strict=True))
    found = {key: store.get(key) for key in unique}
    missing = {key: task for key, task in unique.items() if found[key] is None}
    outcomes: dict[str, Result | Failure] = {k: r for k, r in found.items() if r is not None}

    meter = Progress(name, len(unique), len(outcomes), bar_enabled(progress))
    try:
        if missing:
            stream = (
                in_process(missing, store, retries)
                if get_client is None
                else on_dask(get_client(), missing, env, store, retries)
            )
            for key, outcome in stream:
                outcomes[key] = outcome
                meter.update(failed=isinstance(outcome, Failure))
    finally:
        meter.close()

    failures = [outcomes[k] for k in unique if isinstance(outcomes[k], Failure)]
    if failures and errors == "raise":
        raise SweepError(name, len(unique), failures)
    return in_task_order(keys, outcomes, set(missing), failures)


def checked_arguments(
    tasks: Sequence[Task], name: str | None, retries: int, errors: str
) -> tuple[list[Task], str]:
    """The tasks as a list and the sweep's name, after checking every argument of :func:`run`
    (including that each task's function imports) before any compute."""
    tasks = list(tasks)
    bad = [i for i, t in enumerate(tasks) if not isinstance(t, Task)]
    if bad:
        raise TypeError(f"tasks[{bad[0]}] is a {type(tasks[bad[0]]).__name__}, expected Task")
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS} (got {errors!r})")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be an int >= 0 (got {retries!r})")
    name = "sweep" if name is None else name
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str (got {name!r})")
    for fn in sorted({t.fn for t in tasks}):
        resolve(fn)
    return tasks, name


def in_task_order(
    keys: list[str],
    outcomes: dict[str, Result | Failure],
    computed: set[str],
    failures: list[Failure],
) -> Results:
    """One result (``None`` if failed) and one status per task key, in order."""
    failed = {k for k, o in outcomes.items() if isinstance(o, Failure)}
    status = [
        "failed" if k in failed else ("computed" if k in computed else "cached") for k in keys
    ]
    results = [None if k in failed else outcomes[k] for k in keys]
    return Results(results, status, failures_table(failures))


def backend(scheduler: object) -> tuple[NumericEnv, Callable[[], Client] | None]:
    """The numeric environment the keys assume, and how to get a Dask client (``None``: run in
    this process).

    The default local cluster is started only when a task is missing: its workers are this
    machine's processes with this interpreter and source, so their environment is this
    process's with the workers' thread count (each task verifies it on its worker).
    """
    spec = scheduler if scheduler is not None else (os.environ.get("IMBCL_SCHEDULER") or None)
    if spec == IN_PROCESS:
        return NumericEnv.local(), None
    if spec is None:
        return NumericEnv.local(threads=worker_threads()), default_client
    client = connect(spec)
    return workers_env(client), lambda: client


def in_process(
    missing: dict[str, Task], store: Store, retries: int
) -> Iterator[tuple[str, Result | Failure]]:
    """Compute and store each task here, one after the other."""
    for key, task in missing.items():
        yield key, compute_here(task, key, store, retries)


def compute_here(task: Task, key: str, store: Store, retries: int) -> Result | Failure:
    """The stored result of ``task`` computed in this process, or its last failure after
    ``1 + retries`` attempts."""
    for _ in range(retries + 1):
        try:
            store.put(key, compute(task), task)
        except Exception as exc:
            failure = Failure.of(task, exc, "".join(traceback.format_exception(exc)))
        else:
            return read_back(store, key, task)
    return failure


def on_dask(
    client: Client, missing: dict[str, Task], env: NumericEnv, store: Store, retries: int
) -> Iterator[tuple[str, Result | Failure]]:
    """Submit each task to Dask under its key (so clients asking for the same task share one
    computation); yield its outcome as it completes. Workers write the store."""
    root = str(store.root)
    futures = {
        client.submit(
            execute,
            task,
            key,
            env,
            root,
            key=f"{task.fn.rpartition(':')[2]}-{key}",
            retries=retries,
            pure=False,
        ): key
        for key, task in missing.items()
    }
    for future in as_completed(list(futures), loop=client.loop):
        key = futures.pop(future)
        task = missing[key]
        if future.status == "finished":
            outcome = read_back(store, key, task)
        elif future.cancelled():
            outcome = Failure.of(task, RuntimeError("cancelled (the scheduler lost the task)"))
        else:
            tb = future.traceback()
            outcome = Failure.of(task, future.exception(), "".join(traceback.format_tb(tb)))
        yield key, outcome


def read_back(store: Store, key: str, task: Task) -> Result:
    """The stored result of a just-computed task; :class:`StoreNotSharedError` if it is not
    there (workers and this process must see the same store)."""
    result = store.get(key)
    if result is None:
        raise StoreNotSharedError(
            f"task {task.label!r} was computed and stored under {Path(store.root) / key[:2]}, "
            "but this process cannot read it there: the store must be on a filesystem shared "
            "by the workers and this process (set IMBCL_STORE or --store)"
        )
    return result
