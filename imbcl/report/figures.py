"""Figure conventions shared by every chapter: fixed sizes, white faces, colour-blind palette."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from imbcl.report.stats import bootstrap_ci

#: Book-width figure sizes in inches (width, height).
WIDE, SQUARE = (7.5, 3.2), (4.5, 4.0)
PALETTE = sns.color_palette("colorblind")
#: One colour per group, used identically in every chapter.
COLORS = {"majority": PALETTE[0], "minority": PALETTE[1], "noise": PALETTE[7]}


def setup_style() -> None:
    """Seaborn ticks style, colour-blind palette, white figure and axes faces, 150 dpi."""
    sns.set_theme(style="ticks", palette="colorblind", context="notebook")
    mpl.rcParams.update(
        {
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "figure.dpi": 150,
            "savefig.dpi": 150,
            "figure.figsize": WIDE,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def mean_ci(values, axis: int = 0, n_resamples: int = 2000) -> tuple[np.ndarray, ...]:
    """Mean and 95 % bootstrap CI (:func:`imbcl.report.stats.bootstrap_ci`) of ``values``
    over ``axis`` (the seeds), column by column. NaN entries are left out; a column with fewer
    than two finite values has a NaN interval (and a NaN mean if it has none)."""
    v = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    flat = v.reshape(-1, v.shape[-1])
    mean, lo, hi = (np.full(len(flat), np.nan) for _ in range(3))
    finite = np.isfinite(flat)
    full = finite.all(axis=1)
    if full.any() and flat.shape[1] >= 2:
        lo[full], hi[full] = bootstrap_ci(flat[full], n_resamples=n_resamples)
    for i in np.flatnonzero(~full):
        x = flat[i, finite[i]]
        if len(x) >= 2:
            lo[i], hi[i] = bootstrap_ci(x, n_resamples=n_resamples)
    counts = finite.sum(axis=1)
    mean[counts > 0] = (
        np.nansum(np.where(finite, flat, 0.0), axis=1)[counts > 0] / counts[counts > 0]
    )
    return tuple(a.reshape(v.shape[:-1]) for a in (mean, lo, hi))


def band(ax, x, values, label: str, color=None, axis: int = 0, **kw):
    """Plot the mean of ``values`` over ``axis`` (the seeds) with its 95 % bootstrap CI as a
    band (:func:`mean_ci`); NaN entries are skipped and a column without values leaves a gap."""
    mean, lo, hi = mean_ci(values, axis)
    lo, hi = (np.where(np.isfinite(b), b, np.nan) for b in (lo, hi))  # tied seeds: no band
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, lw=0)
    return line


def figure(nrows: int = 1, ncols: int = 1, size=WIDE, **kw):
    """``plt.subplots`` at a fixed book-width size with a constrained layout."""
    return plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kw)
