"""Chapter 5's study: settings and their bounds, one task per (rho, seed), the claims' values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbcl import sweep
from imbcl.engine.config import ConfigError
from imbcl.images import study
from imbcl.images.encoder import step_flops, token_shape
from imbcl.report import ch5
from imbcl.report.paired import paired_deltas
from imbcl.report.registry import for_chapter

#: A tiny run of every method: 4 steps, pruning at step 2, the SDCLR mask refreshed every step.
TINY = dict(
    n_seeds=2, steps=4, warmup=0.5, sdclr_every=1, batch=16, d=8, m=8, proj=4,
    n_max=50, n_probe=10, n_test=5, k_shot=2, n_draws=2,
)  # fmt: skip


def test_profiles_are_valid_and_hold_the_claims_regime():
    for profile in ("full", "small"):
        s = study.Settings.from_params(profile)
        assert study.CLAIM_RHO in s.rhos and s.n_seeds >= 6
        assert set(ch5.CLAIMS.values()) <= {
            (m, r, p, v) for m in s.method_names for r in s.method_names for p, v in
            [("full", "overall"), ("few-shot", "tail")]
        }  # fmt: skip
    small = study.Settings.from_params("small")
    assert small.method_names == [
        "SimCLR", "prune 0.5", "prune 0.9", "random 0.5", "SDCLR 0.5", "balanced", "untrained"
    ]  # fmt: skip
    assert small.simclr.steps == small.steps and small.data_config(50).rho == 50


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rho_grid": "10"}, r"^rho_grid must include 50, the imbalance ratio of the chapter's"),
        ({"rates": "0.5"}, r"^rates must include 0.5, 0.9, the rates of the chapter's"),
        ({"sdclr_rates": ""}, r"^sdclr_rates must include 0.5, the rates"),
        ({"rho_grid": "0.5"}, r"^rho_grid values must be >= 1 \(got 0.5\)$"),
        ({"rho_grid": "50,200"}, r"^rho_grid values must be <= n_max = 120, so that the rarest"),
        ({"n_max": 125}, r"^n_max must be <= 124, the fewest images of one digits class left"),
        ({"k_shot": 101}, r"^k_shot must be <= n_probe = 100 \(got 101\)$"),
        ({"group": 6}, r"^group must be <= 5, half the 10 classes of digits"),
        ({"steps": 50}, r"^sdclr_every must be < steps = 50"),
        ({"warmup": 0.999}, r"^warmup must put the prune step inside training"),
        ({"prune": "W,G1"}, r"^prune must name parameters among E, WQ, WK, WV, W"),
        ({"dataset": "mnist"}, r"^dataset must be one of 'digits', 'cifar10' \(got 'mnist'\)$"),
        ({"download": "maybe"}, r"^download must be a boolean \(got 'maybe'\)$"),
        ({"n_seeds": 1}, r"^n_seeds must be >= 2 \(got 1\)$"),
        ({"rho": 50}, r"^unknown parameter\(s\) rho for imbcl.images.study"),
    ],
)
def test_bad_settings_fail_before_any_compute_naming_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        study.Settings.from_params("small", **params)


def test_cifar_sizes_are_checked_without_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBCL_DATA", str(tmp_path))  # empty: no CIFAR-10 here
    cifar = study.Settings.from_params("full", **study.CIFAR_LT)
    assert cifar.dataset == "cifar10" and cifar.download
    message = r"^n_max must be <= 5000, the fewest images of one cifar10 class in its training"
    with pytest.raises(ConfigError, match=message):
        study.Settings.from_params("full", **(study.CIFAR_LT | {"n_max": 5001}))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        study.load_sets(cifar.replace(download=False))


def test_a_seed_task_does_not_depend_on_how_many_seeds_are_asked():
    two = study.plan(study.Settings.from_params("small", rho_grid="10,50", n_seeds=2))
    five = study.plan(study.Settings.from_params("small", rho_grid="10,50", n_seeds=5))
    env = sweep.NumericEnv.local()
    keys_five = {t.label: t.key(env) for t in five}
    assert len(two) == 4 and len(five) == 10
    assert all(keys_five[t.label] == t.key(env) for t in two)
    later = study.plan(study.Settings.from_params("small", first_seed=3, n_seeds=2))
    assert [t.label for t in later] == ["ch5 rho=50 seed=3", "ch5 rho=50 seed=4"]
    assert {t.key(env) for t in later} <= set(keys_five.values())


def test_training_flops_multiplies_one_step():
    s = study.Settings.from_params("small")
    one = step_flops(s.simclr, *token_shape("digits"))
    assert study.training_flops(s) == one * s.steps * 6 * s.n_seeds
    two = s.replace(rho_grid="10,50")
    assert study.training_flops(two) == 2 * study.training_flops(s)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    settings = study.Settings.from_params("small", **TINY)
    store = tmp_path_factory.mktemp("store")
    results = sweep.run(study.plan(settings), store=store, scheduler="inprocess", progress=False)
    return settings, results


def test_seed_task_rows_arrays_and_meta(tiny_results):
    settings, results = tiny_results
    table = study.results_table(results)
    assert len(table) == 2 * 2 * len(settings.method_names)  # seeds x probes x methods
    assert set(table.method) == set(settings.method_names) and set(table.seed) == {0, 1}
    first = results[0]
    assert first.table.method.iloc[0] == "untrained"
    assert first.meta["methods"] == [m.name for m in settings.methods]
    assert first.meta["cpu_seconds"] > 0 and study.cpu_seconds(results) > 0
    steps, losses = study.loss_curves(settings, results)[50.0]
    assert steps.tolist() == [0, 3] and losses.shape == (2, 2, len(settings.methods))
    assert np.isfinite(losses).all()
    again = study.seed_task(**study.plan(settings)[0].kwargs)
    pd.testing.assert_frame_equal(again.table, first.table)


def test_claims_from_results_one_value_per_seed(tiny_results):
    settings, results = tiny_results
    values = ch5.claims_from_results(settings, results)
    assert list(values) == [s.id for s in for_chapter("ch5")]
    assert all(v.shape == (2,) and np.isfinite(v).all() for v in values.values())
    table = study.results_table(results)
    sel = table[(table.probe == "few-shot") & table.method.isin(["prune 0.5", "SimCLR"])]
    expected = paired_deltas(sel, "method", "SimCLR", ["rho", "seed", "probe"], ["tail"])
    assert np.allclose(values["ch5.prune-helps-tail"], expected.sort_values("seed")["tail"])


def test_loss_contrast_jump_and_final():
    steps = np.array([0, 10, 20, 30])
    losses = np.zeros((2, 4, 2))
    losses[:, :, 1] = [[1.0, 1.0, 3.0, 2.0], [0.0, 0.5, 0.5, 4.0]]  # method; reference 0
    jump, final = study.loss_contrast(steps, losses, ["ref", "m"], "m", "ref", 20, 2)
    assert jump.tolist() == [2.0, 0.0] and final.tolist() == [2.5, 2.25]
    jump, _ = study.loss_contrast(steps, losses, ["ref", "m"], "m", "ref", 0, 2)
    assert np.isnan(jump).all()
