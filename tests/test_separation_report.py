"""Tests for imbcl.report.ch3 on synthetic tables: per-seed claims, figures, summary table,
numbers in prose."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from imbcl.report import ch3, verdicts
from imbcl.report.registry import for_chapter
from imbcl.studies import separation as S
from tests.test_separation import _frames, _spec

RHOS = (1.0, 4.0, 8.0, 16.0)
SEEDS = (0, 1, 2, 3, 4, 5)
STEPS = (0, 100, 200, 300)


def _tables():
    """A ratio table and a probe table at STEPS for RHOS x SEEDS at sigma = 1, plus rho = 2 at
    sigma = 2 probed at the end only; the minority ratio falls with rho, and at rho = 16 seed
    0 has no minority-specialised neuron."""
    rng = np.random.default_rng(0)
    ratio_rows, probe_rows = [], []
    cells = [(1.0, r) for r in RHOS] + [(2.0, 2.0)]
    for sigma, rho in cells:
        for seed in SEEDS:
            for step in STEPS:
                for group in S.GROUPS:
                    minority = group == "minority"
                    best = (4.0 / rho if minority else 3.0) + rng.uniform(0, 0.1)
                    n = 0 if (minority and rho == 16 and seed == 0) else 3
                    neuron = np.nan if n == 0 else best + 1
                    ratio_rows.append((step, rho, sigma, seed, group, best, neuron, n, 0.5))
                    if step >= 200 and (sigma == 1.0 or step == STEPS[-1]):
                        acc = 0.8 - (0.02 * rho if minority else 0) + rng.uniform(0, 0.01)
                        probe_rows.append((step, rho, sigma, seed, group, acc))
    columns = ["step", "rho", "sigma", "seed", "group"]
    ratios = pd.DataFrame(
        ratio_rows, columns=[*columns, "best_ratio", "neuron_ratio", "n_neurons", "align"]
    )
    probes = pd.DataFrame(probe_rows, columns=[*columns, "probe"])
    return ratios, probes


# ------------------------------------------------------------------ one statistic per seed
def test_claim_values():
    ratios, probes = _frames(lambda r, s: 4.0 / r + s, lambda r, s: 0.9 - 0.01 * r * (s + 1))
    values = ch3.claim_values(S.seed_table(ratios, probes))
    assert list(values) == [spec.id for spec in for_chapter("ch3")]
    np.testing.assert_allclose(values["ch3.control-probe"], [0.01, 0.02, 0.03])
    np.testing.assert_allclose(values["ch3.probe-gap"], [0.08, 0.16, 0.24])
    np.testing.assert_allclose(values["ch3.minority-noisier"], np.log([0.5, 1.0, 1.5]))
    stage_ii = np.log(np.array([0.5, 1.5, 2.5]) / 4)  # minority halved at step 200
    np.testing.assert_allclose(values["ch3.minority-noisier-stage-ii"], stage_ii)
    np.testing.assert_allclose(values["ch3.probe-gap-grows"], [1.0, 1.0, 1.0])
    # minority feature side at rho = 8 over rho = 1, at the end: (0.5 + s) / (4 + s)
    ratio = (0.5 + np.arange(3)) / (4.0 + np.arange(3))
    np.testing.assert_allclose(values["ch3.ratio-falls"], np.log(ratio))


def test_rank_trend_per_seed_and_nan_when_constant_or_missing():
    ratios, probes = _frames(
        lambda r, s: {1.0: 1.0, 4.0: 3.0, 8.0: 2.0}[r] if s else 1.0, lambda r, s: 0.5
    )
    seeds = S.seed_table(ratios, probes)
    trend = ch3.rank_trend(seeds, "best_minority")
    assert np.isnan(trend[0])  # constant over rho: no rank order
    assert trend[1] == pytest.approx(0.5) and trend[2] == pytest.approx(0.5)
    assert np.isnan(ch3.rank_trend(seeds, "probe_gap")).all()
    lost = seeds.drop(seeds.index[(seeds.rho == 4.0) & (seeds.seed == 2)])
    trend = ch3.rank_trend(lost, "best_minority")
    assert trend[1] == pytest.approx(0.5) and np.isnan(trend[2])


def test_log_change_per_seed_and_its_regimes():
    ratios, probes = _frames(lambda r, s: 4.0 / r + s, lambda r, s: 0.5)
    seeds = S.seed_table(ratios, probes)
    lost = seeds.drop(seeds.index[(seeds.rho == 1.0) & (seeds.seed == 0)])
    change = ch3.log_change(lost, "best_minority", 8.0, 1.0)
    assert np.isnan(change[0])
    np.testing.assert_allclose(change[1:], np.log([1.5 / 5.0, 2.5 / 6.0]))
    with pytest.raises(KeyError, match="no runs at rho = 16, sigma = 1"):
        ch3.log_change(seeds, "best_minority", 16.0, 1.0)


def test_statistics_need_the_claims_regimes():
    ratios, probes = _frames(lambda r, s: 1.0, lambda r, s: 0.5, rhos=(1.0, 2.0, 8.0))
    seeds = S.seed_table(ratios, probes)
    with pytest.raises(KeyError, match="no runs at rho = 4"):
        ch3.claim_values(seeds)


def test_claims_from_results_end_to_end():
    """Tiny runs long enough to hold the stage-II step: one finite value per seed per claim."""
    specs = [
        _spec(rho, seed, steps=220, record_every=20) for rho in S.CLAIM_RHOS for seed in (0, 1)
    ]
    results = [S.train_probed(specs, [100], 120)]
    values = ch3.claims_from_results(None, results)
    assert set(values) == {spec.id for spec in for_chapter("ch3")}
    for claim, v in values.items():
        assert v.shape == (2,), claim
    finite = ("ch3.control-probe", "ch3.minority-noisier", "ch3.minority-noisier-stage-ii")
    for claim in (*finite, "ch3.ratio-falls"):
        assert np.isfinite(values[claim]).all(), claim


# ------------------------------------------------------------------ figures and tables
def test_figures_draw_every_group():
    ratios, probes = _tables()
    seeds = S.seed_table(ratios, probes)
    fig = ch3.ratio_vs_rho(seeds)
    axes = fig.axes
    assert len(axes) == 3 and axes[0].get_xscale() == "log"
    labels = axes[0].get_legend_handles_labels()[1]
    assert labels == ["majority, σ = 1", "minority, σ = 1", "majority, σ = 2", "minority, σ = 2"]
    # neuron side: rho = 16 is left out for the minority (one seed has no such neuron)
    minority_line = axes[1].get_lines()[1]
    assert (
        np.isnan(minority_line.get_ydata()[-1])
        and np.isfinite(minority_line.get_ydata()[:-1]).all()
    )
    plt.close(fig)
    fig = ch3.over_time(ratios, probes, ch3.shown_rhos(RHOS))
    assert len(fig.axes) == 2 * 4
    plt.close(fig)
    fig = ch3.probe_vs_rho(seeds)
    assert fig.axes[1].get_ylabel() == "probe gap, majority − minority"
    plt.close(fig)


def test_summary_and_per_seed_tables():
    ratios, probes = _tables()
    seeds = S.seed_table(ratios, probes)
    table = ch3.summary_table(seeds, ["probe_gap", "neuron_minority"])
    assert list(table.index) == ["probe_gap", "neuron_minority"]
    assert len(table.columns) == len(RHOS) + 1
    assert table.loc["neuron_minority", (1.0, 16.0)].endswith("5/5")  # one seed left out
    values = ch3.claim_values(seeds)
    per_seed = ch3.per_seed_table(values, SEEDS)
    assert list(per_seed.index) == [*SEEDS, "mean"]
    assert per_seed.loc["mean", "ch3.probe-gap"] == pytest.approx(
        values["ch3.probe-gap"].mean(), abs=1e-3
    )


def test_glue_values_cover_the_prose():
    ratios, probes = _tables()
    seeds = S.seed_table(ratios, probes)
    found = verdicts.evaluate_all(for_chapter("ch3"), ch3.claim_values(seeds))
    glued = ch3.glue_values(seeds, probes, found)
    assert glued["ch3-ratio-falls-estimate"].startswith(f"{found['ch3.ratio-falls'].mean:.2f} [")
    assert glued["ch3-rho-max"] == "16" and glued["ch3-noisy-rho"] == "2"
    assert glued["ch3-recipe-best-minority"] == "not run"  # no rho = 2 at sigma = 1
    assert glued["ch3-probe-first-step"] == "200"
    assert glued["ch3-end-bias-recipe"] == "0.53" and glued["ch3-end-bias-noisy"] == "1.06"
    assert all(isinstance(v, str) and v for v in glued.values())


def test_ci_text():
    assert ch3.ci_text([np.nan, np.nan]) == "undefined"
    assert ch3.ci_text([2.0, np.nan]) == "2 (one seed)"
    text = ch3.ci_text([1.0, 2.0, 3.0, 4.0])
    assert text.startswith("2.5 [") and text.endswith("]")
