"""A stand-in study module for the command-line tests: ``python -m imbcl sweep
tests.sweep_study`` (the contract of the chapters' study modules: ``Settings.from_params`` and
``plan``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from imbcl.engine.config import validated_field
from imbcl.engine.settings import StudySettings
from imbcl.sweep import Task
from tests.sweep_tasks import simulate_tasks


@dataclass(frozen=True)
class Settings(StudySettings):
    """``n_seeds`` tasks of ``steps`` steps; ``sleep`` and ``log`` as in ``simulate``."""

    PROFILES: ClassVar = {"full": {"n_seeds": 6}, "small": {"n_seeds": 2}}

    steps: int = validated_field(5, lo=1, doc="steps of each simulated task")
    sleep: float = validated_field(0.0, lo=0, doc="seconds each task sleeps")
    log: str = validated_field("", doc="file each task appends its label to")


def plan(settings: Settings) -> list[Task]:
    return simulate_tasks(
        settings.seeds, steps=settings.steps, sleep=settings.sleep, log=settings.log
    )
