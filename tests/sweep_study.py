"""A stand-in study module for the command-line tests: ``python -m imbcl sweep
tests.sweep_study`` (the contract of the chapters' study modules: ``Settings.from_params`` and
``plan``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from imbcl.sweep import Task
from tests.sweep_tasks import simulate_tasks


@dataclass(frozen=True)
class Settings:
    """``n_seeds`` tasks of ``steps`` steps; ``sleep`` and ``log`` as in ``simulate``."""

    n_seeds: int
    steps: int = 5
    sleep: float = 0.0
    log: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise ValueError(f"n_seeds must be a positive int (got {self.n_seeds!r})")

    @classmethod
    def from_params(cls, profile: str, **overrides) -> Settings:
        base = {"full": cls(n_seeds=6), "small": cls(n_seeds=2)}[profile]
        return replace(base, **overrides)


def plan(settings: Settings) -> list[Task]:
    return simulate_tasks(
        range(settings.n_seeds), steps=settings.steps, sleep=settings.sleep, log=settings.log
    )
