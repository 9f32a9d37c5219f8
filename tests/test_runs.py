"""The shared task: blocks of runs trained stacked, each run's record as if alone."""

import numpy as np

from imbcl import DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.studies import runs


def spec(seed, rho=4.0, steps=12):
    data = DataConfig(d=16, k_maj=2, k_min=2, n_corr=2, rho=rho)
    return RunSpec(data, ModelConfig(m=8), TrainConfig(steps=steps, batch=32, record_every=4), seed)


def test_runs_group_by_shape_steps_and_block_of_seeds():
    specs = [spec(s, rho) for rho in (2.0, 8.0) for s in (0, 1, 9)] + [spec(0, steps=8)]
    tasks = runs.run_tasks(specs, "t")
    groups = [t.kwargs["specs"] for t in tasks]
    assert [[(s.seed, s.data.rho) for s in g] for g in groups] == [
        [(0, 2.0), (1, 2.0), (0, 8.0), (1, 8.0)],
        [(9, 2.0), (9, 8.0)],
        [(0, 4.0)],
    ]
    assert tasks[1].label == "t rho=2,8 seeds 9-9"


def test_a_run_stacked_with_others_is_the_run_alone_bit_for_bit():
    specs = [spec(s, rho) for rho in (2.0, 8.0) for s in (0, 1)]
    stacked = runs.train_runs(specs)
    alone = runs.train_runs(specs[2:3])
    together = runs.run_histories([stacked], specs)
    assert np.array_equal(together[2].align, runs.run_histories([alone], specs[2:3])[0].align)
    assert stacked.table.seed.tolist() == [0, 1, 0, 1]
