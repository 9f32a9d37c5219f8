"""Tests for imbcl.studies.pruning: settings, the paired protocol, updates, atlas regimes."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from imbcl import DataConfig, History, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.config import ConfigError
from imbcl.engine.train import Replicas
from imbcl.report import ch4
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


# ---------------------------------------------------------------------------- settings
def test_setting_label_and_validation():
    s = ps.Setting("0.5", "feature_random", "random")
    assert s.rate == 0.5 and s.label == "feature_random · random · 0.5"
    assert ps.TWIN.is_twin and ps.TWIN.label == "unpruned"
    assert s.config().keep_mask and s.config().scope == "global"
    with pytest.raises(ConfigError, match=r"rate must be < 1 \(got 1.0\)"):
        ps.Setting(1.0)
    with pytest.raises(ConfigError, match=r"basis must be one of"):
        ps.Setting(0.5, "pixel")
    with pytest.raises(ConfigError, match=r"mode must be one of"):
        ps.Setting(0.5, "feature", "largest")


def test_parse_settings():
    got = ps.parse_settings(" feature_noise random 0.9, coordinate magnitude 0.75 ,")
    assert got == (ps.Setting(0.9, "feature_noise", "random"), ps.Setting(0.75, "coordinate"))
    assert ps.parse_settings("") == ()
    with pytest.raises(ConfigError, match=r"extra entries must read 'basis mode rate'"):
        ps.parse_settings("feature 0.5")
    with pytest.raises(ConfigError, match=r"extra rates must be > 0"):
        ps.parse_settings("feature random 0")
    with pytest.raises(ConfigError, match=r"basis must be one of"):
        ps.parse_settings("pixel random 0.5")


def test_claim_settings_cover_what_the_claims_compare():
    labels = {s.label for s in ps.CLAIM_SETTINGS}
    assert "coordinate · magnitude · 0.5" in labels
    assert "feature · magnitude · 0.97" in labels
    for basis, mode, rate in itertools.product(ps.SPARSE_BASES, ps.MODES, ps.CLAIM_RATES):
        assert ps.Setting(rate, basis, mode) in ps.CLAIM_SETTINGS
    assert len(labels) == len(ps.CLAIM_SETTINGS) == 14


def test_profiles_are_valid_and_the_full_one_is_the_recipe():
    full, small = ps.Settings.from_params("full"), ps.Settings.from_params("small")
    assert full.n_seeds == 8 and small.n_seeds == 6
    spec = full.spec(full.rho, 3)
    assert (spec.data, spec.model) == (DataConfig(rho=8.0), ModelConfig())
    assert spec.train == TrainConfig(record_every=2) and spec.seed == 3
    assert full.extra_settings == (
        ps.Setting(0.9, "feature_noise", "magnitude"),
        ps.Setting(0.9, "feature_noise", "random"),
    )
    assert full.other_rhos == (4.0, 12.0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"steps": 5}, r"t1 \+ window must be <= steps = 5: .* \(got t1=170, window=20\)"),
        ({"t1": 990}, r"t1 \+ window must be <= steps = 1000"),
        ({"window": 900}, r"t1 \+ window must be <= steps = 1000: .*window=900"),
        ({"record_every": 5, "t1": 170}, r"record_every must be <= 4 steps"),
        ({"t1": 171}, r"t1 must be a multiple of record_every = 2, .* \(got 171\)"),
        ({"extra": "feature magnitude 0.5"}, r"extra must name settings once and none of"),
        ({"extra": "coordinate random 0.5, coordinate random 0.5"}, r"extra must name"),
        ({"extra": "feature"}, r"extra entries must read 'basis mode rate'"),
        ({"phase_rhos": "4,8"}, r"phase_rhos must not repeat rho = 8"),
        ({"phase_rhos": "0.5"}, r"phase_rhos values must be >= 1 \(got 0.5\)"),
        ({"phase_seeds": 9}, r"phase_seeds must be <= n_seeds = 8 \(got 9\)"),
        ({"phase_seeds": 1}, r"phase_seeds must be >= 2 \(got 1\)"),
        ({"features": 31}, r"k_maj \+ k_min \+ n_corr must be <= d = 64"),
        ({"n_ica": 50, "d": 256}, r"n_ica must give at least d = 256 tokens"),
        ({"mask": "pixel"}, r"mask must be one of 'token', 'sample'"),
        ({"t_total": 5}, r"unknown parameter\(s\) t_total"),
    ],
)
def test_bad_settings_fail_before_compute_naming_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        ps.Settings.from_params("full", **params)


def test_plan_main_cell_then_phase_cells():
    s = ps.Settings.from_params("full", extra="", phase_rhos="4", phase_seeds=2)
    tasks = ps.plan(s)
    assert len(tasks) == 8 + 2
    main, phase = tasks[0].kwargs, tasks[-1].kwargs
    assert main["settings"] == list(ps.CLAIM_SETTINGS) and main["t1"] == 170
    assert main["spec"] == s.spec(8.0, 0) and main["window"] == 20
    assert phase["settings"] == [ps.PAPER] and phase["spec"] == s.spec(4.0, 1)
    assert tasks[0].label == "ch4 rho=8 t1=170 seed=0 (14 settings)"
    assert len({t.key(_ENV) for t in tasks}) == len(tasks)


class _Env:
    def to_dict(self):
        return {}


_ENV = _Env()


# ---------------------------------------------------------------------- pruning protocol
@pytest.mark.parametrize("mode", ["magnitude", "random"])
def test_feature_basis_pruning_zeroes_the_rate_and_the_mask_holds(mode):
    base = trained((0,))
    br, zeroed = ps.branch_all(base, [ps.Setting(0.75, "feature", mode)])
    assert zeroed[0] == 0.0 and zeroed[1] == pytest.approx(0.75, abs=1 / (8 * 16))
    zero = coefficients(br)[1].abs() < 1e-5
    assert zero.float().mean().item() == pytest.approx(0.75, abs=1 / (8 * 16))
    br.run(5, progress=False)
    assert (coefficients(br)[1][zero].abs() < 1e-5).all()  # held during training
    assert (coefficients(br)[1][~zero].abs() > 0).float().mean() > 0.9
    assert (coefficients(br)[0].abs() < 1e-5).float().mean() < 0.05  # the twin is untouched


def test_magnitude_mask_keeps_the_largest_coefficients():
    base = trained((0,))
    before = coefficients(base)[0].abs().flatten()
    br, _ = ps.branch_all(base, [ps.Setting(0.5, "feature", "magnitude")])
    kept = (coefficients(br)[1].abs() > 1e-5).flatten()
    assert before[kept].min() >= before[~kept].max() - 1e-6


def test_random_mask_depends_on_the_seed_only():
    cfg = [ps.Setting(0.5, "feature", "random")]
    a = ps.branch_all(trained((1,)), cfg)[0].mask[1]
    b = ps.branch_all(trained((1,)), cfg)[0].mask[1]
    c = ps.branch_all(trained((0,)), cfg)[0].mask[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_the_twin_branch_is_the_run_continued():
    base = trained((0,))
    alone = base.copy()
    br, _ = ps.branch_all(base, [ps.Setting(0.5, "coordinate", "magnitude")])
    alone.run(5, progress=False)
    br.run(5, progress=False)
    assert torch.allclose(br.params["W"][0], alone.params["W"][0], atol=1e-6)


def test_estimated_setting_needs_its_basis():
    with pytest.raises(ConfigError, match=r"'estimated' setting needs its basis"):
        ps.branch_all(trained((0,)), [ps.Setting(0.5, "estimated")])


def test_estimated_basis_shape_and_recovery():
    reps = Replicas(specs((0,)), device="cpu")
    basis = ps.estimated_basis(reps, 400)
    assert basis.shape == (1, 16, 16) and np.isfinite(basis).all()
    np.testing.assert_allclose(np.linalg.norm(basis, axis=1), 1.0, rtol=1e-4)
    rec = ps.basis_recovery(basis, reps.features.numpy())
    assert rec.shape == (1, 4) and (rec <= 1 + 1e-5).all() and rec.min() > 0.9
    exact = reps.dictionaries[0].basis.numpy()[None]
    np.testing.assert_allclose(ps.basis_recovery(exact, reps.features.numpy()), 1.0, atol=1e-5)


# ------------------------------------------------------------------------ measurements
def test_purity_by_group_takes_the_best_live_neuron():
    align = np.zeros((1, 3, 2))
    align[0, 0] = [3.0, 0.0]  # majority neuron, norm 5: purity 0.6
    align[0, 1] = [0.0, 1.0]  # minority neuron, noise-free: purity 1
    align[0, 2] = [0.001, 0.0]  # dead neuron (tiny, noise-free) is ignored
    noise = np.array([[4.0, 0.0, 0.0]])
    pmaj, pmin = ps.purity_by_group(align, noise, np.array([False, True]))
    np.testing.assert_allclose([pmaj[0], pmin[0]], [0.6, 1.0])


def test_update_sizes_vanish_along_pruned_feature_coefficients():
    br, _ = ps.branch_all(trained((0,)), [ps.Setting(0.75, "feature", "magnitude")])
    pruned = (br.mask[1, :, :4] == 0).numpy()  # (m, K) feature coefficients zeroed
    size = ps.update_sizes(br, 3)
    assert size.shape == (2, 8, 4) and br.step == 18
    assert size[1][pruned].max() < 1e-6
    assert size[1][~pruned].max() > 1e-5 and size[0].min() > 0  # the twin moves everywhere


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


def test_update_amplification_compares_the_same_pairs():
    rng = np.random.default_rng(0)
    twin = rng.uniform(1, 2, (3, 5, 4))
    kept = np.ones((3, 5, 4), bool)
    kept[:, 1:3, 0] = False  # the comparison is on the kept pairs only
    minority = np.array([False, False, True, True])
    same = ps.update_amplification(twin, twin, kept, minority)
    np.testing.assert_allclose(same["log_amplification"], 0.0, atol=1e-12)
    faster = twin.copy()
    faster[..., 2:] *= 3.0  # minority updates three times larger on every pair
    out = ps.update_amplification(faster, twin, kept, minority)
    np.testing.assert_allclose(out["log_amplification"], np.log(3.0))
    # a pair the mask dropped does not count, however large its update
    kept[:, 0, 2] = False
    faster[:, 0, 2] = 1e6
    np.testing.assert_allclose(
        ps.update_amplification(faster, twin, kept, minority)["log_amplification"], np.log(3.0)
    )


# --------------------------------------------------------------------------- the task
TINY = RunSpec(
    DATA,
    ModelConfig(m=8, ramp_steps=20),
    TrainConfig(steps=40, batch=16, record_every=2),
    seed=5,
)
TINY_SETTINGS = [
    ps.PAPER,
    ps.Setting(0.5, "estimated", "random"),
    ps.Setting(0.5, "coordinate", "magnitude"),
]


@pytest.fixture(scope="module")
def tiny_result():
    return ps.cell_task(TINY, t1=10, settings=TINY_SETTINGS, n_probe=60, n_ica=60, window=3)


def test_cell_task_rows_and_twin_record(tiny_result):
    table = tiny_result.table
    assert list(table.setting) == ["unpruned"] + [s.label for s in TINY_SETTINGS]
    assert (table.rho == 4.0).all() and (table.seed == 5).all() and (table.t1 == 10).all()
    np.testing.assert_allclose(table.zeroed, [0.0, 0.5, 0.5, 0.5])
    assert table[list(ps.METRICS)].notna().all().all()
    assert ((table.probe_min >= 0) & (table.probe_min <= 1)).all()
    # updates are measured only where a feature coefficient can be kept: feature-first bases
    assert np.isfinite(table.log_amplification[1]) and table.log_amplification[2:].isna().all()
    hist = History.from_arrays(tiny_result.arrays, tiny_result.meta)
    np.testing.assert_array_equal(hist.steps, np.arange(0, 41, 2))  # base + continuation
    assert hist.specs == [TINY]
    assert np.isfinite(tiny_result.arrays["ica_recovery"]).all()


def test_cell_task_is_deterministic_and_twin_is_the_plain_run(tiny_result):
    plain = Replicas([TINY], device="cpu").run(progress=False)
    hist = History.from_arrays(tiny_result.arrays, tiny_result.meta)
    np.testing.assert_allclose(hist.align, plain.align, atol=1e-6)
    again = ps.cell_task(TINY, t1=10, settings=TINY_SETTINGS[:1], n_probe=60, n_ica=60, window=3)
    pd.testing.assert_frame_equal(again.table, tiny_result.table.iloc[:2])


def test_cell_task_refuses_a_window_past_the_end():
    with pytest.raises(ConfigError, match=r"t1 \+ window <= 40 \(got t1=38, window=3\)"):
        ps.cell_task(TINY, t1=38, settings=[], n_probe=60, n_ica=60, window=3)


def test_stage_check_and_recovery_from_results(tiny_result):
    check = ch4.stage_check([tiny_result])
    assert list(check.columns) == ["rho", "seed", "t1", "end of I", "end of II", "t1 in stage II"]
    row = check.iloc[0]
    assert row.t1 == 10 and row.seed == 5
    assert row["t1 in stage II"] == (row["end of I"] < 10 < row["end of II"])
    rec = ps.ica_recovery([tiny_result])
    assert len(rec) == 1 and 0 < rec.minority[0] <= 1


def test_regimes_place_every_cell_on_the_atlas():
    full = ps.Settings.from_params("full")
    found = ps.regimes(full)
    assert [r["rho"] for r in found] == [8.0, 4.0, 12.0]
    assert {r["deviation"] for r in found} == {"pruned at step t1 = 170, mask held"}
    small = ps.regimes(ps.Settings.from_params("small"))
    assert small[0]["deviation"] == (
        "pruned at step t1 = 40, mask held, d = 32, features = 4, m = 32, batch = 32, "
        "steps = 160, ramp_steps = 80"
    )
