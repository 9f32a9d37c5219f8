"""The regime atlas: variants, the cliff read off a learned-share curve, and its interval."""

import math

import numpy as np
import pandas as pd
import pytest

from imbcl.engine.config import ConfigError
from imbcl.studies import atlas


def test_crossing_interpolates_in_log_rho_and_marks_the_grid_edges():
    rhos = np.array([2.0, 4.0, 8.0, 16.0])
    # 1 -> 0 between 4 and 8: the half-way point in log rho is sqrt(32)
    assert atlas.crossing(rhos, np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(math.sqrt(32))
    assert atlas.crossing(rhos, np.array([1.0, 0.75, 0.25, 0.0])) == pytest.approx(math.sqrt(32))
    assert atlas.crossing(rhos, np.ones(4)) == math.inf
    assert atlas.crossing(rhos, np.zeros(4)) == -math.inf


def test_cliff_interval_contains_the_estimate_and_widens_with_disagreeing_seeds():
    rhos = [4.0, 8.0, 16.0]

    def table(shares):  # one row per (seed, rho)
        rows = [
            {"variant": "recipe", "rho": r, "seed": s, "learned": v}
            for s, row in enumerate(shares)
            for r, v in zip(rhos, row, strict=True)
        ]
        return pd.DataFrame(rows)

    agree = atlas.cliff(table([[1, 1, 0]] * 6)).iloc[0]
    assert agree.cliff == pytest.approx(math.sqrt(128)) and agree.lo == agree.hi == agree.cliff
    spread = atlas.cliff(table([[1, 1, 0]] * 3 + [[1, 0, 0]] * 3)).iloc[0]
    assert spread.lo < spread.cliff < spread.hi
    assert spread.seeds == 6


def test_variants_change_one_thing_each():
    base = atlas.variant_spec("recipe", 4.0, 0)
    assert base.train.record_every == base.train.steps
    sample = atlas.variant_spec("sample", 4.0, 0)
    assert sample.data.mask == "sample" and sample.train == base.train
    longer = atlas.variant_spec("steps_double", 4.0, 0)
    assert (longer.train.steps, longer.model.ramp_steps) == (2000, 1000)
    assert longer.train.record_every == 2000


def test_plan_covers_the_recipe_grid_and_each_variant():
    s = atlas.Settings.from_params("small")
    tasks = atlas.plan(s)
    runs = [spec for t in tasks for spec in t.kwargs["specs"]]
    assert len(runs) == len(atlas.cells(s)) == 2 * 2 + 2 * 2
    assert [t.label for t in tasks] == ["atlas rho=4,12 seeds 0-1"] * 2  # recipe, sample masks
    assert {s.data.mask for s in tasks[1].kwargs["specs"]} == {"sample"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"variants": "recipe"}, "variants must be among"),
        ({"variants": "sample,warp"}, "variants must be among"),
        ({"rho_grid": "4,2"}, "rho_grid must be in increasing order"),
        ({"variant_seeds": 9}, "variant_seeds must be <= n_seeds = 6"),
    ],
)
def test_bad_settings_fail_before_compute(params, message):
    with pytest.raises(ConfigError, match=message):
        atlas.Settings.from_params("full", **params)
