"""The claims registry (validated specs) and verdicts (the decision rule on per-seed values)."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from imbcl.report import registry as R
from imbcl.report import verdicts as V
from imbcl.report.stats import bootstrap_ci

ROOT = Path(__file__).resolve().parent.parent


def spec(**change) -> R.ClaimSpec:
    fields = {
        "id": "ch1.onset-order",
        "chapter": "ch1",
        "anchor": "ch1-claims",
        "paper": "Majority features are learned before minority ones.",
        "tested": "The minority onset step exceeds the majority onset step.",
        "statistic": "minority minus majority onset step, per seed (steps)",
        "direction": ">",
        "threshold": 0.0,
        "regime": "rho = 10, default recipe",
        "status": "reproduced",
        "min_seeds": 8,
    }
    return R.ClaimSpec(**(fields | change))


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    "change, message",
    [
        ({"chapter": "ch6", "id": "ch6.x", "anchor": "ch6-x"}, "chapter must be one of"),
        ({"id": "ch2.onset-order"}, "id must read 'ch1.<lower-case-words>'"),
        ({"id": "ch1.Onset_order"}, "id must read"),
        ({"anchor": "Claims"}, "anchor must be a MyST label 'ch1-"),
        ({"paper": "  "}, "paper must be a non-empty statement"),
        ({"regime": ""}, "regime must be a non-empty statement"),
        ({"direction": ">="}, "direction must be one of"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"threshold": "0.1"}, "threshold must be a number"),
        ({"direction": "within", "threshold": 0.0}, "'within' claim needs a threshold > 0"),
        ({"status": "passed"}, "status must be one of"),
        ({"min_seeds": 5}, "min_seeds must be an integer >= 6"),
    ],
)
def test_claim_spec_refuses_invalid_fields(change, message):
    with pytest.raises(ValueError, match=message):
        spec(**change)


def test_claim_spec_lists_every_problem_at_once():
    with pytest.raises(ValueError, match="direction.*; status"):
        spec(direction="=", status="done")


def test_asserted_unless_inconclusive():
    assert spec().asserted and spec(status="reproduced in a stated regime").asserted
    assert spec(status="not reproduced").asserted
    assert not spec(status="inconclusive").asserted


def test_registry_lookups_and_unique_ids():
    a, b = spec(), spec(id="ch2.cliff", chapter="ch2", anchor="ch2-claims")
    specs = R.validate([a, b])
    assert R.for_chapter("ch2", specs) == (b,) and R.for_chapter("ch3", specs) == ()
    assert R.by_id("ch1.onset-order", specs) is a
    with pytest.raises(KeyError, match=r"known: \['ch1.onset-order', 'ch2.cliff'\]"):
        R.by_id("ch1.missing", specs)
    with pytest.raises(ValueError, match=r"repeated: \['ch1.onset-order'\]"):
        R.validate([a, b, a])
    with pytest.raises(TypeError, match="must be ClaimSpec"):
        R.validate([dataclasses.asdict(a)])
    with pytest.raises(ValueError, match="chapter must be one of"):
        R.for_chapter("chapter 1", specs)


def test_registry_json_round_trips():
    specs = (
        spec(),
        spec(id="ch1.within", direction="within", threshold=0.05, status="inconclusive"),
    )
    records = json.loads(R.to_json(specs))
    assert [r["id"] for r in records] == ["ch1.onset-order", "ch1.within"]
    assert tuple(R.ClaimSpec(**r) for r in records) == specs


def _labels(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return set(re.findall(r"^\(([\w-]+)\)=\s*$", text, flags=re.M))


@pytest.mark.parametrize("claim", R.REGISTRY, ids=lambda c: c.id)
def test_every_registered_claim_points_at_a_label_of_its_chapter(claim):
    (notebook,) = sorted((ROOT / "notebooks").glob(f"{claim.chapter}_*.ipynb"))
    assert claim.anchor in _labels(notebook)


# ------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize(
    "direction, threshold, lo, hi, outcome",
    [
        (">", 0.0, 0.1, 0.5, "holds"),
        (">", 0.0, 0.0, 0.5, "undecided"),  # the interval must lie strictly beyond
        (">", 0.0, -0.5, -0.1, "fails"),
        ("<", 1.0, 0.2, 0.9, "holds"),
        ("<", 1.0, 0.2, 1.1, "undecided"),
        ("<", 1.0, 1.1, 1.5, "fails"),
        ("within", 0.1, -0.05, 0.08, "holds"),
        ("within", 0.1, -0.05, 0.2, "undecided"),
        ("within", 0.1, 0.15, 0.2, "fails"),
        ("within", 0.1, -0.3, -0.2, "fails"),
    ],
)
def test_decision_rule(direction, threshold, lo, hi, outcome):
    assert V.decide(direction, threshold, lo, hi) == outcome


def test_evaluate_a_claim_that_holds():
    values = np.random.default_rng(0).normal(1.0, 0.3, size=10)
    v = V.evaluate(spec(), values)
    assert (v.id, v.n, v.n_dropped, v.k, v.outcome) == ("ch1.onset-order", 10, 0, 10, "holds")
    assert (v.lo, v.hi) == bootstrap_ci(values)
    assert v.mean == pytest.approx(values.mean())
    assert v.sign_p == 1 / 1024


def test_evaluate_fails_and_undecided():
    rng = np.random.default_rng(1)
    assert V.evaluate(spec(), rng.normal(-1.0, 0.3, size=10)).outcome == "fails"
    assert V.evaluate(spec(), rng.normal(0.0, 1.0, size=10) - 0.05).outcome == "undecided"
    below = V.evaluate(spec(direction="<", threshold=2.0), rng.normal(1.0, 0.3, size=8))
    assert below.outcome == "holds" and below.k == 8 and below.sign_p == 1 / 256


def test_evaluate_within():
    small = spec(direction="within", threshold=0.2)
    values = [-0.05, 0.01, 0.02, 0.03, -0.01, 0.04, 0.02, 0.01]  # 6 of 8 above 0
    v = V.evaluate(small, values)
    assert v.outcome == "holds" and v.k == 8
    assert v.sign_p == 2 * (28 + 8 + 1) / 256  # two-sided about 0
    assert V.evaluate(small, np.add(values, 1.0)).outcome == "fails"


def test_evaluate_drops_and_counts_non_finite_and_refuses_too_few_seeds():
    values = np.r_[np.linspace(0.5, 1.5, 8), np.nan, np.inf]
    v = V.evaluate(spec(), values)
    assert (v.n, v.n_dropped) == (8, 2)
    assert V.seeds_text(v) == "8/8 (+2 not finite)"
    with pytest.raises(ValueError, match=r"ch1.onset-order: 7 finite .* at least 8 seeds"):
        V.evaluate(spec(), values[1:])
    with pytest.raises(ValueError, match="one value per seed"):
        V.evaluate(spec(), values.reshape(2, 5))


def _chapter():
    specs = (
        spec(),
        spec(id="ch1.gap", tested="The gap is below 2.", direction="<", threshold=2.0),
        spec(id="ch1.fragile", tested="An effect that did not survive.", status="inconclusive"),
    )
    rng = np.random.default_rng(3)
    values = {
        "ch1.onset-order": rng.normal(1.0, 0.3, 8),
        "ch1.gap": rng.normal(1.0, 0.3, 8),
        "ch1.fragile": rng.normal(0.0, 1.0, 8),
    }
    return specs, V.evaluate_all(specs, values)


def test_claims_table_rows_and_text():
    specs, verdicts = _chapter()
    table = V.claims_table(specs, verdicts)
    assert table.id.tolist() == [s.id for s in specs]
    row = table.iloc[1]
    v = verdicts["ch1.gap"]
    assert row["mean [95% CI]"] == f"{v.mean:.3g} [{v.lo:.3g}, {v.hi:.3g}]"
    assert (row.threshold, row.seeds, row.outcome) == ("< 2", "8/8", "holds")
    assert table.status.tolist() == ["reproduced", "reproduced", "inconclusive"]


def test_check_prints_at_book_width_and_passes_when_asserted_claims_hold(capsys):
    specs, verdicts = _chapter()
    assert verdicts["ch1.fragile"].outcome != "holds"  # inconclusive: shown, not asserted
    V.check(specs, verdicts)
    out = capsys.readouterr().out
    assert "ch1.fragile: UNDECIDED  (inconclusive)" in out
    assert max(len(line) for line in out.splitlines()) <= V.WIDTH


def test_check_names_every_asserted_claim_that_does_not_hold():
    specs, verdicts = _chapter()
    specs = specs[:2] + (spec(id="ch1.fragile", status="reproduced"),)
    verdicts["ch1.gap"] = dataclasses.replace(verdicts["ch1.gap"], outcome="fails")
    with pytest.raises(
        AssertionError, match=r"2 asserted .*: ch1.gap \(fails, must be holds\), ch1.fragile"
    ):
        V.check(specs, verdicts)


def test_a_claim_not_reproduced_must_fail_and_profiles_choose_what_is_asserted():
    specs, verdicts = _chapter()
    refuted = (spec(id="ch1.gap", status="not reproduced"),)
    with pytest.raises(AssertionError, match=r"ch1.gap \(holds, must be fails\)"):
        V.check(refuted, {"ch1.gap": verdicts["ch1.gap"]})
    failing = {"ch1.gap": dataclasses.replace(verdicts["ch1.gap"], outcome="fails")}
    V.check(refuted, failing)  # the paper's statement fails, as registered
    full_only = (spec(id="ch1.gap", status="reproduced", profiles=("full",)),)
    V.check(full_only, failing, profile="small")  # not asserted in the small profile
    assert V.verdict_lines(full_only, failing, "small") == "ch1.gap: not asserted"
    with pytest.raises(AssertionError):
        V.check(full_only, failing, profile="full")


def test_stable_means_no_single_seed_decides():
    claim = spec(id="ch1.gap", direction=">", threshold=0.0)
    steady = V.evaluate(claim, [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01])
    assert steady.outcome == "holds" and steady.stable
    # a mean barely clear of the threshold: leaving out one seed changes the outcome
    carried = V.evaluate(claim, [0.12, 0.1, 0.15, -0.05, 0.2, 0.02, 0.18, 0.08, 0.01])
    assert carried.outcome == "holds" and not carried.stable


def test_verdicts_must_match_the_claims():
    specs, verdicts = _chapter()
    with pytest.raises(KeyError, match=r"missing \['ch1.gap'\], unknown \[\]"):
        V.claims_table(specs, {k: v for k, v in verdicts.items() if k != "ch1.gap"})
    with pytest.raises(KeyError, match=r"unknown \['ch1.fragile'\]"):
        V.verdict_lines(specs[:2], verdicts)
    swapped = verdicts | {"ch1.gap": verdicts["ch1.fragile"]}
    with pytest.raises(ValueError, match=r"filed under another claim's id: \['ch1.gap'\]"):
        V.claims_table(specs, swapped)


def test_verdict_lines_are_stable_text():
    specs, verdicts = _chapter()
    assert V.verdict_lines(specs, verdicts) == (
        "ch1.onset-order: holds\nch1.gap: holds\nch1.fragile: not asserted"
    )
