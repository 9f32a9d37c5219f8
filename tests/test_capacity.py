"""Tests of imbcl.capacity: sweep grouping, per-replica measurements, m*(rho)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from imbcl.engine.config import ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.history import History
from imbcl.studies import capacity as C

TINY = dict(
    data=DataConfig(d=16, k_maj=2, k_min=2, n_corr=1),
    model=ModelConfig(m=4, ramp_steps=4),
    train=TrainConfig(steps=6, batch=8, record_every=100),
)


# ----------------------------------------------------------------------- sweep
def test_sweep_specs_covers_the_grid_with_paired_seeds():
    specs = C.sweep_specs((1.0, 4.0), (4, 8), 3, **TINY)
    assert len(specs) == 2 * 2 * 3
    cells = {(s.data.rho, s.model.m, s.seed) for s in specs}
    assert cells == {(r, m, s) for r in (1.0, 4.0) for m in (4, 8) for s in range(3)}
    assert all(s.data.d == 16 and s.train.steps == 6 for s in specs)


def test_shape_groups_split_by_width_and_steps_keeping_order():
    specs = C.sweep_specs((1.0, 4.0), (4, 8), 1, **TINY)  # order: (1,4) (1,8) (4,4) (4,8)
    longer = RunSpec(TINY["data"], TINY["model"], TINY["train"].replace(steps=9), seed=0)
    assert C.shape_groups([*specs, longer]) == [[0, 2], [1, 3], [4]]


def test_stack_chunk_stacks_small_layers_on_cpu_only():
    small = RunSpec(model=ModelConfig(m=8), train=TrainConfig(batch=64))
    large = RunSpec(model=ModelConfig(m=256), train=TrainConfig(batch=128))
    assert C.stack_chunk(small, 10, "cpu") == 10
    assert C.stack_chunk(large, 10, "cpu") == 1
    assert C.stack_chunk(small, 10, "cuda") is None


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
    assert (row.rho, row.m, row.seed) == (4.0, 5, 7)
    assert row.n_alive == 4
    assert row.npf_maj == pytest.approx(1.0)  # two neurons on maj0, none on maj1
    assert row.npf_min == pytest.approx(0.5)  # one neuron on min0, none on min1
    assert not row.cov_maj and not row.cov_min
    assert row.best_min == pytest.approx((0.8 + 0.15) / 2)
    assert row.learned_min == pytest.approx(0.5)  # min1 peaks at 0.15 < LEARNED = 0.2


def test_run_sweep_returns_rows_in_spec_order_and_is_deterministic():
    specs = C.sweep_specs((1.0, 8.0), (4, 6), 2, **TINY)
    rows, cost = C.run_sweep(specs, device="cpu")
    again, _ = C.run_sweep(specs, device="cpu")
    assert list(zip(rows.rho, rows.m, rows.seed, strict=True)) == [
        (s.data.rho, s.model.m, s.seed) for s in specs
    ]
    assert cost.replicas.tolist() == [4, 4] and cost.m.tolist() == [4, 6]
    assert (cost.wall_s > 0).all() and (cost.cpu_s > 0).all()
    pd.testing.assert_frame_equal(rows, again)
    assert ((rows.npf_min >= 0) & (rows.n_alive <= rows.m)).all()


def test_run_sweep_rejects_an_empty_list():
    with pytest.raises(ConfigError, match="at least one RunSpec"):
        C.run_sweep([])


# -------------------------------------------------------------------- analysis
def _rows(cov: dict, learned: dict | None = None, seeds: int = 10):
    """Synthetic rows: cov[(rho, m)] = fraction of seeds covered (first ones True)."""
    out = []
    for (rho, m), p in cov.items():
        frac = 1.0 if learned is None else learned[(rho, m)]
        for s in range(seeds):
            out.append(
                {
                    "rho": rho,
                    "m": m,
                    "seed": s,
                    "cov_min": s < round(p * seeds),
                    "learned_min": frac,
                    "npf_maj": 2.0,
                    "npf_min": 1.0 + s,
                    "n_alive": m,
                    "cov_maj": True,
                }
            )
    return pd.DataFrame(out)


def test_critical_width_reads_the_grid_and_keeps_not_reached_explicit():
    cov = {
        (1.0, 8): 0.5, (1.0, 16): 1.0, (1.0, 32): 1.0,
        (4.0, 8): 0.0, (4.0, 16): 0.8, (4.0, 32): 0.9,
        (16.0, 8): 0.0, (16.0, 16): 0.3, (16.0, 32): 0.6,
        (32.0, 8): 0.0, (32.0, 16): 0.0, (32.0, 32): 0.0,
    }  # fmt: skip
    learned = {k: (0.1 if k[0] == 32.0 else 1.0) for k in cov}
    table = C.critical_width(_rows(cov, learned))
    assert table.rho.tolist() == [1.0, 4.0, 16.0, 32.0]
    assert table.m_star.tolist()[:2] == [16.0, 32.0]
    assert math.isnan(table.m_star[2]) and math.isnan(table.m_star[3])
    assert table.status.tolist() == [
        "reached",
        "reached",
        "not reached (learned but not covered)",
        "not reached (minority features not learned)",
    ]
    assert C.format_m_star(table).m_star.tolist() == ["16", "32", "not reached", "not reached"]
    assert C.width_rank(table.m_star, [8, 16, 32]).tolist() == [1, 2, 3, 3]


def test_critical_width_rejects_a_bad_level():
    with pytest.raises(ConfigError, match=r"level must be in \(0, 1\] \(got 1.5\)"):
        C.critical_width(_rows({(1.0, 8): 1.0}), level=1.5)


def test_cell_summary_means_and_sds_over_seeds():
    summary = C.cell_summary(_rows({(1.0, 8): 0.5, (4.0, 8): 1.0}, seeds=4))
    assert summary.seeds.tolist() == [4, 4]
    assert summary.npf_min.tolist() == [2.5, 2.5]  # seeds give 1, 2, 3, 4
    assert summary.npf_min_sd[0] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert summary.cov_min.tolist() == [0.5, 1.0]


def test_width_rank_rejects_off_grid_widths():
    with pytest.raises(ValueError, match="not a width of the grid"):
        C.width_rank([12.0], [8, 16])


def test_rank_decreases_counts_only_drops():
    assert C.rank_decreases([0, 0, 1, 3, 3]) == 0
    assert C.rank_decreases([0, 2, 1, 3, 2]) == 2


def test_ramped_scales_the_bias_ramp_with_the_run():
    assert C.ramped(ModelConfig(), 1000, 0.5).ramp_steps == 500
    assert C.ramped(ModelConfig(), 1, 0.1).ramp_steps == 1
    with pytest.raises(ConfigError, match=r"ramp_fraction must be in \(0, 1\] \(got 0\)"):
        C.ramped(ModelConfig(), 1000, 0)


def test_control_specs_pair_seeds_across_arms():
    trains = [TINY["train"].replace(steps=10), TINY["train"].replace(steps=10, weight_decay=0.01)]
    specs = C.control_specs(16.0, 8, 2, TINY["data"], TINY["model"], trains, 0.5)
    assert [(s.train.weight_decay, s.seed) for s in specs] == [
        (0.05, 0), (0.05, 1), (0.01, 0), (0.01, 1)
    ]  # fmt: skip
    assert all(s.data.rho == 16.0 and s.model.m == 8 and s.model.ramp_steps == 5 for s in specs)
    assert len(C.shape_groups(specs)) == 1  # both arms train as one group


def test_group_ratio_compares_counts_with_frequency():
    rows = _rows({(1.0, 8): 1.0, (4.0, 8): 1.0, (4.0, 16): 1.0}, seeds=2)
    out = C.group_ratio(rows, 8)
    assert out.rho.tolist() == [1.0, 4.0]
    assert out.ratio_min_maj.tolist() == [0.75, 0.75]  # npf_min mean 1.5, npf_maj 2
    assert out.frequency_ratio.tolist() == [1.0, 0.25]
