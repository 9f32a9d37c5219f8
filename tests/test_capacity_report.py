"""Tests of imbcl.report.ch2: Chapter 2's figures, tables and glued numbers."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from imbcl.report import ch2, registry, verdicts
from imbcl.studies import capacity as C
from tests.test_capacity import WIDTHS, _cell, _rows

matplotlib.use("Agg")


@pytest.fixture
def settings():
    return C.Settings.from_params("full", widths=",".join(map(str, WIDTHS)), n_seeds=6)


@pytest.fixture
def rows(settings):
    return _rows(settings, _cell)


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
    values = C.claim_values(rows, settings)
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
    found = verdicts.evaluate_all(registry.for_chapter("ch2"), C.claim_values(rows, settings))
    assert ch2.readings(found)["ch2.decline"] == ch2.READINGS["ch2.decline"]["holds"]
