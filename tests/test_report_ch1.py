"""Tests for imbcl.report.ch1's claims: one statistic per seed, read from a seed table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.report import ch1
from imbcl.report.registry import for_chapter
from imbcl.studies import stages
from tests.test_stages import synthetic_history


def test_claim_values_name_the_registered_claims():
    stats = stages.seed_statistics(synthetic_history(), stages.Settings.from_params("small"))
    values = ch1.claim_values(stats)
    assert set(values) == {s.id for s in for_chapter("ch1")}
    assert all(len(v) == 2 for v in values.values())


def test_claim_values_read_each_statistic_per_seed():
    stats = pd.DataFrame(
        {
            "onset_gap": [10.0, -4.0, np.nan],
            "noise_I": [2.0, 0.5, -1.0],
            "noise_II": [-0.02, 0.5, 0.1],
            "survivors_III": [-0.3, 0.1, np.nan],
            "log_ratio": [-0.5, 0.2, 0.0],
        }
    )
    values = ch1.claim_values(stats)
    np.testing.assert_array_equal(values["ch1.onset-order"], stats.onset_gap)
    np.testing.assert_array_equal(values["ch1.noise-grows-stage-i"], stats.noise_I)
    # log10(|stage II rate| / stage I rate); undefined where stage I does not grow
    np.testing.assert_allclose(values["ch1.noise-stalls-stage-ii"][:2], [-2.0, 0.0])
    assert np.isnan(values["ch1.noise-stalls-stage-ii"][2])
    np.testing.assert_array_equal(values["ch1.noise-falls-stage-iii"], stats.survivors_III)
    np.testing.assert_array_equal(values["ch1.minority-smaller"], stats.log_ratio)
