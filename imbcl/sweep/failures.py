"""Failed tasks: what failed (the task's spec) and why (the exception, with its causes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from imbcl.sweep.task import Task, canonical_json

FAILURE_COLUMNS = ("label", "fn", "kwargs", "error", "message", "traceback")


@dataclass(frozen=True)
class Failure:
    """One failed task. ``kwargs``: canonical JSON; ``error``: exception class name (e.g.
    ``"DivergenceError"``, ``"KilledWorker"``); ``message``: its message, with its causes."""

    label: str
    fn: str
    kwargs: str
    error: str
    message: str
    traceback: str

    @classmethod
    def of(cls, task: Task, exc: BaseException, tb: str = "") -> Failure:
        """The failure of ``task`` by ``exc``; ``tb``: the traceback text, if known."""
        return cls(
            label=task.label,
            fn=task.fn,
            kwargs=canonical_json(task.kwargs),
            error=type(exc).__name__,
            message="\n".join([str(exc), *getattr(exc, "__notes__", ())]),
            traceback=tb,
        )

    def describe(self) -> str:
        """Two lines or more: ``- label: fn(kwargs)`` then the exception and its causes."""
        detail = "\n".join(f"    {line}" for line in f"{self.error}: {self.message}".splitlines())
        return f"- {self.label}: {self.fn}(**{self.kwargs})\n{detail}"


def failures_table(failures: list[Failure]) -> pd.DataFrame:
    """One row per failure, columns :data:`FAILURE_COLUMNS`."""
    return pd.DataFrame([asdict(f) for f in failures], columns=list(FAILURE_COLUMNS))


class SweepError(RuntimeError):
    """Tasks of a sweep failed; the others completed and are stored.

    ``failures``: the table of :func:`failures_table`.
    """

    def __init__(self, name: str, n_tasks: int, failures: list[Failure]) -> None:
        self.failures = failures_table(failures)
        lines = [f"{len(failures)} of {n_tasks} tasks of sweep {name!r} failed:"]
        lines += [f.describe() for f in failures]
        super().__init__("\n".join(lines))
