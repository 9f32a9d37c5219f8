"""Tests of imbcl.studies.capacity: settings, the task plan, measurements, atlas regimes."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from imbcl.engine.config import ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.history import History
from imbcl.report import registry
from imbcl.studies import capacity as C

TINY_DATA = DataConfig(d=16, k_maj=2, k_min=2, n_corr=1)
TINY_TRAIN = TrainConfig(steps=6, batch=8, record_every=6)


# ------------------------------------------------------------------ settings
def test_profiles_hold_the_claims_regimes_and_enough_seeds():
    for profile in ("full", "small"):
        s = C.Settings.from_params(profile)
        assert set(C.CLAIM_RHOS.values()) <= set(s.rhos)
        assert s.n_seeds >= registry.MIN_SEEDS
        assert s.mask == "token" and s.control_weight_decay < C.RECIPE_WEIGHT_DECAY
    assert C.Settings.from_params("full").width_grid == (32, 64, 128)
    assert C.Settings.from_params("small").width_grid == (64,)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rho_grid": "1,4,16"}, r"rho_grid must hold .* 1, 4, 8, 16 \(got '1,4,16', missing 8\)"),
        ({"rho_grid": "1,8,4,16"}, r"rho_grid must be in increasing order"),
        ({"rho_grid": "0.5,1,4,8,16"}, r"rho_grid values must be >= 1 \(got 0.5\)"),
        ({"widths": "64,32"}, r"widths must be in increasing order"),
        ({"widths": "32,64.5"}, r"widths values must be an integer \(got 64.5\)"),
        ({"widths": "0,64"}, r"widths values must be >= 1 \(got 0\)"),
        ({"widths": ""}, r"widths must list at least one value"),
        ({"control_weight_decay": 0.05}, r"control_weight_decay must differ from the recipe's"),
        ({"control_weight_decay": -1}, r"control_weight_decay must be >= 0 \(got -1.0\)"),
        ({"mask": "pixel"}, r"mask must be one of 'token', 'sample' \(got 'pixel'\)"),
        ({"n_seeds": 1}, r"n_seeds must be >= 2"),
    ],
)
def test_bad_settings_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        C.Settings.from_params("full", **params)


# ------------------------------------------------------------------ the plan
def _runs(tasks):
    return [
        (s.data.rho, s.model.m, s.seed, s.train.weight_decay)
        for t in tasks
        for s in t.kwargs["specs"]
    ]


def test_plan_runs_every_cell_once_plus_the_control_arm_in_stacks_of_one_shape():
    s = C.Settings.from_params("full", n_seeds=3, first_seed=5)
    tasks = C.plan(s)
    assert len(tasks) == len(s.width_grid) * 3
    runs = _runs(tasks)
    sweep = {
        (r, m, seed, C.RECIPE_WEIGHT_DECAY)
        for r in s.rhos
        for m in s.width_grid
        for seed in s.seeds
    }
    control = {(C.CONTROL_RHO, C.CONTROL_M, seed, s.control_weight_decay) for seed in s.seeds}
    assert len(runs) == len(set(runs)) and set(runs) == sweep | control
    for task in tasks:
        specs = task.kwargs["specs"]
        assert len({spec.shape_key() for spec in specs}) == 1
        assert len({spec.seed for spec in specs}) == 1


def test_plan_uses_the_books_recipe_recorded_at_the_end_only():
    s = C.Settings.from_params("small", mask="sample")
    specs = [spec for task in C.plan(s) for spec in task.kwargs["specs"]]
    recipe = TrainConfig()
    for spec in specs:
        assert spec.data == DataConfig(rho=spec.data.rho, mask="sample")
        assert spec.model == ModelConfig(m=spec.model.m)
        assert spec.train == recipe.replace(
            weight_decay=spec.train.weight_decay, record_every=recipe.steps
        )


def test_plan_adds_the_recipe_arm_of_the_control_when_the_sweep_lacks_its_width():
    s = C.Settings.from_params("full", widths="32,128", n_seeds=2)
    at_control = [t for t in C.plan(s) if t.kwargs["specs"][0].model.m == C.CONTROL_M]
    assert [len(t.kwargs["specs"]) for t in at_control] == [2, 2]
    assert _runs(at_control[:1]) == [
        (C.CONTROL_RHO, C.CONTROL_M, 0, C.RECIPE_WEIGHT_DECAY),
        (C.CONTROL_RHO, C.CONTROL_M, 0, s.control_weight_decay),
    ]


# ------------------------------------------------------------------ measurements
def _history(align, noise, specs):
    """A one-record History from (R, m, K) alignments and (R, m) noise norms."""
    align, noise = np.asarray(align, np.float32)[None], np.asarray(noise, np.float32)[None]
    r, m = noise.shape[1:]
    zeros = np.zeros((1, r, m), np.float32)
    minority = np.array([False, False, True, True])
    return History(np.array([10]), align, noise, zeros, np.zeros((1, r)), minority, specs)


def test_final_measurements_counts_owners_coverage_and_learning():
    # 5 neurons, features (maj0, maj1, min0, min1). Neuron 3 is noisy (not specialised),
    # neuron 4 is silent (norm < 5 % of the largest).
    align = [
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.0, 0.1, -0.8, 0.15],
            [0.3, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.01],
        ]
    ]
    noise = [[0.1, 0.1, 0.1, 0.9, 0.0]]
    spec = RunSpec(DataConfig(rho=4, k_maj=2, k_min=2), ModelConfig(m=5), seed=7)
    row = C.final_measurements(_history(align, noise, [spec])).iloc[0]
    assert (row.rho, row.m, row.seed, row.weight_decay) == (4.0, 5, 7, 0.05)
    assert row.n_alive == 4
    assert row.npf_maj == pytest.approx(1.0)  # two neurons on maj0, none on maj1
    assert row.npf_min == pytest.approx(0.5)  # one neuron on min0, none on min1
    assert row.covered_maj == pytest.approx(0.5) and row.covered_min == pytest.approx(0.5)
    assert row.best_min == pytest.approx((0.8 + 0.15) / 2)
    assert row.learned_maj == pytest.approx(0.5)  # maj1 peaks at 0.1 < LEARNED
    assert row.learned_min == pytest.approx(0.5)  # min1 peaks at 0.15 < LEARNED = 0.2


def _tiny(rho, seed, weight_decay=0.05):
    return RunSpec(
        TINY_DATA.replace(rho=rho),
        ModelConfig(m=4, ramp_steps=3),
        TINY_TRAIN.replace(weight_decay=weight_decay),
        seed=seed,
    )


def test_train_stack_keeps_spec_order_and_trains_each_run_as_if_alone():
    specs = [_tiny(1.0, 3), _tiny(8.0, 3), _tiny(8.0, 3, weight_decay=0.005)]
    result = C.train_stack(specs)
    assert list(zip(result.table.rho, result.table.weight_decay, strict=True)) == [
        (1.0, 0.05),
        (8.0, 0.05),
        (8.0, 0.005),
    ]
    hist = History.from_arrays(result.arrays, result.meta)
    assert hist.specs == specs and hist.steps.tolist() == [0, 6]
    single = C.train_stack(specs[1:2])
    np.testing.assert_allclose(single.arrays["align"][:, 0], hist.align[:, 1], rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------ synthetic measurements
WIDTHS = (32, 64)


def _rows(settings, cell):
    """Synthetic measurements: ``cell(rho, m, seed, weight_decay)`` -> dict of columns."""
    out = []
    for rho, m, seed in itertools.product(settings.rhos, WIDTHS, settings.seeds):
        out.append(
            {"rho": rho, "m": m, "seed": seed, "weight_decay": C.RECIPE_WEIGHT_DECAY}
            | cell(rho, m, seed, C.RECIPE_WEIGHT_DECAY)
        )
    for seed in settings.seeds:
        wd = settings.control_weight_decay
        out.append(
            {"rho": C.CONTROL_RHO, "m": C.CONTROL_M, "seed": seed, "weight_decay": wd}
            | cell(C.CONTROL_RHO, C.CONTROL_M, seed, wd)
        )
    return pd.DataFrame(out)


def _cell(rho, m, seed, weight_decay):
    """Majority: 2 neurons per feature; minority: (m / 32) * (4 - log2 rho) / 2 + seed / 10,
    so the relative gap is known in closed form; learning falls with rho, rises with a
    smaller penalty."""
    npf_min = (m / 32) * (4 - np.log2(rho)) / 2 + seed / 10
    learned = 1.0 if rho < 16 else (0.75 if weight_decay < 0.05 else m / 512)
    return {
        "npf_maj": 2.0,
        "npf_min": npf_min,
        "covered_min": min(1.0, 1.5 / rho + seed / 100),
        "learned_min": learned,
        "best_min": 4 * learned / 5,
    }


@pytest.fixture
def settings():
    return C.Settings.from_params("full", widths=",".join(map(str, WIDTHS)), n_seeds=3)


def test_regimes_place_every_rho_and_the_control_on_the_atlas():
    s = C.Settings.from_params("small")
    found = C.regimes(s)
    assert [r["rho"] for r in found] == [*s.rhos, C.CONTROL_RHO]
    assert found[0]["deviation"] == "widths m = 64"
    assert found[-1]["deviation"] == "λ = 0.005, m = 64"


def test_control_rows_label_the_arms_and_ignore_other_penalties(settings):
    rows = _rows(settings, _cell)
    stray = rows.iloc[:1].assign(rho=C.CONTROL_RHO, m=C.CONTROL_M, weight_decay=0.5)
    cell = C.control_rows(pd.concat([rows, stray]), settings)
    assert sorted(cell.arm.unique()) == ["control", "recipe"] and len(cell) == 2 * 3
