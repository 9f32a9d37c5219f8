"""Tests of imbcl.report.ch2: Chapter 2's per-seed claims, figures, tables and glued numbers."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from imbcl.report import ch2, registry, stats, text, verdicts
from imbcl.studies import capacity as C
from tests.test_capacity import WIDTHS, _cell, _rows

matplotlib.use("Agg")


@pytest.fixture
def settings():
    return C.Settings.from_params("full", widths=",".join(map(str, WIDTHS)), n_seeds=6)


@pytest.fixture
def rows(settings):
    return _rows(settings, _cell)


@pytest.fixture
def three():
    return C.Settings.from_params("full", widths=",".join(map(str, WIDTHS)), n_seeds=3)


# ------------------------------------------------------------------ one statistic per seed
def test_claim_values_compute_each_registered_statistic_per_seed(three):
    values = ch2.claim_values(_rows(three, _cell), three)
    assert set(values) == {s.id for s in registry.for_chapter("ch2")}
    seeds = np.array(three.seeds)

    def gap(rho):  # mean over widths 32, 64 of (npf_min - 2) / 2
        return np.mean(
            [((m / 32) * (4 - np.log2(rho)) / 2 + seeds / 10 - 2) / 2 for m in WIDTHS], axis=0
        )

    np.testing.assert_allclose(values["ch2.balanced-control"], gap(1.0))
    np.testing.assert_allclose(values["ch2.fewer-neurons"], gap(4.0))
    np.testing.assert_allclose(values["ch2.fewer-neurons-near-cliff"], gap(8.0))
    np.testing.assert_allclose(values["ch2.decline"], [-1.0] * 3)
    cover_8 = np.minimum(1.0, 1.5 / 8 + seeds / 100)
    np.testing.assert_allclose(values["ch2.coverage-shrinks"], 1.0 - cover_8)
    np.testing.assert_allclose(values["ch2.cliff-not-width"], [64 / 512] * 3)  # widest only
    np.testing.assert_allclose(values["ch2.lower-penalty-learns"], [0.75 - 64 / 512] * 3)


def test_claim_values_follow_the_seed_order_and_mark_a_missing_seed_nan(three):
    rows = _rows(three, _cell)
    shuffled = rows.sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(
        ch2.claim_values(shuffled, three)["ch2.fewer-neurons"],
        ch2.claim_values(rows, three)["ch2.fewer-neurons"],
    )
    lost = rows[~((rows.seed == 1) & (rows.m == 64) & (rows.rho == 4.0))]
    out = ch2.claim_values(lost, three)
    assert (
        np.isnan(out["ch2.fewer-neurons"][1])
        and np.isfinite(out["ch2.fewer-neurons"][[0, 2]]).all()
    )
    assert np.isnan(out["ch2.decline"][1])
    assert np.isfinite(out["ch2.balanced-control"]).all()


def test_an_undefined_ratio_or_rank_gives_nan_not_a_number(three):
    def no_majority(rho, m, seed, wd):
        return _cell(rho, m, seed, wd) | ({"npf_maj": 0.0} if seed == 0 and rho == 4.0 else {})

    def flat_minority(rho, m, seed, wd):
        return _cell(rho, m, seed, wd) | ({"npf_min": 1.0} if seed == 2 else {})

    gaps = ch2.claim_values(_rows(three, no_majority), three)["ch2.fewer-neurons"]
    assert np.isnan(gaps[0]) and np.isfinite(gaps[1:]).all()
    ranks = ch2.claim_values(_rows(three, flat_minority), three)["ch2.decline"]
    assert np.isnan(ranks[2]) and np.isfinite(ranks[:2]).all()


def test_learned_control_pairs_the_arms_of_each_seed(three):
    table = ch2.learned_control(_rows(three, _cell), three)
    assert list(table.columns) == ["recipe", "control", "difference"]
    np.testing.assert_allclose(table.difference, [0.75 - 64 / 512] * 3)


def test_decline_is_the_spearman_correlation_of_each_seed_and_width(three):
    def cell(rho, m, seed, wd):  # minority counts 2, 3, 1, 0 over rho at m = 64, seed 1
        values = {1.0: 2.0, 4.0: 3.0, 8.0: 1.0, 16.0: 0.0}
        bumpy = m == 64 and seed == 1
        return _cell(rho, m, seed, wd) | ({"npf_min": values[rho]} if bumpy else {})

    found = ch2.decline(C.sweep_rows(_rows(three, cell), three))
    rhos = list(three.rhos)
    bumpy = stats.spearman(rhos, [2.0, 3.0, 1.0, 0.0])
    np.testing.assert_allclose(found, [-1.0, (-1.0 + bumpy) / 2, -1.0])


# ------------------------------------------------------------------ figures and tables


def test_figures_have_one_panel_per_width_and_labelled_axes(rows, settings):
    sweep, cell = C.sweep_rows(rows, settings), C.control_rows(rows, settings)
    for fig, n_axes in (
        (ch2.neurons_per_feature(sweep, settings), len(WIDTHS)),
        (ch2.coverage_and_learning(sweep, settings), 2),
        (ch2.control(cell), 2),
    ):
        axes = fig.axes
        assert len(axes) == n_axes
        assert all(ax.get_xlabel() for ax in axes) and axes[0].get_ylabel()
        matplotlib.pyplot.close(fig)


def test_dodge_centres_the_lines_on_the_true_position():
    assert ch2.dodge(0, 1) == 1.0
    factors = [ch2.dodge(k, 3) for k in range(3)]
    assert factors[1] == 1.0 and factors[0] * factors[2] == pytest.approx(1.0)
    assert factors[0] < 1.0 < factors[2]


def test_control_ticks_name_each_arms_penalty(rows, settings):
    cell = C.control_rows(rows, settings)
    assert ch2.arm_label(cell, "recipe") == "λ = 0.05 (recipe)"
    assert ch2.arm_label(cell, "control") == "λ = 0.005"


def test_ratio_table_counts_seeds_above_the_frequency_ratio(settings):
    def cell(rho, m, seed, wd):  # ratio (npf_min / 2) = 1 / rho + (seed - 2.5) / 100
        return _cell(rho, m, seed, wd) | {"npf_min": 2 * (1 / rho + (seed - 2.5) / 100)}

    table = ch2.ratio_table(C.sweep_rows(_rows(settings, cell), settings), settings)
    assert list(table.index) == list(settings.rhos)
    assert list(table.columns) == ["m = 32", "m = 64", "over the widths", "frequency ratio 1/ρ"]
    assert table.loc[4.0, "frequency ratio 1/ρ"] == "0.250"
    assert table.loc[4.0, "over the widths"].startswith("+0.25 [")
    assert all(text.endswith(" 3/6") for text in table["over the widths"])  # seeds 3, 4, 5


def test_claim_table_and_glued_numbers(rows, settings):
    values = ch2.claim_values(rows, settings)
    table = ch2.claim_table(values, settings)
    assert table.shape == (6, len(values)) and list(table.index) == list(settings.seeds)
    sweep, cell = C.sweep_rows(rows, settings), C.control_rows(rows, settings)
    glued = ch2.glued(sweep, cell)
    assert all(type(v) is float for v in glued.values())
    assert glued["ch2-control-control"] == 0.75
    assert glued["ch2-control-recipe"] == pytest.approx(64 / 512)
    assert glued["ch2-learned-16"] == pytest.approx(64 / 512)  # the widest width
    assert glued["ch2-covered-1"] == 1.0 and glued["ch2-learned-avg-4"] == 1.0
    assert glued["ch2-learned-16-narrowest"] == pytest.approx(32 / 512)
    assert glued["ch2-ratio-4-widest"] == pytest.approx(
        np.mean([(2 + s / 10) / 2 for s in range(6)])
    )
    # covered min(1, 1.5 / rho + seed / 100) against learned 1 below rho = 16, m / 512 at 16
    assert glued["ch2-covered-learned-gap"] == pytest.approx(1 - (1.5 / 8 + 0.025))
    ratio_4 = np.mean([((m / 32) * 2 / 2 + s / 10) / 2 for m in WIDTHS for s in range(6)])
    assert glued["ch2-ratio-4"] == pytest.approx(ratio_4)


def test_readings_cover_every_claim_and_outcome(rows, settings):
    assert set(ch2.READINGS) == {s.id for s in registry.for_chapter("ch2")}
    assert all(set(r) == set(verdicts.OUTCOMES) for r in ch2.READINGS.values())
    found = verdicts.evaluate_all(registry.for_chapter("ch2"), ch2.claim_values(rows, settings))
    read = text.outcome_phrases(found, ch2.READINGS, "reading")
    assert read["ch2.decline-reading"] == ch2.READINGS["ch2.decline"][found["ch2.decline"].outcome]
