"""The book's chapters as code: their study modules, and their claims evaluated from the store.

Each chapter's study module exposes ``Settings.from_params(profile, **overrides)``,
``plan(settings)`` (its tasks) and ``claims_from_results(settings, results)`` (one value per
seed for each registered claim). The notebook, the scorecard, the command line and the
perturbation suite all go through these, so a chapter's verdicts are computed one way only.
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


def claim_values(chapter: str, profile: str = "full", scheduler=None, **overrides) -> dict:
    """{claim id: per-seed values} of ``chapter`` with its ``profile`` settings and
    ``overrides``: its plan is run through the sweep layer (read from the store when cached)."""
    module = study_module(chapter)
    settings = module.Settings.from_params(profile, **overrides)
    results = sweep.run(module.plan(settings), scheduler=scheduler, name=chapter)
    return module.claims_from_results(settings, results)


def verdicts(profile: str = "full", scheduler=None, **overrides) -> dict[str, Verdict]:
    """{claim id: Verdict} of every registered claim of every chapter."""
    out: dict[str, Verdict] = {}
    for chapter in CLAIM_CHAPTERS:
        values = claim_values(chapter, profile, scheduler, **overrides)
        out |= evaluate_all(for_chapter(chapter), values)
    return out
