"""The book's chapters as code: their study and report modules, and their claims evaluated
from the store.

Each chapter's study module exposes ``Settings.from_params(profile, **overrides)`` and
``plan(settings)`` (its tasks); its report module exposes ``claims_from_results(settings,
results)`` (one value per seed for each registered claim). The notebook, the scorecard, the
command line and the perturbation suite all go through these, so a chapter's verdicts are
computed one way only.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from imbcl import sweep
from imbcl.report.registry import CHAPTERS as CLAIM_CHAPTERS
from imbcl.report.registry import for_chapter
from imbcl.report.verdicts import Verdict, evaluate_all

#: Study module of each chapter name (the atlas has no registered claims).
CHAPTERS = {
    "ch1": "imbcl.studies.stages",
    "ch2": "imbcl.studies.capacity",
    "ch3": "imbcl.studies.separation",
    "ch4": "imbcl.studies.pruning",
    "ch5": "imbcl.images.study",
    "atlas": "imbcl.studies.atlas",
}
#: Report module of each chapter with registered claims: its ``claims_from_results``.
REPORTS = {
    "ch1": "imbcl.report.ch1",
    "ch2": "imbcl.report.ch2",
    "ch3": "imbcl.report.ch3",
    "ch4": "imbcl.report.ch4",
    "ch5": "imbcl.report.ch5",
}


def study_module(chapter: str) -> ModuleType:
    """The study module of a chapter name (:data:`CHAPTERS`) or of a dotted module path;
    ``ValueError`` if it is neither or lacks ``Settings``/``plan``."""
    if chapter in CHAPTERS:
        module_name = CHAPTERS[chapter]
    elif "." in chapter:
        module_name = chapter
    else:
        raise ValueError(
            f"unknown chapter {chapter!r}; valid: {', '.join(CHAPTERS)} (or a dotted module path)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"chapter {chapter!r}: cannot import {module_name} ({exc})") from exc
    settings = getattr(module, "Settings", None)
    if not dataclasses.is_dataclass(settings) or not callable(getattr(module, "plan", None)):
        raise ValueError(f"{module_name} must define a dataclass Settings and a function plan")
    return module


def report_module(chapter: str) -> ModuleType:
    """The report module of a chapter with registered claims (:data:`REPORTS`); ``ValueError``
    for any other name."""
    if chapter not in REPORTS:
        raise ValueError(f"chapter {chapter!r} has no claims; valid: {', '.join(REPORTS)}")
    return importlib.import_module(REPORTS[chapter])


def claim_values(chapter: str, profile: str = "full", scheduler=None, **overrides) -> dict:
    """{claim id: per-seed values} of ``chapter`` with its ``profile`` settings and
    ``overrides``: its study's plan is run through the sweep layer (read from the store when
    cached) and its report module's ``claims_from_results`` reads the values."""
    module = study_module(chapter)
    settings = module.Settings.from_params(profile, **overrides)
    results = sweep.run(module.plan(settings), scheduler=scheduler, name=chapter)
    return report_module(chapter).claims_from_results(settings, results)


def verdicts(profile: str = "full", scheduler=None, **overrides) -> dict[str, Verdict]:
    """{claim id: Verdict} of every registered claim of every chapter."""
    out: dict[str, Verdict] = {}
    for chapter in CLAIM_CHAPTERS:
        values = claim_values(chapter, profile, scheduler, **overrides)
        out |= evaluate_all(for_chapter(chapter), values)
    return out
