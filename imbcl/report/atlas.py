"""The regime atlas's figure and tables: the learnability cliff per variant of the recipe,
with every chapter's regimes marked on it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from imbcl.report import book, figures
from imbcl.studies import atlas

#: Chapters whose study modules place their regimes on the atlas (``regimes(settings)``).
SYNTHETIC = ("ch1", "ch2", "ch3", "ch4")


def chapter_regimes(profile: str = "full") -> pd.DataFrame:
    """One row per regime a synthetic chapter runs at its ``profile`` settings: chapter,
    label, rho, what it changes in the recipe and why (from each study's ``regimes``)."""
    rows = []
    for chapter in SYNTHETIC:
        module = book.study_module(chapter)
        settings = module.Settings.from_params(profile)
        rows += [{"chapter": chapter, **r} for r in module.regimes(settings)]
    return pd.DataFrame(rows, columns=["chapter", "label", "rho", "deviation", "reason"])


def cliff_text(row: pd.Series) -> str:
    """'8.9 [7.4, 10.8]', with a bound beyond the rho grid written as '> 24' or '< 4'."""

    def bound(x: float) -> str:
        if x == math.inf:
            return f"> {row.rho_max:g}"
        if x == -math.inf:
            return f"< {row.rho_min:g}"
        return f"{x:.3g}"

    return f"{bound(row.cliff)} [{bound(row.lo)}, {bound(row.hi)}]"


def cliff_table(cliffs: pd.DataFrame) -> pd.DataFrame:
    """Per variant: what it changes and its cliff with the 95 % interval over seeds."""
    return pd.DataFrame(
        {
            "variant": [atlas.LABELS[v] for v in cliffs.variant],
            "cliff rho [95% CI]": [cliff_text(row) for _, row in cliffs.iterrows()],
            "seeds": cliffs.seeds.to_numpy(),
        }
    ).set_index("variant")


def _per_seed(table: pd.DataFrame, value: str) -> pd.DataFrame:
    return table.pivot_table(index="seed", columns="rho", values=value)


def atlas_figure(table: pd.DataFrame, cliffs: pd.DataFrame, regimes: pd.DataFrame):
    """Left: the learned share of minority features against rho per variant (mean and 95 %
    CI over seeds), the recipe's cliff as a dashed line and each chapter's regimes as ticks.
    Right: log(final minority / majority best alignment) for the recipe and for one mask per
    sample."""
    fig, (left, right) = figures.figure(1, 2, size=(7.5, 3.6))
    colours = dict(zip(atlas.VARIANTS, figures.PALETTE, strict=False))
    for variant, sub in table.groupby("variant", sort=False):
        grid = _per_seed(sub, "learned")
        figures.band(
            left,
            grid.columns,
            grid.to_numpy(),
            atlas.LABELS[variant],
            colours[variant],
            marker="o",
            ms=3,
        )
        if variant in ("recipe", "sample"):
            ratio = _per_seed(sub, "log_ratio")
            figures.band(
                right,
                ratio.columns,
                ratio.to_numpy(),
                atlas.LABELS[variant],
                colours[variant],
                marker="o",
                ms=3,
            )
    recipe = cliffs.set_index("variant").loc["recipe"]
    if np.isfinite(recipe.cliff):
        left.axvline(recipe.cliff, color=colours["recipe"], ls="--", lw=1)
    rhos = sorted(set(table.rho))
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(rhos, [f"{r:g}" for r in rhos])
        ax.minorticks_off()
        ax.set_xlabel("imbalance ratio ρ")
        for _, r in regimes.iterrows():
            ax.plot(r.rho, 0, marker="|", ms=12, color="0.3", transform=ax.get_xaxis_transform())
    for rho, labels in regimes.groupby("rho").label:
        left.annotate(
            "\n".join(sorted(set(labels))),
            (rho, 0.02),
            xycoords=("data", "axes fraction"),
            fontsize=6,
            ha="center",
            va="bottom",
        )
    left.axhline(atlas.HALF, color="0.6", lw=0.8, ls=":")
    left.set_ylabel("minority features learned (share)")
    left.set_ylim(-0.05, 1.05)
    right.axhline(0, color="0.6", lw=0.8, ls=":")
    right.set_ylabel("log(final minority / majority)")
    left.legend(fontsize=7, loc="upper right")
    return fig
