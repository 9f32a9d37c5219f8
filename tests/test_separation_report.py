"""Tests for imbcl.report.ch3 on synthetic tables: figures, summary table, numbers in prose."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from imbcl.report import ch3, verdicts
from imbcl.report.registry import for_chapter
from imbcl.studies import separation as S

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
    values = S.claim_values(seeds)
    per_seed = ch3.per_seed_table(values, SEEDS)
    assert list(per_seed.index) == [*SEEDS, "mean"]
    assert per_seed.loc["mean", "ch3.probe-gap"] == pytest.approx(
        values["ch3.probe-gap"].mean(), abs=1e-3
    )


def test_glue_values_cover_the_prose():
    ratios, probes = _tables()
    seeds = S.seed_table(ratios, probes)
    found = verdicts.evaluate_all(for_chapter("ch3"), S.claim_values(seeds))
    glued = ch3.glue_values(seeds, probes, found)
    assert glued["ch3-ratio-falls-outcome"] == "holds"  # the minority ratio falls by construction
    assert glued["ch3-ratio-falls-seeds"] == "6 of 6"
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
