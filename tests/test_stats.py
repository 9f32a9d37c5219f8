"""Paired t and Spearman rank correlation used by the claims cells."""

import math

import pytest

from imbcl.report import stats as S


def test_spearman_sign_and_degenerate_input():
    assert S.spearman([1, 2, 3, 4], [10, 8, 5, 1]) == pytest.approx(-1.0)
    assert S.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(S.spearman([1, 2, 3], [2, 2, 2]))
    with pytest.raises(ValueError, match="equal length >= 3"):
        S.spearman([1, 2], [1, 2])


def test_spearman_over_a_rho_grid():
    assert S.spearman([1, 4, 8, 16], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert S.spearman([1, 4, 8, 16], [2, 3, 1, 0]) == pytest.approx(-0.8)
    assert math.isnan(S.spearman([1, 4, 8, 16], [1, 1, 1, 1]))


def test_paired_t_statistic():
    assert S.paired_t([1.0, 2.0, 3.0]) == pytest.approx(2.0 / (1.0 / math.sqrt(3)))
    assert S.paired_t([0.0, 0.0]) == 0.0
    assert S.paired_t([0.5, 0.5]) == math.inf
    with pytest.raises(ValueError, match="at least 2"):
        S.paired_t([1.0])
