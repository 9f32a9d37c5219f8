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
    perturbation suite (``make robustness``), which fails if this label is wrong; None where
    it is not judged: for an inconclusive claim (its outcome with the book's masks is not
    robust, so a change with the masks would not be either) and for Chapter 5 (no masks).
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
            status="reproduced",
            profiles=("full", "small"),
            mask_dependent=False,
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
            status="reproduced",
            profiles=("full", "small"),
            mask_dependent=False,
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
            status="reproduced",
            profiles=("full", "small"),
            mask_dependent=False,
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
            status="not reproduced",
            profiles=("full", "small"),
            mask_dependent=False,
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
        # -------------------------------------------------------------- Chapter 2: capacity
        ClaimSpec(
            id="ch2.balanced-control",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Without imbalance the two groups of features are served alike.",
            tested="At rho = 1 minority and majority features get the same number of neurons, "
            "within 15 %.",
            statistic="(neurons per minority feature - per majority feature) / per majority "
            "feature, averaged over the widths of the sweep, per seed",
            direction="within",
            threshold=0.15,
            regime=f"rho = 1; widths of the sweep; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch2.fewer-neurons",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Minority features cost capacity: fewer neurons specialise in a minority "
            "feature than in a majority feature.",
            tested="At rho = 4 fewer neurons specialise in each minority feature than in each "
            "majority feature.",
            statistic="(neurons per minority feature - per majority feature) / per majority "
            "feature, averaged over the widths of the sweep, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 4, minority features learnable; {_RECIPE}",
            status="not reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch2.fewer-neurons-near-cliff",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Minority features cost capacity: fewer neurons specialise in a minority "
            "feature than in a majority feature.",
            tested="At rho = 8 fewer neurons specialise in each minority feature than in each "
            "majority feature.",
            statistic="(neurons per minority feature - per majority feature) / per majority "
            "feature, averaged over the widths of the sweep, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 8, near the learnability cliff; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch2.decline",
            chapter="ch2",
            anchor="ch2-claims",
            paper="The more imbalanced the data, the fewer neurons a minority feature gets.",
            tested="The number of neurons per minority feature falls as rho grows.",
            statistic="Spearman correlation between rho and neurons per minority feature over "
            "the rho grid, averaged over the widths, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho from 1 to 16; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch2.coverage-shrinks",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Covering every minority feature takes a wider network under imbalance.",
            tested="At rho = 8 a smaller share of the minority features has a neuron of its own "
            "than at rho = 1, over the widths of the sweep.",
            statistic="coverage area at rho = 1 minus at rho = 8 (coverage area: the share of "
            "minority features with at least one specialised neuron, averaged over the "
            "widths), per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 1 against rho = 8; widths of the sweep; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch2.cliff-not-width",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Minority features cost capacity: a wide enough network serves them.",
            tested="At rho = 16 fewer than half of the minority features are learned even at "
            "the widest width.",
            statistic="share of minority features with max_i |A_ij| >= 0.2 at the widest width, "
            "per seed",
            direction="<",
            threshold=0.5,
            regime=f"rho = 16, past the learnability cliff; widest width; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch2.lower-penalty-learns",
            chapter="ch2",
            anchor="ch2-claims",
            paper="Minority features cost capacity: a wide enough network serves them.",
            tested="At rho = 16 and m = 64 a ten times smaller L2 penalty lets more minority "
            "features be learned than the recipe's penalty, on the same seeds.",
            statistic="share of minority features learned (max_i |A_ij| >= 0.2) with the "
            "smaller penalty minus with the recipe's, per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 16, m = 64; lambda = 0.005 against 0.05; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        # ------------------------------------------------------------ Chapter 3: separation
        ClaimSpec(
            id="ch3.control-probe",
            chapter="ch3",
            anchor="ch3-claims",
            paper="Without imbalance a linear read-out detects both groups of features alike.",
            tested="At rho = 1 the linear probe detects minority and majority features equally "
            "well, within 0.02 balanced accuracy.",
            statistic="probe balanced accuracy on majority minus on minority features at the "
            "end of training, per seed",
            direction="within",
            threshold=0.02,
            regime=f"rho = 1, sigma = 1; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch3.probe-gap",
            chapter="ch3",
            anchor="ch3-claims",
            paper="Minority features are detected less accurately by a linear read-out of the "
            "representation.",
            tested="At rho = 8 the linear probe detects minority features less accurately than "
            "majority features.",
            statistic="probe balanced accuracy on majority minus on minority features at the "
            "end of training, per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 8, sigma = 1, minority features learnable; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch3.probe-gap-grows",
            chapter="ch3",
            anchor="ch3-claims",
            paper="The gap between the groups grows with the imbalance ratio.",
            tested="The probe gap between majority and minority features grows with rho.",
            statistic="Spearman correlation between rho and the probe gap over the rho grid, "
            "per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho from 1 to 16, sigma = 1; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch3.minority-noisier",
            chapter="ch3",
            anchor="ch3-claims",
            paper="Neurons that learn a minority feature carry relatively more noise than "
            "those that learn a majority feature.",
            tested="At rho = 4 the best neuron for a minority feature has a lower "
            "feature-to-noise ratio than the best neuron for a majority feature.",
            statistic="log of (median over minority features of the best live neuron's "
            "|A_ij| / noise norm) over (the same for majority features), at the end, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 4, sigma = 1; {_RECIPE}",
            status="not reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch3.minority-noisier-stage-ii",
            chapter="ch3",
            anchor="ch3-claims",
            paper="Neurons that learn a minority feature carry relatively more noise than "
            "those that learn a majority feature.",
            tested="At rho = 8, in stage II (step 200), the best neuron for a minority feature "
            "has a lower feature-to-noise ratio than the best neuron for a majority feature.",
            statistic="log of (median over minority features of the best live neuron's "
            "|A_ij| / noise norm) over (the same for majority features), at step 200, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 8, sigma = 1, step 200; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch3.ratio-falls",
            chapter="ch3",
            anchor="ch3-claims",
            paper="The separation of minority features from noise degrades as the imbalance grows.",
            tested="The best neuron for a minority feature carries it less cleanly at rho = 8, "
            "the largest ratio of the grid where minority features are learnable, than at "
            "rho = 1.",
            statistic="log of the minority features' median best-neuron feature-to-noise ratio "
            "at rho = 8 over the same at rho = 1, at the end, per seed (across the cliff the "
            "ratio collapses with the features themselves, so the learnable range is compared)",
            direction="<",
            threshold=0.0,
            regime=f"rho = 1 against rho = 8, sigma = 1; {_RECIPE}",
            status="not reproduced",
            mask_dependent=True,
        ),
        # --------------------------------------------------------------- Chapter 4: pruning
        ClaimSpec(
            id="ch4.magnitude-helps-coordinate",
            chapter="ch4",
            anchor="ch4-claims",
            paper="Pruning the smallest weights in stage II and training on with the mask "
            "held restores the minority features.",
            tested="Magnitude pruning of half of the neuron weights' coordinates in stage II "
            "raises the minority probe, against the unpruned twin.",
            statistic="minority probe balanced accuracy, pruned minus unpruned twin (same "
            "seed, weights and data stream), per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 8, p = 0.5, coordinate basis, pruned in stage II; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch4.magnitude-helps-feature",
            chapter="ch4",
            anchor="ch4-claims",
            paper="Pruning the smallest weights in stage II and training on with the mask "
            "held restores the minority features.",
            tested="Magnitude pruning of half of the neuron weights' coefficients in the "
            "feature basis in stage II raises the minority probe, against the unpruned twin.",
            statistic="minority probe balanced accuracy, pruned minus unpruned twin, per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 8, p = 0.5, feature basis, pruned in stage II; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch4.too-much-hurts",
            chapter="ch4",
            anchor="ch4-claims",
            paper="Pruning too much removes the signal itself and hurts.",
            tested="Magnitude pruning at p = 0.97 helps the minority probe less than at p = 0.5.",
            statistic="paired change of the minority probe at p = 0.97 minus at p = 0.5 "
            "(feature basis, magnitude), per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 8, feature basis, pruned in stage II; {_RECIPE}",
            status="reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch4.magnitude-beats-random",
            chapter="ch4",
            anchor="ch4-claims",
            paper="Pruning works by removing the smallest, noise-dominated weights.",
            tested="In the sparse bases a magnitude mask helps the minority probe more than a "
            "random mask at the same rate.",
            statistic="paired change of the minority probe with a random mask minus with a "
            "magnitude mask, averaged over the sparse bases (feature, feature + random "
            "complement, estimated) and the rates 0.5 and 0.9, per seed",
            direction="<",
            threshold=0.0,
            regime=f"rho = 8, pruned in stage II; {_RECIPE}",
            status="not reproduced",
            mask_dependent=False,
        ),
        ClaimSpec(
            id="ch4.oracle-not-special",
            chapter="ch4",
            anchor="ch4-claims",
            paper="(a control of the book's, not a claim of the paper)",
            tested="Pruning in the dictionary's basis does what pruning in the features plus a "
            "random complement does, within 0.03.",
            statistic="paired change of the minority probe in the dictionary's basis minus in "
            "the features-plus-random-complement basis, averaged over modes and the rates 0.5 "
            "and 0.9, per seed",
            direction="within",
            threshold=0.03,
            regime=f"rho = 8, pruned in stage II; {_RECIPE}",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch4.updates-amplified",
            chapter="ch4",
            anchor="ch4-claims",
            paper="Pruning amplifies the updates along minority-feature directions relative to "
            "majority directions.",
            tested="Right after magnitude pruning in the feature basis, the minority / majority "
            "ratio of update sizes exceeds that of the unpruned twin.",
            statistic="log of (minority / majority mean |update of A_ij| per step over the 20 "
            "steps after pruning, kept coefficients of neurons alive at pruning) over the same "
            "for the unpruned twin, per seed",
            direction=">",
            threshold=0.0,
            regime=f"rho = 8, p = 0.5, feature basis, pruned in stage II; {_RECIPE}",
            status="inconclusive",
        ),
        # ------------------------------------------------------------ Chapter 5: real images
        ClaimSpec(
            id="ch5.pretraining-helps",
            chapter="ch5",
            anchor="ch5-claims",
            paper="(a sanity check of the book's, not a claim of the paper)",
            tested="Contrastive pre-training on long-tailed digits beats the untrained encoder "
            "under the full linear probe.",
            statistic="overall test accuracy (points), SimCLR minus the untrained encoder, "
            "per seed",
            direction=">",
            threshold=0.0,
            regime="digits-LT, rho = 50, full probe",
            status="reproduced in a stated regime",
        ),
        ClaimSpec(
            id="ch5.imbalance-costs-tail",
            chapter="ch5",
            anchor="ch5-claims",
            paper="Long-tailed pre-training hurts the representation of the rare classes.",
            tested="Pre-training on a balanced set of the same size raises the tail classes' "
            "few-shot accuracy over long-tailed pre-training.",
            statistic="tail accuracy (points, few-shot probe), balanced minus long-tailed "
            "pre-training, per seed",
            direction=">",
            threshold=0.0,
            regime="digits-LT, rho = 50, few-shot probe",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch5.prune-helps-tail",
            chapter="ch5",
            anchor="ch5-claims",
            paper="Magnitude pruning during contrastive pre-training on long-tailed data "
            "raises the accuracy on the rare classes.",
            tested="One-shot magnitude pruning of half of the neuron weights after the warm-up "
            "raises the tail classes' few-shot accuracy over plain SimCLR.",
            statistic="tail accuracy (points, few-shot probe), prune 0.5 minus SimCLR, per seed",
            direction=">",
            threshold=0.0,
            regime="digits-LT, rho = 50, few-shot probe",
            status="inconclusive",
        ),
        ClaimSpec(
            id="ch5.heavy-prune-hurts",
            chapter="ch5",
            anchor="ch5-claims",
            paper="Pruning too much removes the signal itself and hurts.",
            tested="One-shot magnitude pruning of 90 % of the neuron weights lowers the overall "
            "accuracy.",
            statistic="overall accuracy (points, full probe), prune 0.9 minus SimCLR, per seed",
            direction="<",
            threshold=0.0,
            regime="digits-LT, rho = 50, full probe",
            status="reproduced in a stated regime",
        ),
        ClaimSpec(
            id="ch5.sdclr-helps-tail",
            chapter="ch5",
            anchor="ch5-claims",
            paper="Contrasting a network with its pruned self (SDCLR) raises the accuracy on "
            "the rare classes.",
            tested="An SDCLR-style pruned branch at rate 0.5 raises the tail classes' few-shot "
            "accuracy over plain SimCLR.",
            statistic="tail accuracy (points, few-shot probe), SDCLR 0.5 minus SimCLR, per seed",
            direction=">",
            threshold=0.0,
            regime="digits-LT, rho = 50, few-shot probe",
            status="inconclusive",
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
