"""Small statistics shared by the chapters' claims: paired t and rank correlation."""

from __future__ import annotations

import math

import numpy as np


def spearman(x, y) -> float:
    """Spearman rank correlation of two equal-length samples (NaN if either is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"need two samples of equal length >= 3 (got {len(x)} and {len(y)})")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def paired_t(delta) -> float:
    """One-sample t statistic of paired differences ``delta``: mean / (s.d. / sqrt(n)).

    0 when every difference is 0; +-inf when they are equal and non-zero.
    """
    d = np.asarray(delta, float)
    if len(d) < 2:
        raise ValueError(f"need at least 2 paired differences (got {len(d)})")
    mean, sd = d.mean(), d.std(ddof=1)
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return float(mean / (sd / math.sqrt(len(d))))
