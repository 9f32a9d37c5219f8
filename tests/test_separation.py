"""Tests for imbcl.separation: grid parsing, group ratios with NaN groups, tables, probes."""

from __future__ import annotations

import numpy as np
import pytest

from imbcl import DataConfig, ModelConfig, TrainConfig
from imbcl.engine.config import ConfigError
from imbcl.engine.history import History
from imbcl.studies import separation as S


def _specs(rhos=(1.0, 4.0), sigmas=(1.0,), n_seeds=2, steps=20):
    return S.sweep_specs(
        rhos,
        sigmas,
        n_seeds,
        DataConfig(d=16, k_maj=2, k_min=2, n_corr=2),
        ModelConfig(m=8),
        TrainConfig(steps=steps, batch=32, record_every=5),
    )


def _hist(align, noise, specs=None):
    """A History of hand-made records: align (T, R, m, K), noise (T, R, m); K=4, 2 minority."""
    t, r = align.shape[:2]
    specs = specs or _specs(rhos=tuple(float(i + 1) for i in range(r)), n_seeds=1)
    z = np.zeros(noise.shape, np.float32)
    return History(
        np.arange(t) * 10,
        align,
        noise,
        z,
        np.zeros((t, r)),
        np.array([False, False, True, True]),
        specs,
    )


def test_sweep_specs_order_and_fields():
    specs = _specs(rhos=(1.0, 8.0), sigmas=(0.5, 1.0), n_seeds=3)
    assert len(specs) == 12
    first = specs[0]
    assert (first.data.sigma, first.data.rho, first.seed) == (0.5, 1.0, 0)
    assert [(s.data.rho, s.seed) for s in specs[3:6]] == [(8.0, 0), (8.0, 1), (8.0, 2)]
    assert specs[6].data.sigma == 1.0 and specs[6].data.d == 16


def test_group_ratios_values_and_empty_group_is_nan():
    # one record, two replicas, three neurons, four features (2 majority, 2 minority)
    align = np.zeros((1, 2, 3, 4), np.float32)
    noise = np.ones((1, 2, 3), np.float32)
    align[0, 0, 0, 0] = 4.0  # majority neuron, ratio 4
    align[0, 0, 1, 2] = 2.0  # minority neuron, ratio 2
    align[0, 0, 2, 1] = 0.5  # live but below noise: noise-dominated
    align[0, 1, 0, 1] = 3.0  # replica 1: majority neurons only
    align[0, 1, 1, 0] = 5.0
    align[0, 1, 2, 0] = 0.01  # silent: norm ~1 is not < 5 % of 5, so make it tiny
    noise[0, 1, 2] = 0.01
    g = S.group_ratios(_hist(align, noise))
    assert g["majority_ratio"][0, 0] == pytest.approx(4.0)
    assert g["minority_ratio"][0, 0] == pytest.approx(2.0)
    assert g["noise_fraction"][0, 0] == pytest.approx(1 / 3)
    assert g["majority_ratio"][0, 1] == pytest.approx(4.0)  # median of 3 and 5
    assert np.isnan(g["minority_ratio"][0, 1]) and g["minority_n"][0, 1] == 0
    assert g["noise_fraction"][0, 1] == 0.0  # the silent neuron is not counted as noise


def test_tables_are_tidy():
    rng = np.random.default_rng(0)
    align = rng.normal(size=(3, 2, 5, 4)).astype(np.float32)
    noise = np.abs(rng.normal(size=(3, 2, 5))).astype(np.float32)
    h = _hist(align, noise)
    rt = S.ratio_table(h)
    assert len(rt) == 3 * 2 * 2
    assert set(rt.columns) >= {"step", "rho", "sigma", "seed", "group", "ratio", "n_neurons"}
    assert len(S.noise_table(h)) == 6
    neurons = S.per_neuron_ratios(h, 20)
    n_owned = S.group_ratios(h)
    assert len(neurons) == n_owned["majority_n"][2].sum() + n_owned["minority_n"][2].sum()
    assert (neurons["ratio"] >= 1.0).all()  # specialised means |A| >= noise


def test_paired_gap_and_summary():
    rt = S.ratio_table(_hist(np.ones((1, 2, 3, 4), np.float32), np.ones((1, 2, 3), np.float32)))
    rt.loc[rt.group == "minority", "ratio"] = [0.5, np.nan]
    rt.loc[rt.group == "majority", "ratio"] = [2.0, 3.0]
    gap = S.paired_gap(rt, "ratio")
    assert gap["gap"].iloc[0] == pytest.approx(1.5) and np.isnan(gap["gap"].iloc[1])
    summ = S.seed_summary(rt.assign(rho=1.0), "ratio", ["group"])
    row = summ.set_index("group").loc["minority"]
    assert (row["n"], row["n_nan"], row["mean"]) == (1, 1, 0.5)


def test_train_with_probes_shapes_subset_and_no_side_effect():
    specs = _specs(n_seeds=1, steps=10)
    hist, probes, marks = S.train_with_probes(specs, [5], n_probe=40, probe_replicas=[1])
    assert hist.steps[-1] == 10 and hist.align.shape[:2] == (3, 2)
    assert marks == [5, 10] and probes.shape == (2, 2, 4)
    assert np.isnan(probes[0, 0]).all() and np.isfinite(probes[0, 1]).all()
    assert np.isfinite(probes[1]).all()  # every replica is probed at the last step
    # probing between segments leaves training unchanged
    from imbcl import train

    ref, _ = train(specs, progress=False)
    np.testing.assert_allclose(hist.align, ref.align, atol=1e-6)
    table = S.probe_table(probes, [5, 10], specs, hist.minority)
    assert len(table) == (1 + 2) * 2 and table["probe"].between(0, 1).all()  # NaN rows dropped


def test_train_with_probes_rejects_bad_steps():
    with pytest.raises(ConfigError, match=r"probe_steps must lie in \[1, 20\]"):
        S.train_with_probes(_specs(n_seeds=1), [0, 10])
    with pytest.raises(ConfigError, match=r"probe_steps must lie in \[1, 20\]"):
        S.train_with_probes(_specs(n_seeds=1), [30])


def test_feature_best_ratio_ignores_silent_neurons():
    align = np.zeros((2, 3), np.float32)  # m=2 neurons, K=3 features
    noise = np.array([1.0, 1e-4], np.float32)
    align[0] = [2.0, 0.5, 0.0]
    align[1] = [0.0, 1e-3, 0.0]  # silent: its ratio 10 on feature 1 must not count
    best = S.feature_best_ratio(align, noise)
    np.testing.assert_allclose(best, [2.0, 0.5, 0.0])
