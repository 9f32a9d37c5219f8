"""Tests for imbcl.stages on synthetic Histories whose stages are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imbcl import DataConfig, History, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.config import ConfigError
from imbcl.studies import stages

RATE = 0.3  # per step: the synthetic majority growth rate in stage I
T_GROW = 20  # step at which the synthetic majority growth stops
T_SILENCE = 120  # step at which two of the four neurons are silenced


def synthetic_history(n_rep: int = 2) -> History:
    """Steps 0..200 every 2; m=4 neurons, K=2 features (majority first).

    Neuron 0 carries the majority feature, growing as 1e-3 * exp(RATE t) until T_GROW and
    flat afterwards; neuron 1 carries the minority feature at a tenth of that; neurons 2-3
    carry a constant noise norm 0.1 and are silenced (norm x 1e-3) from T_SILENCE on. Replica
    r has every alignment scaled by (1 + r).
    """
    steps = np.arange(0, 201, 2)
    t = len(steps)
    maj = 1e-3 * np.exp(RATE * np.minimum(steps, T_GROW))
    align = np.zeros((t, n_rep, 4, 2))
    noise = np.full((t, n_rep, 4), 0.01)
    for r in range(n_rep):
        align[:, r, 0, 0] = maj * (1 + r)
        align[:, r, 1, 1] = 0.1 * maj * (1 + r)
    noise[:, :, 2:] = 0.1
    noise[steps >= T_SILENCE, :, 2:] = 1e-4
    spec = RunSpec(DataConfig(d=8, k_maj=1, k_min=1, n_corr=0), ModelConfig(m=4), TrainConfig())
    return History(
        steps,
        align,
        noise,
        np.zeros((t, n_rep, 4)),
        np.zeros((t, n_rep)),
        np.array([False, True]),
        [spec] * n_rep,
    )


def test_group_curves_shapes_and_values():
    h = synthetic_history()
    c = stages.group_curves(h)
    assert set(c) == set(stages.GROUPS)
    for v in c.values():
        assert v.shape == (len(h.steps), 2)
    k = h.at(10)
    assert c["majority"][k, 1] == pytest.approx(2e-3 * math.exp(RATE * 10))
    assert c["minority"][k, 0] == pytest.approx(1e-4 * math.exp(RATE * 10))
    assert c["noise"][0, 0] == pytest.approx((0.01 * 2 + 0.1 * 2) / 4)


def test_log_growth_recovers_exponential_rate():
    steps = np.arange(0, 100, 5)
    curve = np.exp(0.002 * steps)[:, None] * np.array([[1.0, 7.0]])
    rate = stages.log_growth(steps, curve, window=10)  # +-10 steps = +-2 records
    assert np.isnan(rate[:2]).all() and np.isnan(rate[-2:]).all()
    np.testing.assert_allclose(rate[2:-2], 2.0, rtol=1e-9)  # 0.002 per step = 2 per 1k


def test_stage_boundaries_match_construction():
    h = synthetic_history()
    b = stages.stage_boundaries(h, window=4, stall=0.1, silenced=0.1, hold=6)
    # the centred rate (+-4 steps) first drops below 10 % of its peak 4 steps after T_GROW
    np.testing.assert_array_equal(b, [[T_GROW + 4, T_SILENCE]] * 2)


def test_stage_boundaries_do_not_depend_on_the_record_spacing():
    fine = synthetic_history()
    keep = np.arange(0, len(fine.steps), 2)  # the same runs, recorded every 4 steps
    coarse = History(
        fine.steps[keep],
        fine.align[keep],
        fine.noise[keep],
        fine.bias[keep],
        fine.loss[keep],
        fine.minority,
        fine.specs,
    )
    b_fine = stages.stage_boundaries(fine, window=8, hold=8)
    b_coarse = stages.stage_boundaries(coarse, window=8, hold=8)
    np.testing.assert_array_equal(b_fine, b_coarse)
    np.testing.assert_array_equal(b_fine, [[T_GROW + 8, T_SILENCE]] * 2)


def test_steps_to_records():
    steps = np.array([0, 10, 20, 25])  # record_every 10, the last record off the grid
    assert stages.steps_to_records(steps, 10, "window") == 1
    assert stages.steps_to_records(steps, 25, "hold") == 2
    with pytest.raises(ConfigError, match=r"uniform spacing after step 0 \(got gaps \[2, 5\]\)"):
        stages.steps_to_records(np.array([0, 2, 4, 9, 14]), 10, "window")


def test_stage_boundaries_nan_when_never_silenced():
    h = synthetic_history(1)
    h.noise[:, :, 2:] = 0.1  # nobody is silenced
    b = stages.stage_boundaries(h)
    assert b[0, 0] == T_GROW + 4 and np.isnan(b[0, 1])


def test_stage_rates_per_stage():
    h = synthetic_history(1)
    b = np.array([[T_GROW, T_SILENCE - 20]], dtype=float)  # stage III holds the silencing
    df = stages.stage_rates(h, b)
    assert len(df) == 3 * 4  # stages x (3 groups + the survivors' noise)
    rate = df.set_index(["stage", "group"]).rate
    assert rate["I", "majority"] == pytest.approx(RATE * 1000)
    assert rate["II", "majority"] == pytest.approx(0.0, abs=1e-9)
    assert rate["III", "noise"] < 0  # silenced neurons shrink the mean noise
    # the survivors (neurons 0 and 1) keep their noise: the silencing does not show there
    assert rate["III", "noise (survivors)"] == pytest.approx(0.0, abs=1e-9)
    wide = stages.rate_table(df)
    assert wide.shape == (1, 12) and list(wide.columns.levels[0]) == list(stages.STAGES)


def test_net_rate_bounds():
    steps = np.arange(0, 50, 10)
    curve = np.exp(0.01 * steps)
    assert stages.net_rate(steps, curve, 10, 40) == pytest.approx(10.0)
    assert math.isnan(stages.net_rate(steps, curve, np.nan, 40))
    assert math.isnan(stages.net_rate(steps, curve, 40, 40))


def test_onset_gap_is_undefined_when_a_group_never_starts():
    h = synthetic_history()
    # replica 0's minority never reaches 0.05; replica 1's majority does at step 12 and its
    # minority (a tenth of it, twice as large as replica 0's) at step 20
    np.testing.assert_array_equal(stages.onset_gap(h), [np.nan, 8.0])
    h.align[:, 0, 1, 1] = 0.06  # replica 0: minority above the onset from the start
    assert stages.onset_gap(h)[0] == -14.0  # its majority reaches it at step 14
    fin = stages.final_levels(h, last=10)
    np.testing.assert_allclose(fin["majority"], [1e-3 * math.exp(6), 2e-3 * math.exp(6)])


def test_survivor_noise_follows_one_set_of_neurons():
    h = synthetic_history(1)
    np.testing.assert_allclose(stages.survivor_noise(h)[:, 0], 0.01)  # neurons 0, 1 only
    assert stages.group_curves(h)["noise"][-1, 0] < stages.group_curves(h)["noise"][0, 0]


def test_neuron_order_owners_first_silent_last():
    align = np.array([[0.0, 0.2], [0.9, 0.0], [0.0, 0.0], [0.5, 0.0]])
    noise = np.array([0.01, 0.01, 1e-4, 0.01])
    np.testing.assert_array_equal(stages.neuron_order(align, noise), [1, 3, 0, 2])


def test_heatmap_panels_share_order():
    h = synthetic_history()
    panels, order = stages.heatmap_panels(h, 1, [10, 100, 200])
    assert panels.shape == (3, 4, 2)
    np.testing.assert_allclose(panels[1], np.abs(h.align[h.at(100), 1][order]))
    assert (panels >= 0).all()


def test_kappa_curve_reads_the_schedule_of_the_runs():
    from imbcl.report import ch1

    h = synthetic_history()
    spec = RunSpec(h.specs[0].data, ModelConfig(m=4, kappa_max=3.0, ramp_steps=100))
    h.specs = [spec] * 2
    np.testing.assert_allclose(ch1.kappa_curve(h)[[0, 25, 50, 100]], [0, 1.5, 3, 3])


def test_settings_plan_and_claims_of_the_chapter():
    s = stages.Settings.from_params("small")
    tasks = stages.plan(s)
    runs = [spec for t in tasks for spec in t.kwargs["specs"]]
    assert len(runs) == 2 * s.n_seeds  # main and past the cliff; no trained attention
    assert tasks[0].label == "ch1 main rho=4 seeds 0-5"
    full = stages.Settings.from_params("full")
    runs = [spec for t in stages.plan(full) for spec in t.kwargs["specs"]]
    assert len(runs) == 2 * full.n_seeds + full.attention_seeds
    with pytest.raises(ConfigError, match="rho_past must be > rho = 4"):
        stages.Settings.from_params("full", rho_past=3)
    with pytest.raises(ConfigError, match="window and hold must be >= record_every = 10"):
        stages.Settings.from_params("full", record_every=10)
    with pytest.raises(ConfigError, match="heatmap_seed must be < n_seeds = 6"):
        stages.Settings.from_params("small", heatmap_seed=6)


def test_stage_boundaries_rejects_bad_fractions():
    with pytest.raises(ConfigError, match=r"stall must be < 1 \(got 1.5\)"):
        stages.stage_boundaries(synthetic_history(), stall=1.5)
    with pytest.raises(ConfigError, match=r"silenced must be > 0 \(got 0.0\)"):
        stages.stage_boundaries(synthetic_history(), silenced=0)
    with pytest.raises(ConfigError, match=r"silenced must be a number \(got 'x'\)"):
        stages.stage_boundaries(synthetic_history(), silenced="x")
    with pytest.raises(ConfigError, match=r"hold must be an integer \(got 2.5\)"):
        stages.stage_boundaries(synthetic_history(), hold=2.5)


def test_stage_boundaries_rejects_a_coarse_history():
    h = synthetic_history()  # recorded every 2 steps
    with pytest.raises(
        ConfigError,
        match=r"window = 1 steps is finer than the History's record spacing of 2 steps: "
        r"record the run with record_every <= 1",
    ):
        stages.stage_boundaries(h, window=1)
    with pytest.raises(ConfigError, match=r"hold = 1 steps .* record_every <= 1"):
        stages.stage_boundaries(h, hold=1)
