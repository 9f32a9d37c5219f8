"""What runs where a task computes: call its function, and (on a Dask worker) check the numeric
environment and write the result to the store the moment it is done."""

from __future__ import annotations

from imbcl.engine.runtime import configure_threads
from imbcl.sweep.env import NumericEnv
from imbcl.sweep.store import Store
from imbcl.sweep.task import Result, Task, resolve


class WorkerEnvError(RuntimeError):
    """A worker whose numeric environment differs from the one the task's key assumes."""


def note_causes(exc: BaseException) -> None:
    """Add the exception's cause chain as notes, which (unlike ``__cause__``) survive pickling
    from a worker to the client: ``"caused by FloatingPointError: loss is nan at step 12"``."""
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while cause is not None:
        exc.add_note(f"caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)


def compute(task: Task) -> Result:
    """``task.fn(**task.kwargs)``, checked to be a :class:`Result`; an exception leaves with its
    causes noted (:func:`note_causes`)."""
    fn = resolve(task.fn)
    try:
        result = fn(**task.kwargs)
    except Exception as exc:
        note_causes(exc)
        raise
    if not isinstance(result, Result):
        raise TypeError(f"{task.fn} returned {type(result).__name__}, expected imbcl Result")
    return result


def worker_env() -> NumericEnv:
    """This worker's numeric environment, after applying imbcl's thread policy
    (``IMBCL_THREADS`` threads, default 1)."""
    configure_threads()
    return NumericEnv.local()


def execute(task: Task, key: str, env: NumericEnv, store_root: str) -> bool:
    """Compute ``task`` on a Dask worker and store its result under ``key``.

    Refuses (``WorkerEnvError``) when this worker's environment is not ``env``, the one in the
    key. Returns ``True`` when this call computed the result, ``False`` when the store already
    held it (another client or worker finished it first).
    """
    here = worker_env()
    if here != env:
        raise WorkerEnvError(
            f"this worker computes with {here.differences(env)} (worker != sweep): all workers "
            "of a sweep must share the client's imbcl source, library versions, CPU capability "
            "and IMBCL_THREADS; restart the workers after editing imbcl"
        )
    store = Store(store_root)
    if store.get(key) is not None:
        return False
    store.put(key, compute(task), task)
    return True
