"""Figure conventions shared by every chapter: fixed sizes, white faces, colour-blind palette."""

from __future__ import annotations

import warnings

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

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


def band(ax, x, values, label: str, color=None, axis: int = 0, **kw):
    """Plot the mean of ``values`` over ``axis`` (e.g. seeds) with a +-1 s.d. band; NaN
    entries are skipped and an all-NaN column leaves a gap."""
    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        # an all-NaN column (e.g. a group with no specialised neuron) leaves a gap in the line
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=axis)
        sd = np.nanstd(values, axis=axis, ddof=1) if values.shape[axis] > 1 else np.zeros_like(mean)
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.25, lw=0)
    return line


def figure(nrows: int = 1, ncols: int = 1, size=WIDE, **kw):
    """``plt.subplots`` at a fixed book-width size with a constrained layout."""
    return plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kw)
