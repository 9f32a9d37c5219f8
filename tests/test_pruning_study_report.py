"""Tests for imbcl.report.ch4: Chapter 4's per-seed claims, paired tables and figures on known
tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from imbcl.report import ch4, registry  # noqa: E402
from imbcl.report.verdicts import Verdict  # noqa: E402
from imbcl.studies import pruning as ps  # noqa: E402

SETTINGS = [
    ps.TWIN,
    ps.PAPER,
    ps.Setting(0.5, "feature", "random"),
    ps.Setting(0.9, "feature_random", "random"),
    ps.Setting(0.9, "feature_noise", "random"),
]


def results_table(n_seeds: int = 6, rhos=(8.0, 4.0)) -> pd.DataFrame:
    """Every metric of a branch = twin (0.4 + 0.01 * seed) + offset[setting] at rho 8; at
    other rhos only the twin and the paper's setting."""
    offset = {s.label: 0.01 * i for i, s in enumerate(SETTINGS)}
    rows = []
    for rho in rhos:
        for seed in range(n_seeds if rho == 8.0 else 2):
            for s in SETTINGS if rho == 8.0 else SETTINGS[:2]:
                value = 0.4 + 0.01 * seed + offset[s.label]
                rows.append(
                    {
                        "rho": rho,
                        "t1": 170,
                        "seed": seed,
                        "basis": "none" if s.is_twin else s.basis,
                        "mode": "none" if s.is_twin else s.mode,
                        "rate": s.rate,
                        "setting": s.label,
                        **{m: value for m in ps.METRICS},
                        "log_amplification": np.nan if s.is_twin else 0.1 * seed,
                    }
                )
    return pd.DataFrame(rows)


def test_paired_changes_are_branch_minus_twin_of_the_same_seed():
    d = ch4.paired(results_table())
    assert ps.TWIN.label not in set(d.setting)
    np.testing.assert_allclose(d[d.setting == ps.PAPER.label].d_probe_min, 0.01)
    np.testing.assert_allclose(d[d.setting == SETTINGS[4].label].d_purity_maj, 0.04)


def test_map_table_cells_and_order():
    d = ch4.paired(results_table())
    table = ch4.map_table(d[d.rho == 8.0])
    assert list(table.index) == [s.label for s in SETTINGS[1:]]
    assert list(table.columns) == list(ch4.CHANGES.values())
    assert table.loc[ps.PAPER.label, "Δ minority probe"].startswith("+0.010 [")
    assert table.loc[ps.PAPER.label, "Δ minority probe"].endswith(" 6/6")


def test_twin_levels_per_rho():
    levels = ch4.twin_levels(results_table())
    assert list(levels.index) == [4.0, 8.0]
    assert list(levels.columns) == ["seeds", *ps.METRICS]
    assert levels.loc[8.0, "seeds"] == 6 and levels.loc[4.0, "seeds"] == 2
    assert levels.loc[8.0, "probe_min"] == "0.425 (0.400–0.450)"


def test_oracle_gain_against_the_control_of_the_same_mode_and_rate():
    d = ch4.paired(results_table())
    assert ch4.oracle_gain(d, SETTINGS[4].label) == pytest.approx(0.01)
    no_control = d[d.setting != SETTINGS[3].label]
    assert np.isnan(ch4.oracle_gain(no_control, SETTINGS[4].label))


def test_stage_table_counts_seeds_inside_stage_two():
    check = pd.DataFrame(
        {
            "rho": [8.0, 8.0, 8.0],
            "seed": [0, 1, 2],
            "t1": [170] * 3,
            "end of I": [12.0, 14.0, np.nan],
            "end of II": [320.0, 160.0, np.nan],
            "t1 in stage II": [True, False, False],
        }
    )
    row = ch4.stage_table(check).loc[8.0]
    assert (row.seeds, row["t1 inside stage II"]) == (3, 1)
    assert row["end of stage I"] == "12–14" and row["end of stage II"] == "160–320"


def test_stage_text_names_the_runs_outside_stage_ii():
    check = pd.DataFrame({"t1 in stage II": [True, True, False]})
    assert ch4.stage_counts(check) == {"ch4-inside": 2, "ch4-seeds-checked": 3}
    assert ch4.stage_text(check).startswith("only 2 of 3 seeds prune inside")
    assert ch4.stage_text(check.iloc[:2]).startswith("every seed of every cell")


def test_prose_words_follow_the_verdicts():
    def verdict(cid, outcome):
        return Verdict(cid, 6, 0, 0.1, 0.0, 0.2, 5, 0.1, outcome, True)

    found = {cid: verdict(cid, "fails") for cid in ch4.WORDS}
    table = results_table()
    phrases = ch4.prose(table, ch4.paired(table), 8.0, found)
    assert phrases["ch4.magnitude-helps-feature-word"] == "lowers"
    assert phrases["ch4-oracle-text"].startswith("`feature_noise")
    assert set(ch4.glued(table, ch4.paired(table), 8.0)) == {
        "ch4-twin-min",
        "ch4-twin-maj",
        "ch4-twin-sd",
    }


def test_figures_draw_every_setting():
    table = results_table()
    d = ch4.paired(table)
    main = d[d.rho == 8.0]
    fig = ch4.delta_vs_rate(main)
    assert len(fig.axes) == 3  # dictionary, features + random rest, features + noise
    fig = ch4.phase_diagram(table, d, ps.PAPER)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["4", "8"]
    fig = ch4.update_panel(table[table.rho == 8.0])
    assert [ax.get_title() for ax in fig.axes] == [ch4.BASES[b] for b in ps.FEATURE_FIRST]
    plt.close("all")


def test_no_interval_below_the_fewest_seeds():
    rows = pd.DataFrame({"rho": [4.0] * 5 + [8.0] * 6, "x": np.arange(11.0)})
    stats = ch4._mean_ci_by(rows, "rho", "x").set_index("rho")
    assert np.isnan(stats.loc[4.0, "lo"]) and stats.loc[4.0, "mean"] == 2.0
    assert stats.loc[8.0, "lo"] < 7.5 < stats.loc[8.0, "hi"]


def test_prose_texts():
    table = results_table()
    d = ch4.paired(table)
    assert ch4.phase_text(d, ps.PAPER) == (
        "ρ = 4: +0.010 (positive on 2 of 2 seeds); ρ = 8: +0.010 (positive on 6 of 6 seeds)"
    )
    # log amplification 0.1 * seed, seeds 0-5 at rho 8 and 0-1 at rho 4, for every setting
    main = table[table.rho == 8.0]
    assert (
        ch4.update_text(main)
        == "magnitude masks from +0.250 to +0.250; random masks from +0.250 to +0.250"
    )


# ------------------------------------------------------------------ one statistic per seed
def synthetic_cell(n_seeds: int = 6) -> pd.DataFrame:
    """A main cell whose minority probe is known: twin 0.5 + 0.01 * seed; a setting adds
    base[basis] + mode_shift[mode] + 0.1 * rate, plus 0.001 * seed."""
    base = {"coordinate": -0.2, "feature": 0.05, "feature_random": 0.03, "estimated": 0.04}
    shift = {"magnitude": 0.0, "random": 0.02}
    rows = []
    for seed in range(n_seeds):
        twin = 0.5 + 0.01 * seed
        rows.append(_row(seed, ps.TWIN, twin))
        for s in ps.CLAIM_SETTINGS:
            value = twin + base[s.basis] + shift[s.mode] + 0.1 * s.rate + 0.001 * seed
            rows.append(_row(seed, s, value, amp=0.3 + seed if s == ps.PAPER else np.nan))
    return pd.DataFrame(rows)


def _row(seed, setting, probe, amp=np.nan):
    twin = setting.is_twin
    return {
        "rho": 8.0,
        "t1": 170,
        "seed": seed,
        "basis": "none" if twin else setting.basis,
        "mode": "none" if twin else setting.mode,
        "rate": setting.rate,
        "setting": setting.label,
        "probe_min": probe,
        "log_amplification": amp,
    }


def test_claim_values_one_number_per_seed():
    values = ch4.claim_values(synthetic_cell())
    assert set(values) == {s.id for s in registry.for_chapter("ch4")}
    seed = 0.001 * np.arange(6)
    np.testing.assert_allclose(values["ch4.magnitude-helps-coordinate"], -0.2 + 0.05 + seed)
    np.testing.assert_allclose(values["ch4.magnitude-helps-feature"], 0.05 + 0.05 + seed)
    np.testing.assert_allclose(values["ch4.too-much-hurts"], 0.1 * (0.97 - 0.5))
    np.testing.assert_allclose(values["ch4.magnitude-beats-random"], 0.02)
    np.testing.assert_allclose(values["ch4.oracle-not-special"], 0.05 - 0.03)
    np.testing.assert_allclose(values["ch4.updates-amplified"], 0.3 + np.arange(6))


def test_claim_values_need_one_cell_and_its_settings():
    two = pd.concat([synthetic_cell(), synthetic_cell().assign(rho=4.0)])
    with pytest.raises(ValueError, match=r"the table must hold one cell"):
        ch4.claim_values(two)
    missing = synthetic_cell()
    missing = missing[missing.setting != "estimated · random · 0.9"]
    with pytest.raises(KeyError):
        ch4.claim_values(missing)


def test_claim_values_mark_a_seed_without_a_branch_nan():
    cell = synthetic_cell()
    lost = cell[~((cell.seed == 2) & (cell.setting == ps.PAPER.label))]
    values = ch4.claim_values(lost)
    for claim in ("ch4.magnitude-helps-feature", "ch4.updates-amplified"):
        assert np.isnan(values[claim][2]) and np.isfinite(np.delete(values[claim], 2)).all()
    np.testing.assert_allclose(
        values["ch4.magnitude-helps-coordinate"], -0.2 + 0.05 + 0.001 * np.arange(6)
    )
