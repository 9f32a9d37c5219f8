"""Verdicts: a registry claim evaluated on one number per seed.

The decision rule is fixed for every claim: the 95 % studentized bootstrap interval of the
mean over seeds (:func:`imbcl.report.stats.bootstrap_ci`) must lie entirely beyond the
threshold: above it for ">", below it for "<", inside (-threshold, threshold) for "within".
The outcome is "holds" when it does, "fails" when the interval lies entirely on the other
side, and "undecided" otherwise. Alongside, each verdict reports the exact sign test, how
many seeds fall on the claimed side, and whether the outcome survives leaving out any one
seed (``stable``). :func:`check` prints a chapter's claims and fails on every claim asserted
in the profile whose outcome is not the one its status requires.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from imbcl.report.registry import ClaimSpec, for_chapter
from imbcl.report.stats import bootstrap_ci, sign_test

#: Confidence level of the decision rule; part of every claim, not a parameter.
LEVEL = 0.95
OUTCOMES = ("holds", "fails", "undecided")
#: Width of the printed claims (characters): the book's code-output width.
WIDTH = 88


@dataclass(frozen=True)
class Verdict:
    """A claim evaluated on per-seed values.

    n: finite per-seed values used; n_dropped: values left out as not finite. mean, lo, hi:
    the mean over seeds and its 95 % CI, in the claim statistic's units. k: seeds on the
    claimed side of the threshold (|value| < threshold for "within"). sign_p: exact sign test,
    one-sided in the claim's direction against the threshold (two-sided about 0 for
    "within"). outcome: one of :data:`OUTCOMES`. stable: the outcome is the same with any one
    seed left out (a jackknife over seeds), so no single seed decides it.
    """

    id: str
    n: int
    n_dropped: int
    mean: float
    lo: float
    hi: float
    k: int
    sign_p: float
    outcome: str
    stable: bool

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES} (got {self.outcome!r})")


def decide(direction: str, threshold: float, lo: float, hi: float) -> str:
    """'holds', 'fails' or 'undecided' for a CI (lo, hi) against a claim's threshold."""
    if direction == ">":
        return "holds" if lo > threshold else "fails" if hi < threshold else "undecided"
    if direction == "<":
        return "holds" if hi < threshold else "fails" if lo > threshold else "undecided"
    if direction == "within":
        if -threshold < lo and hi < threshold:
            return "holds"
        return "fails" if lo > threshold or hi < -threshold else "undecided"
    raise ValueError(f"unknown direction {direction!r}")


def _claimed_side(spec: ClaimSpec, x: np.ndarray) -> tuple[int, float]:
    """Seeds on the claimed side and the exact sign-test p in the claim's direction."""
    if spec.direction == ">":
        return int((x > spec.threshold).sum()), sign_test(x, "greater", spec.threshold).p
    if spec.direction == "<":
        return int((x < spec.threshold).sum()), sign_test(x, "less", spec.threshold).p
    return int((np.abs(x) < spec.threshold).sum()), sign_test(x, "two-sided", 0.0).p


def evaluate(spec: ClaimSpec, values) -> Verdict:
    """The verdict on ``spec`` from ``values``: (n_seeds,) one number per seed, in the units
    of ``spec.statistic``. Non-finite values are left out and counted; fewer than
    ``spec.min_seeds`` finite values are refused (the seed count is part of the claim)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{spec.id}: need one value per seed, shape (n,) (got {x.shape})")
    finite = x[np.isfinite(x)]
    if len(finite) < spec.min_seeds:
        raise ValueError(
            f"{spec.id}: {len(finite)} finite per-seed values ({len(x) - len(finite)} not "
            f"finite); the claim rests on at least {spec.min_seeds} seeds"
        )
    lo, hi = bootstrap_ci(finite, level=LEVEL, name=spec.id)
    outcome = decide(spec.direction, spec.threshold, lo, hi)
    k, p = _claimed_side(spec, finite)
    return Verdict(
        id=spec.id,
        n=len(finite),
        n_dropped=len(x) - len(finite),
        mean=float(finite.mean()),
        lo=lo,
        hi=hi,
        k=k,
        sign_p=p,
        outcome=outcome,
        stable=all(
            decide(spec.direction, spec.threshold, *bootstrap_ci(rest, LEVEL, name=spec.id))
            == outcome
            for rest in _leave_one_out(finite)
        ),
    )


def _leave_one_out(x: np.ndarray):
    """The n samples of x (n,) with one value left out each."""
    for i in range(len(x)):
        yield np.delete(x, i)


def evaluate_all(specs: Iterable[ClaimSpec], values: Mapping[str, object]) -> dict[str, Verdict]:
    """{id: :func:`evaluate`} for every claim in ``specs``; ``values`` maps each id to its
    per-seed values, and must name exactly those ids."""
    specs = tuple(specs)
    require_same_ids(specs, values, "values")
    return {s.id: evaluate(s, values[s.id]) for s in specs}


def require_same_ids(
    specs: tuple[ClaimSpec, ...], mapping: Mapping[str, object], what: str
) -> None:
    """Raise KeyError unless ``mapping`` has exactly the ids of ``specs``, and ValueError if a
    Verdict in it is filed under another id; ``what`` names the mapping in the message."""
    ids = [s.id for s in specs]
    missing = [i for i in ids if i not in mapping]
    extra = [i for i in mapping if i not in ids]
    if missing or extra:
        raise KeyError(f"{what} must cover exactly the claims: missing {missing}, unknown {extra}")
    wrong = [i for i, v in mapping.items() if isinstance(v, Verdict) and v.id != i]
    if wrong:
        raise ValueError(f"{what}: verdicts filed under another claim's id: {wrong}")


def threshold_text(spec: ClaimSpec) -> str:
    """The claim's condition on the mean, e.g. '> 0.1' or '|mean| < 0.05'."""
    if spec.direction == "within":
        return f"|mean| < {spec.threshold:g}"
    return f"{spec.direction} {spec.threshold:g}"


def estimate_text(v: Verdict) -> str:
    """'mean [lo, hi]' to 3 significant digits."""
    return f"{v.mean:.3g} [{v.lo:.3g}, {v.hi:.3g}]"


def seeds_text(v: Verdict) -> str:
    """'k/n' seeds on the claimed side, with the dropped ones if any: '7/8 (+1 not finite)'."""
    dropped = f" (+{v.n_dropped} not finite)" if v.n_dropped else ""
    return f"{v.k}/{v.n}{dropped}"


def claims_table(specs: Iterable[ClaimSpec], verdicts: Mapping[str, Verdict]) -> pd.DataFrame:
    """One row per claim, as text: id, tested statement, mean [95 % CI], threshold, n, seeds
    on the claimed side, sign-test p, outcome, status. ``verdicts`` maps id to Verdict and
    must cover exactly ``specs``."""
    specs = tuple(specs)
    require_same_ids(specs, verdicts, "verdicts")
    rows = []
    for s in specs:
        v = verdicts[s.id]
        rows.append(
            {
                "id": s.id,
                "tested": s.tested,
                "mean [95% CI]": estimate_text(v),
                "threshold": threshold_text(s),
                "n": v.n,
                "seeds": seeds_text(v),
                "sign p": f"{v.sign_p:.2g}",
                "outcome": v.outcome,
                "stable": "yes" if v.stable else "no",
                "status": s.status,
            }
        )
    return pd.DataFrame(rows)


def _claim_block(row: pd.Series) -> str:
    """One claim as a few lines at :data:`WIDTH` characters."""
    head = f"{row['id']}: {row['outcome'].upper()}  ({row['status']})"
    if row["stable"] == "no":
        head += "  [one seed left out changes it]"
    tested = textwrap.fill(row["tested"], WIDTH, initial_indent="  ", subsequent_indent="  ")
    numbers = (
        f"mean [95% CI] {row['mean [95% CI]']}, needs {row['threshold']}; "
        f"seeds on the claimed side {row['seeds']}; sign test p = {row['sign p']}"
    )
    numbers = textwrap.fill(numbers, WIDTH, initial_indent="  ", subsequent_indent="    ")
    return "\n".join([head, tested, numbers])


def check(
    specs: Iterable[ClaimSpec], verdicts: Mapping[str, Verdict], profile: str = "full"
) -> pd.DataFrame:
    """Print every claim (wrapped at :data:`WIDTH`), then raise AssertionError naming each
    claim asserted in ``profile`` whose outcome is not the one its status requires ("holds",
    or "fails" for a claim that is not reproduced). Returns :func:`claims_table`."""
    specs = tuple(specs)
    table = claims_table(specs, verdicts)
    print("\n\n".join(_claim_block(row) for _, row in table.iterrows()))
    failed = [
        f"{s.id} ({verdicts[s.id].outcome}, must be {s.expected})"
        for s in specs
        if s.asserted_in(profile) and verdicts[s.id].outcome != s.expected
    ]
    assert not failed, f"{len(failed)} asserted claim(s) off: {', '.join(failed)}"
    return table


def chapter_verdicts(
    chapter: str, values: Mapping[str, object], profile: str = "full"
) -> dict[str, Verdict]:
    """Evaluate, print and check (:func:`check`) every registered claim of ``chapter`` from
    its per-seed ``values`` ({claim id: values}); returns {claim id: Verdict}."""
    specs = for_chapter(chapter)
    verdicts = evaluate_all(specs, values)
    check(specs, verdicts, profile)
    return verdicts


def verdict_lines(
    specs: Iterable[ClaimSpec], verdicts: Mapping[str, Verdict], profile: str = "full"
) -> str:
    """Stable text for a ``# NBVAL_CHECK_OUTPUT`` cell: per claim its id and outcome, no
    numbers. A claim not asserted in ``profile`` reads 'not asserted': its outcome may differ
    between machines, which is why it is not asserted there."""
    specs = tuple(specs)
    require_same_ids(specs, verdicts, "verdicts")
    return "\n".join(
        f"{s.id}: {verdicts[s.id].outcome if s.asserted_in(profile) else 'not asserted'}"
        for s in specs
    )
