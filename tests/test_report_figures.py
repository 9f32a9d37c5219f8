import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from imbcl.report import figures  # noqa: E402
from imbcl.report.stats import bootstrap_ci  # noqa: E402


def test_mean_ci_is_the_bootstrap_ci_per_column_and_skips_nan():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(8, 3))  # 8 seeds, 3 columns
    values[2, 1] = np.nan
    values[:, 2] = np.nan
    values[0, 2] = 1.0
    mean, lo, hi = figures.mean_ci(values, n_resamples=999)
    assert np.allclose((lo[0], hi[0]), bootstrap_ci(values[:, 0], n_resamples=999))
    rest = np.delete(values[:, 1], 2)
    assert np.isclose(mean[1], rest.mean())
    assert np.allclose((lo[1], hi[1]), bootstrap_ci(rest, n_resamples=999))
    assert mean[2] == 1.0 and np.isnan(lo[2]) and np.isnan(hi[2])  # one value: no interval


def test_band_draws_the_mean_line():
    fig, ax = figures.figure()
    line = figures.band(ax, np.arange(4), np.ones((5, 4)) + np.arange(5)[:, None], "x")
    assert np.allclose(line.get_ydata(), 3.0)
    figures.plt.close(fig)
