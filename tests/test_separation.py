"""Tests for imbcl.studies.separation: ratios on hand-made records, training with probes, the
per-seed statistics of the claims, and the settings' errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbcl import DataConfig, ModelConfig, RunSpec, TrainConfig, train
from imbcl.engine.config import ConfigError
from imbcl.engine.history import History
from imbcl.studies import separation as S


def _spec(rho=1.0, seed=0, steps=20, record_every=5):
    """A tiny run: d=16, 2 + 2 features, m=8 neurons."""
    return RunSpec(
        DataConfig(d=16, k_maj=2, k_min=2, n_corr=2, rho=rho),
        ModelConfig(m=8),
        TrainConfig(steps=steps, batch=32, record_every=record_every),
        seed=seed,
    )


def _hist(align, noise):
    """A History of hand-made records: align (T, R, m, 4), noise (T, R, m); features 2, 3 are
    minority; replica r has rho = r + 1."""
    t, r = align.shape[:2]
    z = np.zeros(noise.shape, np.float32)
    specs = [_spec(rho=float(i + 1)) for i in range(r)]
    minority = np.array([False, False, True, True])
    return History(np.arange(t) * 10, align, noise, z, np.zeros((t, r)), minority, specs)


# ------------------------------------------------------------------------------ ratios
def test_feature_best_ratio_ignores_silent_neurons():
    align = np.zeros((2, 3), np.float32)  # m=2 neurons, K=3 features
    noise = np.array([1.0, 1e-4], np.float32)
    align[0] = [2.0, 0.5, 0.0]
    align[1] = [0.0, 1e-3, 0.0]  # silent: its ratio 10 on feature 1 must not count
    np.testing.assert_allclose(S.feature_best_ratio(align, noise), [2.0, 0.5, 0.0])


def test_group_ratios_both_sides():
    # one record, two replicas, three neurons, four features (2 majority, 2 minority)
    align = np.zeros((1, 2, 3, 4), np.float32)
    noise = np.ones((1, 2, 3), np.float32)
    align[0, 0, 0, 0] = 4.0  # majority neuron, ratio 4
    align[0, 0, 1, 2] = 2.0  # minority neuron, ratio 2
    align[0, 0, 2, 3] = 0.5  # live but below its noise: noise-dominated
    align[0, 1, 0, 1] = 3.0  # replica 1: majority neurons only
    align[0, 1, 1, 0] = 5.0
    align[0, 1, 2, 3] = 0.6  # minority feature 3 carried below the noise
    g = S.group_ratios(_hist(align, noise))
    assert g["majority_neuron"][0, 0] == pytest.approx(4.0)
    assert g["minority_neuron"][0, 0] == pytest.approx(2.0)
    assert g["majority_neuron"][0, 1] == pytest.approx(4.0)  # median of 3 and 5
    assert np.isnan(g["minority_neuron"][0, 1]) and g["minority_n"][0, 1] == 0
    # feature side: replica 1's minority features have ratios 0 and 0.6, median 0.3, finite
    assert g["minority_best"][0, 1] == pytest.approx(0.3)
    assert g["majority_best"][0, 1] == pytest.approx(4.0)  # features 0 (5) and 1 (3)
    assert g["minority_best"][0, 0] == pytest.approx(1.25)  # features 2 (2) and 3 (0.5)
    assert g["minority_align"][0, 0] == pytest.approx(1.25)


def test_ratio_table_is_tidy():
    rng = np.random.default_rng(0)
    align = rng.normal(size=(3, 2, 5, 4)).astype(np.float32)
    noise = np.abs(rng.normal(size=(3, 2, 5))).astype(np.float32)
    table = S.ratio_table(_hist(align, noise))
    assert len(table) == 3 * 2 * 2
    keys = ["step", "rho", "sigma", "seed", "group"]
    assert list(table.columns) == [*keys, "best_ratio", "neuron_ratio", "n_neurons", "align"]
    assert np.isfinite(table.best_ratio).all()
    row = table[(table.step == 20) & (table.rho == 2.0) & (table.group == "minority")]
    expected = S.group_ratios(_hist(align, noise))["minority_best"][2, 1]
    assert row.best_ratio.item() == pytest.approx(expected)


# ---------------------------------------------------------------------- training, probes
def test_train_with_probes_matches_uninterrupted_training():
    spec = _spec(steps=20)
    hist, probes, marks = S.train_with_probes([spec], [5, 15], n_probe=120)
    assert marks == [5, 15, 20] and probes.shape == (3, 1, 4)
    assert ((probes >= 0) & (probes <= 1)).all()
    ref, _ = train([spec], progress=False)
    np.testing.assert_array_equal(hist.steps, ref.steps)
    np.testing.assert_allclose(hist.align, ref.align, atol=1e-6)


@pytest.mark.parametrize("steps", [[0], [20], [15, 5], [5, 5]])
def test_train_with_probes_rejects_bad_steps(steps):
    with pytest.raises(ConfigError, match=r"probe_steps must be increasing steps in \[1, 19\]"):
        S.train_with_probes([_spec(steps=20)], steps, n_probe=120)


def test_train_probed_result():
    result = S.train_probed([_spec(rho=4.0, seed=3, steps=10)], [5], 120)
    assert list(result.table.columns) == ["step", "rho", "sigma", "seed", "group", "probe"]
    assert result.table.step.tolist() == [5, 5, 10, 10]
    assert (result.table.rho == 4.0).all() and (result.table.seed == 3).all()
    probe = result.arrays["probe"]
    np.testing.assert_allclose(
        result.table.probe[:2], [probe[0, 0, :2].mean(), probe[0, 0, 2:].mean()]
    )
    assert result.arrays["probe_steps"].tolist() == [5, 10]
    hist = History.from_arrays(result.arrays, result.meta)
    assert hist.steps[-1] == 10 and hist.specs[0].seed == 3


# ------------------------------------------------------------------ per-seed statistics
def _frames(best_min, probe_min, rhos=(1.0, 4.0, 8.0), seeds=(0, 1, 2)):
    """A ratio table and a probe table at steps 200 and 1000 for the recipe's sigma: majority
    best ratio 2 and probe 0.9 everywhere, minority values from ``best_min(rho, seed)`` and
    ``probe_min(rho, seed)`` (halved at step 200 for the ratio)."""
    ratio_rows, probe_rows = [], []
    for rho in rhos:
        for seed in seeds:
            for step, scale in ((200, 0.5), (1000, 1.0)):
                for group, best, probe in (
                    ("majority", 2.0, 0.9),
                    ("minority", best_min(rho, seed) * scale, probe_min(rho, seed)),
                ):
                    ratio_rows.append((step, rho, 1.0, seed, group, best, np.nan, 0, 0.5))
                    probe_rows.append((step, rho, 1.0, seed, group, probe))
    ratio_cols = ["step", "rho", "sigma", "seed", "group", "best_ratio", "neuron_ratio"]
    ratios = pd.DataFrame(ratio_rows, columns=[*ratio_cols, "n_neurons", "align"])
    probes = pd.DataFrame(probe_rows, columns=["step", "rho", "sigma", "seed", "group", "probe"])
    return ratios, probes


def test_seed_table_one_row_per_run():
    ratios, probes = _frames(lambda r, s: 4.0 / r + s, lambda r, s: 0.9 - 0.01 * r * (s + 1))
    seeds = S.seed_table(ratios, probes)
    assert len(seeds) == 9
    row = seeds[(seeds.rho == 4.0) & (seeds.seed == 1)].iloc[0]
    assert row.probe_gap == pytest.approx(0.08)
    assert row.log_best == pytest.approx(np.log(2.0 / 2.0))
    assert row.log_best_stage_ii == pytest.approx(np.log(1.0 / 2.0))


def test_seed_table_needs_the_recorded_step():
    ratios, _ = _frames(lambda r, s: 1.0, lambda r, s: 0.5, rhos=(1.0, 2.0, 8.0))
    with pytest.raises(KeyError, match="step 300 was not recorded"):
        S._wide(ratios, 300, ["best_ratio"])


# ---------------------------------------------------------------------------- settings
def test_profiles_and_plan():
    full, small = S.Settings.from_params("full"), S.Settings.from_params("small")
    assert (full.n_seeds, small.n_seeds) == (8, 6)
    tasks = S.plan(full)
    runs = [(t, spec) for t in tasks for spec in t.kwargs["specs"]]
    assert [spec for _, spec in runs] == sorted(full.run_specs(), key=lambda s: s.data.sigma)
    recipe = [(t, s) for t, s in runs if s.data.sigma == 1.0]
    noisy = [(t, s) for t, s in runs if s.data.sigma == full.sigma_noisy]
    assert len(recipe) == len(full.grid("rho_grid")) * full.n_seeds
    assert len(noisy) == len(full.grid("rho_grid_noisy")) * full.n_seeds
    assert all(t.kwargs["probe_steps"] == [200, 500] for t, _ in recipe)
    assert all(t.kwargs["probe_steps"] == [] for t, _ in noisy)
    assert all(s.train == TrainConfig(record_every=25) for _, s in runs)
    assert all(s.model == ModelConfig() for _, s in runs)
    assert sum(len(t.kwargs["specs"]) for t in S.plan(small)) == 3 * 6
    assert len({t.label for t in tasks}) == len(tasks)
    masked = S.Settings.from_params("small", mask="sample", first_seed=100)
    spec = S.plan(masked)[0].kwargs["specs"][0]
    assert (spec.data.mask, spec.seed) == ("sample", 100)


def test_regimes_place_every_rho_of_both_noise_levels_on_the_atlas():
    full = S.Settings.from_params("full")
    found = S.regimes(full)
    assert [r["rho"] for r in found] == [1.0, 2.0, 4.0, 8.0, 16.0, 2.0]
    assert {r["label"] for r in found} == {"Ch3"}
    assert found[0]["deviation"] == "records every 25 steps"
    assert found[-1]["deviation"] == "σ = 2, records every 25 steps"
    assert [r["rho"] for r in S.regimes(S.Settings.from_params("small"))] == [1.0, 4.0, 8.0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rho_grid": "1,2,8"}, r"rho_grid must hold 1, 4 and 8, .* \(missing 4 in '1,2,8'\)"),
        ({"rho_grid": "1,8,4"}, "rho_grid must be in increasing order"),
        ({"rho_grid": "0.5,1,4,8"}, r"rho_grid values must be >= 1 \(got 0.5\)"),
        ({"rho_grid_noisy": "2,x"}, "rho_grid_noisy values must be a number"),
        ({"sigma_noisy": 1}, "sigma_noisy must differ from the recipe's sigma = 1"),
        ({"sigma_noisy": 0}, r"sigma_noisy must be > 0 \(got 0.0\)"),
        ({"probe_steps": "200,1000"}, r"probe_steps values must be <= 999 \(got 1000\)"),
        ({"probe_steps": "210"}, r"record_every = 25 must divide probe_steps \(got \[210\]\)"),
        ({"record_every": 30, "probe_steps": ""}, r"must divide the stage-II step \(got \[200\]\)"),
        ({"n_probe": 50}, r"n_probe must be >= 100 \(got 50\)"),
        ({"mask": "pixel"}, "mask must be one of 'token', 'sample'"),
    ],
)
def test_bad_settings_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        S.Settings.from_params("full", **params)
