"""The claims registry: every claim the book tests, as data, fixed before the run that tests it.

A claim names the paper's statement it tests, the statement we check (which may contradict
the paper), the statistic computed once per seed, the direction and threshold the mean over
seeds must clear, the regime where it is asserted, the smallest number of seeds, and a status
(reproduced, reproduced in a stated regime, not reproduced, inconclusive). A claim is
asserted, so that the build fails when it does not hold, unless its status is inconclusive:
a finding that did not survive the perturbation suite is still shown, with its numbers.
:mod:`imbcl.report.verdicts` evaluates claims on per-seed values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

CHAPTERS = ("ch1", "ch2", "ch3", "ch4", "ch5")
#: Profiles in which a claim can be asserted: the book's and the test suite's.
PROFILES = ("full", "small")
#: The outcome an asserted claim must have, by status (inconclusive claims are not asserted).
EXPECTED = {
    "reproduced": "holds",
    "reproduced in a stated regime": "holds",
    "not reproduced": "fails",
}
#: ">": the mean exceeds the threshold; "<": it is below; "within": |mean| < threshold.
DIRECTIONS = (">", "<", "within")
STATUSES = ("reproduced", "reproduced in a stated regime", "not reproduced", "inconclusive")
#: The fewest seeds a claim may rest on: the bootstrap interval's coverage was measured from 6
#: seeds up (tests/test_report_stats.py).
MIN_SEEDS = 6
_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_TEXT_FIELDS = ("paper", "tested", "statistic", "regime")


@dataclass(frozen=True)
class ClaimSpec:
    """One claim of the book, validated on construction.

    id: "<chapter>.<slug>", e.g. "ch1.onset-order". chapter: one of :data:`CHAPTERS`.
    anchor: the MyST label of the chapter section that computes it, "<chapter>-<slug>", e.g.
    "ch1-claims". paper: the paper's statement it tests (our paraphrase). tested: the
    statement we check. statistic: what is computed per seed, with units. direction,
    threshold: the mean over seeds must be > threshold, < threshold, or within (-threshold,
    threshold) ("within", threshold > 0). regime: where the claim is asserted. status: one of
    :data:`STATUSES`. min_seeds: the fewest finite per-seed values it may be evaluated on.
    profiles: where the claim is asserted ("full", the book; "small", the test suite), each
    checked by the perturbation suite. mask_dependent: whether its outcome changes with the
    masking granularity (one mask per sample instead of per token), as measured by the
    perturbation suite (``make robustness``), which fails if this label is wrong; None when
    not measured.
    """

    id: str
    chapter: str
    anchor: str
    paper: str
    tested: str
    statistic: str
    direction: str
    threshold: float
    regime: str
    status: str
    min_seeds: int = MIN_SEEDS
    profiles: tuple[str, ...] = ("full",)
    mask_dependent: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.profiles, list):  # from JSON
            object.__setattr__(self, "profiles", tuple(self.profiles))
        problems = list(_problems(self))
        if problems:
            raise ValueError(f"claim {self.id!r}: " + "; ".join(problems))

    @property
    def asserted(self) -> bool:
        """Whether the build fails when the claim does not hold (status not inconclusive)."""
        return self.status != "inconclusive"

    @property
    def expected(self) -> str | None:
        """The outcome the build requires: "holds" for a reproduced claim, "fails" for one
        that is not reproduced (the paper's statement fails robustly), None if inconclusive."""
        return EXPECTED.get(self.status)

    def asserted_in(self, profile: str) -> bool:
        """Whether the claim is asserted when the chapter runs in ``profile``."""
        return self.asserted and profile in self.profiles


def _problems(spec: ClaimSpec):
    """Yield a sentence per invalid field of ``spec``."""
    if spec.chapter not in CHAPTERS:
        yield f"chapter must be one of {CHAPTERS} (got {spec.chapter!r})"
    if not re.fullmatch(rf"{re.escape(spec.chapter)}\.{_SLUG}", str(spec.id)):
        yield f"id must read '{spec.chapter}.<lower-case-words>' (got {spec.id!r})"
    if not re.fullmatch(rf"{re.escape(spec.chapter)}-{_SLUG}", str(spec.anchor)):
        yield f"anchor must be a MyST label '{spec.chapter}-<lower-case-words>' (got {spec.anchor!r})"
    for field in _TEXT_FIELDS:
        value = getattr(spec, field)
        if not isinstance(value, str) or not value.strip():
            yield f"{field} must be a non-empty statement (got {value!r})"
    if spec.direction not in DIRECTIONS:
        yield f"direction must be one of {DIRECTIONS} (got {spec.direction!r})"
    if isinstance(spec.threshold, bool) or not isinstance(spec.threshold, int | float):
        yield f"threshold must be a number (got {spec.threshold!r})"
    elif not math.isfinite(spec.threshold):
        yield f"threshold must be finite (got {spec.threshold!r})"
    elif spec.direction == "within" and spec.threshold <= 0:
        yield f"a 'within' claim needs a threshold > 0 (got {spec.threshold!r})"
    if spec.status not in STATUSES:
        yield f"status must be one of {STATUSES} (got {spec.status!r})"
    if not spec.profiles or any(p not in PROFILES for p in spec.profiles):
        yield f"profiles must be a non-empty subset of {PROFILES} (got {spec.profiles!r})"
    if spec.mask_dependent not in (None, True, False):
        yield f"mask_dependent must be True, False or None (got {spec.mask_dependent!r})"
    if not isinstance(spec.min_seeds, int) or spec.min_seeds < MIN_SEEDS:
        yield f"min_seeds must be an integer >= {MIN_SEEDS} (got {spec.min_seeds!r})"


def validate(specs: Iterable[ClaimSpec]) -> tuple[ClaimSpec, ...]:
    """``specs`` as a tuple, after checking each is a ClaimSpec and the ids are unique."""
    specs = tuple(specs)
    wrong = [s for s in specs if not isinstance(s, ClaimSpec)]
    if wrong:
        raise TypeError(f"registry entries must be ClaimSpec (got {wrong[:3]})")
    ids = [s.id for s in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"claim ids must be unique; repeated: {repeated}")
    return specs


_RECIPE = "the book's recipe (1,000 steps of batch 128, one mask per token)"

#: Every claim of the book, in reading order. Thresholds and regimes were fixed before the
#: runs that test them; statuses come from the perturbation suite (``make robustness``).
REGISTRY: tuple[ClaimSpec, ...] = validate(
    (
        # ---------------------------------------------------------------- Chapter 1: stages
        ClaimSpec(
            id="ch1.onset-order",
            chapter="ch1",
            anchor="ch1-claims",
            paper="Every majority feature is learned before any minority feature.",
            tested="Every majority feature reaches the onset alignment before any minority "
            "feature does.",
            statistic="earliest minority onset minus latest majority onset (training steps; "
            "onset: first record with max_i |A_ij| >= 0.05), per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 4, minority features learnable; {_RECIPE}",
            status="inconclusive",
            profiles=("full", "small"),
        ),
        ClaimSpec(
            id="ch1.noise-grows-stage-i",
            chapter="ch1",
            anchor="ch1-claims",
            paper="In stage I the noise components of the neurons grow with the features.",
            tested="The mean noise norm of the neurons grows during stage I.",
            statistic="net log-growth rate of the mean noise norm over stage I (per 1,000 "
            "steps), per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 4; {_RECIPE}",
            status="inconclusive",
            profiles=("full", "small"),
        ),
        ClaimSpec(
            id="ch1.noise-stalls-stage-ii",
            chapter="ch1",
            anchor="ch1-claims",
            paper="In stage II the noise components stop growing.",
            tested="The growth of the mean noise norm slows at least tenfold from stage I to "
            "stage II.",
            statistic="log10(|stage II rate| / stage I rate) of the mean noise norm, per seed",
            direction="<",
            threshold=-1.0,
            regime=f"rho = 4; {_RECIPE}",
            status="inconclusive",
            profiles=("full", "small"),
        ),
        ClaimSpec(
            id="ch1.noise-falls-stage-iii",
            chapter="ch1",
            anchor="ch1-claims",
            paper="In stage III the rising bias suppresses the noise components.",
            tested="The noise norm of the neurons that survive to the end falls during stage III.",
            statistic="net log-growth rate over stage III of the mean noise norm of the neurons "
            "alive at the end (per 1,000 steps), per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 4; {_RECIPE}",
            status="inconclusive",
            profiles=("full", "small"),
        ),
        ClaimSpec(
            id="ch1.minority-smaller",
            chapter="ch1",
            anchor="ch1-claims",
            paper="At the end of training a minority feature is represented with a smaller "
            "alignment than a majority feature.",
            tested="The final best alignment of the minority features is below that of the "
            "majority features.",
            statistic="log(final minority / final majority best alignment), averaged over "
            "the last 100 steps, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 4, minority features learnable; {_RECIPE}",
            status="inconclusive",
            profiles=("full", "small"),
        ),
    )
)


def for_chapter(chapter: str, specs: Iterable[ClaimSpec] = REGISTRY) -> tuple[ClaimSpec, ...]:
    """The claims of ``chapter`` ("ch1".."ch5"), in registry order."""
    if chapter not in CHAPTERS:
        raise ValueError(f"chapter must be one of {CHAPTERS} (got {chapter!r})")
    return tuple(s for s in specs if s.chapter == chapter)


def by_id(claim_id: str, specs: Iterable[ClaimSpec] = REGISTRY) -> ClaimSpec:
    """The claim with id ``claim_id``; KeyError naming the known ids otherwise."""
    specs = tuple(specs)
    for spec in specs:
        if spec.id == claim_id:
            return spec
    raise KeyError(f"no claim {claim_id!r} (known: {[s.id for s in specs]})")


def to_records(specs: Iterable[ClaimSpec] = REGISTRY) -> list[dict]:
    """One dict per claim, fields in declaration order (the inverse of ``ClaimSpec(**d)``)."""
    return [dataclasses.asdict(s) for s in specs]


def to_json(specs: Iterable[ClaimSpec] = REGISTRY) -> str:
    """The registry as a JSON array of claims (see :func:`to_records`), indented."""
    return json.dumps(to_records(specs), indent=2, ensure_ascii=False, allow_nan=False)
