"""Chapter 5's figure: paired deltas seed by seed.

Kept beside the image pipeline for now; it belongs with the report layer's figures
(:mod:`imbcl.report.figures`) and will move there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.engine.metrics import mean_sd
from imbcl.images.analysis import delta_values


def plot_paired(ax, deltas: pd.DataFrame, metric: str, order: list[str], **where) -> None:
    """One column per method: each seed's paired delta (dots) and mean ± sd (bar), in points;
    rows filtered by ``where`` (e.g. probe='full', rho=10)."""
    rng = np.random.default_rng(0)
    names = [m for m in order if m in set(deltas.method)]
    for i, method in enumerate(names):
        v = delta_values(deltas, method, metric, **where)
        x = i + rng.uniform(-0.15, 0.15, size=v.size)
        ax.scatter(x, v, s=10, alpha=0.6, color="0.45", lw=0)
        mean, sd = mean_sd(v)
        ax.errorbar(i + 0.3, mean, yerr=sd, fmt="o", color="C0", ms=4, capsize=3)
    ax.axhline(0.0, color="0.2", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
