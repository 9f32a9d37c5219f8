"""Chapter 2's figures and tables: neurons per feature, coverage and the control, seed by seed.

Every band and interval is the mean and 95 % bootstrap CI over seeds
(:func:`imbcl.report.figures.band`, :func:`imbcl.report.paired.summarise`); the rows they
read are :func:`imbcl.studies.capacity.sweep_rows` and
:func:`imbcl.studies.capacity.control_rows`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.report import figures
from imbcl.report.paired import cell_text, summarise
from imbcl.report.verdicts import Verdict
from imbcl.studies import capacity

#: One colour and marker per imbalance ratio, in grid order (colour-blind palette; the group
#: colours of :data:`imbcl.report.figures.COLORS` are left to majority and minority).
RHO_STYLES = tuple(zip((figures.PALETTE[i] for i in (2, 4, 8, 9, 3, 5, 6)), "osD^v<>", strict=True))
#: The two arms of the control, in display order.
ARMS = ("recipe", "control")


def rho_style(index: int) -> dict:
    """Colour and marker of the ``index``-th imbalance ratio of the grid."""
    color, marker = RHO_STYLES[index % len(RHO_STYLES)]
    return {"color": color, "marker": marker}


def _rho_axis(ax, rhos) -> None:
    """A log2 axis of imbalance ratios, ticked at the grid's values."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(rhos), [f"{r:g}" for r in rhos])
    ax.minorticks_off()
    ax.set_xlabel("imbalance ratio ρ")


def _width_axis(ax, widths) -> None:
    """A log2 axis of widths, ticked at the sweep's widths."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(widths), [str(w) for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("width m (neurons)")


def neurons_per_feature(sweep: pd.DataFrame, settings: capacity.Settings):
    """One panel per width: neurons specialised per majority and per minority feature against
    rho, mean and 95 % CI over seeds."""
    widths = settings.width_grid
    fig, axes = figures.figure(1, len(widths), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], widths, strict=True):
        at = sweep[sweep.m == m]
        for group, column in (("majority", "npf_maj"), ("minority", "npf_min")):
            values = at.pivot_table(index="seed", columns="rho", values=column)
            values = values.reindex(columns=list(settings.rhos))
            figures.band(
                ax, values.columns, values.to_numpy(), group, figures.COLORS[group], marker="o"
            )
        _rho_axis(ax, settings.rhos)
        ax.set_title(f"m = {m}")
    axes[0, 0].set_ylabel("neurons per feature (count)")
    axes[0, 0].legend(loc="best")
    return fig


def coverage_and_learning(sweep: pd.DataFrame, settings: capacity.Settings):
    """Two panels against the width, one line per rho (mean and 95 % CI over seeds): the
    share of minority features with a specialised neuron, and the share learned."""
    fig, axes = figures.figure(1, 2, sharey=True)
    panels = (
        ("covered_min", "share of minority features\nwith a specialised neuron"),
        ("learned_min", "share of minority features\nlearned"),
    )
    for ax, (column, label) in zip(axes, panels, strict=True):
        for k, rho in enumerate(settings.rhos):
            values = capacity.by_seed(sweep, column, rho)
            values = values.reindex(columns=list(settings.width_grid))
            figures.band(ax, values.columns, values.to_numpy(), f"ρ = {rho:g}", **rho_style(k))
        _width_axis(ax, settings.width_grid)
        ax.set_ylabel(label)
        ax.set_ylim(-0.03, 1.03)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def arm_label(cell: pd.DataFrame, arm: str) -> str:
    """The tick label of an arm of the control: its penalty, and whether it is the recipe's."""
    weight_decay = cell.loc[cell.arm == arm, "weight_decay"].iloc[0]
    return f"λ = {weight_decay:g}" + (" (recipe)" if arm == "recipe" else "")


def control(cell: pd.DataFrame):
    """The control cell, seed by seed under each penalty: the share of minority features
    learned (left) and their mean best alignment max_i |A_ij| (right, a.u.; dashed: the
    learned threshold). Grey lines join the two arms of a seed; black: mean and 95 % CI."""
    fig, axes = figures.figure(1, 2, size=(figures.WIDE[0], 3.0))
    panels = (
        ("learned_min", "share of minority features\nlearned"),
        ("best_min", "best minority alignment,\nmean over features (a.u.)"),
    )
    x = np.arange(len(ARMS))
    for ax, (column, label) in zip(axes, panels, strict=True):
        table = cell.pivot_table(index="seed", columns="arm", values=column)
        table = table.reindex(columns=list(ARMS))
        ax.plot(x, table.to_numpy().T, color="0.6", lw=0.8, marker="o", ms=3, zorder=1)
        mean, lo, hi = figures.mean_ci(table.to_numpy())
        ax.errorbar(
            x,
            mean,
            yerr=np.maximum([mean - lo, hi - mean], 0.0),
            color="k",
            marker="s",
            capsize=4,
            lw=1.5,
            ls="none",
            zorder=2,
        )
        ax.set_xticks(x, [arm_label(cell, arm) for arm in ARMS])
        ax.set_xlim(-0.4, len(ARMS) - 0.6)
        ax.set_xlabel("L2 penalty of the run")
        ax.set_ylabel(label)
    axes[1].axhline(capacity.LEARNED, color="0.3", ls="--", lw=1)
    return fig


def ratio_table(sweep: pd.DataFrame, settings: capacity.Settings) -> pd.DataFrame:
    """Per rho: the count ratio npf_min / npf_maj at each width and averaged over a seed's
    widths, as 'mean [95 % CI] k/n' over seeds, where k counts the seeds whose ratio exceeds
    the frequency ratio 1/rho (the last column)."""
    rows = []
    for rho in settings.rhos:
        per_seed = capacity.by_seed(sweep, "count_ratio", rho)
        per_seed = per_seed.reindex(columns=list(settings.width_grid))
        per_seed.columns = [f"m = {m}" for m in per_seed.columns]
        per_seed["over the widths"] = per_seed.mean(axis=1, skipna=False)
        summary = summarise(
            per_seed.assign(rho=rho), by=["rho"], values=list(per_seed.columns), null=1.0 / rho
        )
        rows.append(summary.assign(cell=cell_text(summary)))
    long = pd.concat(rows, ignore_index=True)
    table = long.pivot(index="rho", columns="metric", values="cell")
    table = table[list(dict.fromkeys(long.metric))]
    table["frequency ratio 1/ρ"] = [f"{1.0 / r:.3f}" for r in table.index]
    return table.rename_axis(index="ρ", columns=None)


def claim_table(values: dict[str, np.ndarray], settings: capacity.Settings) -> pd.DataFrame:
    """The per-seed statistic of every claim, one row per seed (rounded to 3 decimals)."""
    return pd.DataFrame(values, index=pd.Index(list(settings.seeds), name="seed")).round(3)


def glued(
    sweep: pd.DataFrame, cell: pd.DataFrame, verdicts: dict[str, Verdict], settings
) -> dict[str, float | str]:
    """The numbers and outcomes the chapter's prose quotes, by glue key: each claim's mean
    over seeds (``ch2-mean-<slug>``) and outcome (``ch2-outcome-<slug>``), the mean count
    ratio at each claim's rho (``ch2-ratio-<rho>``), the mean share of minority features
    learned at each rho at the widest width (``ch2-learned-<rho>``) and in each arm of the
    control (``ch2-control-<arm>``). Python floats and strings, as glue needs."""
    out: dict[str, float | str] = {}
    for claim, verdict in verdicts.items():
        slug = claim.split(".", 1)[1]
        out[f"ch2-mean-{slug}"] = float(verdict.mean)
        out[f"ch2-outcome-{slug}"] = verdict.outcome
    widest = max(settings.width_grid)
    for rho in settings.rhos:
        ratio = capacity.width_average(sweep, "count_ratio", rho)
        out[f"ch2-ratio-{rho:g}"] = float(ratio.mean())
        out[f"ch2-learned-{rho:g}"] = float(
            capacity.by_seed(sweep, "learned_min", rho)[widest].mean()
        )
    for arm in ARMS:
        out[f"ch2-control-{arm}"] = float(cell[cell.arm == arm].learned_min.mean())
    return out
