"""Tests for imbcl.pruning_study: the paired protocol, deltas, updates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from imbcl import DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.config import ConfigError
from imbcl.engine.train import Replicas
from imbcl.studies import pruning as ps

DATA = DataConfig(d=16, k_maj=2, k_min=2, n_corr=2, rho=4)


def specs(seeds=(0, 1), **train):
    t = TrainConfig(batch=32, record_every=5, **train)
    return [RunSpec(DATA, ModelConfig(m=8, ramp_steps=20), t, seed=s) for s in seeds]


def trained(seeds=(0, 1), steps=15) -> Replicas:
    reps = Replicas(specs(seeds), device="cpu")
    reps.run(steps, progress=False)
    return reps


def coefficients(reps: Replicas) -> torch.Tensor:
    """(R, m, d) neuron weights in each replica's feature basis (orthonormal: C = W B)."""
    b = torch.stack([dc.basis for dc in reps.dictionaries])
    return reps.params["W"] @ b


def test_setting_family_and_config():
    s = ps.Setting(0.75, "feature", "random", "neuron", keep_mask=False)
    assert s.family == "feature · random · per neuron · no mask"
    cfg = s.config()
    assert (cfg.rate, cfg.basis, cfg.mode, cfg.scope, cfg.keep_mask) == (
        0.75,
        "feature",
        "random",
        "neuron",
        False,
    )
    assert ps.BASELINE.is_baseline and ps.BASELINE.family == "unpruned"
    assert ps.Setting("0.5").rate == 0.5  # coerced by PruneConfig
    g = ps.grid([0, 0.5, 0.9], bases=("feature",), modes=("magnitude", "random"))
    assert [(x.mode, x.rate) for x in g] == [
        ("magnitude", 0.5),
        ("magnitude", 0.9),
        ("random", 0.5),
        ("random", 0.9),
    ]


def test_setting_is_validated_at_construction():
    with pytest.raises(ConfigError, match=r"rate must be < 1 \(got 1.0\)"):
        ps.Setting(1.0)
    with pytest.raises(ConfigError, match=r"rate must be >= 0 \(got -0.1\)"):
        ps.Setting(-0.1)
    with pytest.raises(ConfigError, match=r"basis must be one of"):
        ps.Setting(0.5, "pixel")
    with pytest.raises(ConfigError, match=r"mode must be one of"):
        ps.Setting(0.5, "feature", "largest")


def test_estimated_settings_need_bases_before_any_training():
    est = [ps.Setting(0.5, "estimated")]
    with pytest.raises(ConfigError, match=r"'estimated' setting needs bases \(R, d, d\)"):
        ps.run_cell(specs(), 10**6, 10**6, est, 50)  # would take minutes if it trained
    with pytest.raises(ConfigError, match=r"'estimated' setting needs bases"):
        ps.update_ratio_study(specs(), 10**6, est, 2)
    with pytest.raises(
        ConfigError, match=r"bases must have shape \(2, 16, 16\) \(got \(1, 16, 16\)\)"
    ):
        ps.run_cell(specs(), 10**6, 10**6, est, 50, bases=np.zeros((1, 16, 16)))


# ---------------------------------------------------------------------- pruning protocol
@pytest.mark.parametrize("scope", ["global", "neuron"])
@pytest.mark.parametrize("mode", ["magnitude", "random"])
def test_feature_basis_pruning_zeroes_the_rate_and_the_mask_holds(scope, mode):
    base = trained()
    reps, zeroed = ps.branch(base, ps.Setting(0.75, "feature", mode, scope))
    assert zeroed == pytest.approx(0.75, abs=1 / (8 * 16))
    zero = coefficients(reps).abs() < 1e-5
    assert zero.float().mean().item() == pytest.approx(0.75, abs=1 / (8 * 16))
    if scope == "neuron":  # every row loses the same count
        assert (zero.sum(-1) == round(0.75 * 16)).all()
    reps.run(5, progress=False)
    assert (coefficients(reps)[zero].abs() < 1e-5).all()  # held during training
    assert (coefficients(reps)[~zero].abs() > 0).float().mean() > 0.9
    # the base is untouched by pruning its copy
    assert (coefficients(base).abs() < 1e-5).float().mean() < 0.05


def test_no_mask_prunes_once_then_regrows():
    base = trained()
    free, _ = ps.branch(base, ps.Setting(0.75, "coordinate", keep_mask=False))
    held, _ = ps.branch(base, ps.Setting(0.75, "coordinate", keep_mask=True))
    zero = free.params["W"] == 0
    assert zero.float().mean().item() == pytest.approx(0.75, abs=1 / 128)
    assert torch.equal(zero, held.params["W"] == 0) and free.mask is None
    free.run(5, progress=False)
    held.run(5, progress=False)
    assert (held.params["W"][zero] == 0).all()
    # silenced neurons get no gradient, so only the live rows regrow
    assert (free.params["W"][zero] != 0).float().mean() > 0.2


def test_magnitude_mask_keeps_the_largest_coefficients():
    base = trained()
    before = coefficients(base).abs().flatten(1)
    reps, _ = ps.branch(base, ps.Setting(0.5, "feature", "magnitude"))
    kept = (coefficients(reps).abs() > 1e-5).flatten(1)
    for r in range(2):
        assert before[r][kept[r]].min() >= before[r][~kept[r]].max() - 1e-6


def test_random_mask_is_per_replica_seed_and_group_independent():
    together = ps.branch(trained((0, 1)), ps.Setting(0.5, "feature", "random"))[0]
    alone = ps.branch(trained((1,)), ps.Setting(0.5, "feature", "random"))[0]
    assert torch.equal(together.mask[1], alone.mask[0])
    assert not torch.equal(together.mask[0], together.mask[1])


def test_branches_see_the_same_data_stream():
    base = trained()
    a, _ = ps.branch(base, ps.BASELINE)
    b, _ = ps.branch(base, ps.BASELINE)
    a.run(5, progress=False)
    b.run(5, progress=False)
    assert torch.equal(a.params["W"], b.params["W"])
    base.run(5, progress=False)
    assert torch.equal(a.params["W"], base.params["W"])


def test_estimated_basis_shape_and_recovery():
    reps = Replicas(specs((0,)), device="cpu")
    basis = ps.estimated_bases(reps, 400)
    assert basis.shape == (1, 16, 16) and np.isfinite(basis).all()
    np.testing.assert_allclose(np.linalg.norm(basis, axis=1), 1.0, rtol=1e-4)
    rec = ps.basis_recovery(basis, reps.features.numpy())
    assert rec.shape == (1, 4) and (rec <= 1 + 1e-5).all()
    # the exact dictionary recovers every feature perfectly
    exact = reps.dictionaries[0].basis.numpy()[None]
    np.testing.assert_allclose(ps.basis_recovery(exact, reps.features.numpy()), 1.0, atol=1e-5)
    pruned, zeroed = ps.branch(reps, ps.Setting(0.5, "estimated"), basis)
    assert zeroed == pytest.approx(0.5)


# ------------------------------------------------------------------------ measurements
def test_purity_by_group_takes_the_best_live_neuron():
    align = np.zeros((1, 3, 2))
    align[0, 0] = [3.0, 0.0]  # majority neuron, norm 5: purity 0.6
    align[0, 1] = [0.0, 1.0]  # minority neuron, noise-free: purity 1
    align[0, 2] = [0.001, 0.0]  # dead neuron (tiny, noise-free) is ignored
    noise = np.array([[4.0, 0.0, 0.0]])
    pmaj, pmin = ps.purity_by_group(align, noise, np.array([False, True]))
    np.testing.assert_allclose([pmaj[0], pmin[0]], [0.6, 1.0])


def _table():
    rows = []
    for seed, (b, p) in enumerate([(0.5, 0.6), (0.6, 0.55), (0.4, 0.5)]):
        for rate, val in ((0.0, b), (0.5, p)):
            rows.append(
                {"rho": 6.0, "t1": 100, "seed": seed, "family": "f", "basis": "feature"}
                | {"mode": "random", "scope": "neuron", "keep_mask": False, "rate": rate}
                | {m: val for m in ps.METRICS}
            )
    return pd.DataFrame(rows)


def test_paired_deltas_and_summary():
    d = ps.paired_deltas(_table())
    np.testing.assert_allclose(d.d_probe_min, [0.1, -0.05, 0.1])
    s = ps.summarise(d)
    assert s.loc[0, "improved"] == 2 and s.loc[0, "n_seeds"] == 3
    assert s.loc[0, "d_probe_min"] == pytest.approx(0.05)
    best = ps.best_setting(s, ["f"])
    assert best == ps.Setting(0.5, "feature", "random", "neuron", keep_mask=False)
    with pytest.raises(ConfigError, match="no summary row belongs to the families"):
        ps.best_setting(s, ["unpruned"])
    with pytest.raises(ValueError, match="more than one baseline row"):
        ps.paired_deltas(pd.concat([_table(), _table()]))


def test_paired_test_counts_wins_and_sign_p():
    out = ps.paired_test(np.array([1.0, 2, 3, 4, 5, 6]), np.zeros(6))
    assert out["wins"] == 6 and out["n"] == 6
    assert out["p_sign"] == pytest.approx(2 / 64)
    assert ps.paired_test(np.zeros(3), np.zeros(3))["p_sign"] == 1.0


def test_update_sizes_vanish_along_pruned_feature_coefficients():
    base = trained()
    reps, _ = ps.branch(base, ps.Setting(0.75, "feature", "magnitude"))
    pruned = (reps.mask[..., :4] == 0).numpy()  # (R, m, K) feature coefficients zeroed
    size = ps.update_sizes(reps, 3)
    assert size.shape == (2, 8, 4) and reps.step == 18
    assert size[pruned].max() < 1e-6
    assert size[~pruned].max() > 1e-5


def test_group_update_averages_selected_pairs():
    size = np.arange(8.0).reshape(1, 2, 4)  # features 0, 1 majority; 2, 3 minority
    select = np.ones((1, 2, 4), bool)
    select[0, 1] = False  # neuron 1 excluded
    minority = np.array([False, False, True, True])
    maj, mnr = ps.group_update(size, select, minority)
    np.testing.assert_allclose([maj[0], mnr[0]], [0.5, 2.5])
    select[..., 2:] = False  # no minority pair selected: NaN, without a numpy warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maj, mnr = ps.group_update(size, select, minority)
    assert maj[0] == 0.5 and np.isnan(mnr[0])


def test_update_ratio_study_rows_and_reference():
    out = ps.update_ratio_study(specs(), 10, [ps.Setting(0.5, "feature", "random")], 2)
    assert list(out.family) == ["unpruned"] * 2 + ["feature · random"] * 2
    np.testing.assert_allclose(out.amplification[:2], 1.0)
    np.testing.assert_allclose(out.ratio, out.upd_min / out.upd_maj)
    np.testing.assert_allclose(out.ratio_kept[:2], out.ratio[:2])
