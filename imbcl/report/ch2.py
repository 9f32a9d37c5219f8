"""Chapter 2's figures and tables (neurons per feature, coverage and the control, seed by seed)
and its claims' per-seed statistics (:func:`claim_values`).

Every band and interval is the mean and 95 % bootstrap CI over seeds
(:func:`imbcl.report.figures.band`, :func:`imbcl.report.paired.summarise`); the rows they
read are :func:`imbcl.studies.capacity.sweep_rows` and
:func:`imbcl.studies.capacity.control_rows`. Every claim statistic is one number per seed:
where a claim is stated "over the widths", each seed's widths are averaged first, since the
widths of one seed share its dictionary and are not independent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.report import figures
from imbcl.report.paired import cell_text, summarise
from imbcl.report.stats import spearman
from imbcl.studies import capacity

#: One colour and marker per imbalance ratio, in grid order (colour-blind palette; the group
#: colours of :data:`imbcl.report.figures.COLORS` are left to majority and minority).
RHO_STYLES = tuple(zip((figures.PALETTE[i] for i in (2, 4, 8, 9, 3, 5, 6)), "osD^v<>", strict=True))
#: The two arms of the control, in display order.
ARMS = ("recipe", "control")


#: How the discussion reads each outcome of each claim ({claim id: {outcome: Markdown}}).
READINGS = {
    "ch2.balanced-control": {
        "holds": "At ρ = 1 the two groups get the same number of neurons within 15 %, as "
        "they must when they are exchangeable: the count does not favour either group by "
        "construction.",
        "fails": "At ρ = 1, where the two groups are exchangeable, their counts differ by more "
        "than 15 %: the count itself treats the groups differently, and every other count "
        "claim of this chapter is suspect.",
        "undecided": "At ρ = 1 the seeds do not bound the difference between the groups within "
        "15 %: the count is too noisy at these widths and seeds to serve as a precise control, "
        "and differences of that size elsewhere in the chapter are not resolved either.",
    },
    "ch2.fewer-neurons": {
        "holds": "At ρ = 4 fewer neurons specialise in each minority feature than in each "
        "majority feature, as the paper's picture has it.",
        "fails": "At ρ = 4 *more* neurons specialise in each minority feature than in each "
        "majority feature, against the paper's picture: a learned minority feature does not "
        "cost the network neurons here, it attracts them.",
        "undecided": "At ρ = 4 the seeds do not tell whether a minority feature gets fewer "
        "neurons than a majority feature.",
    },
    "ch2.fewer-neurons-near-cliff": {
        "holds": "At ρ = 8, near the learnability cliff, fewer neurons specialise in each "
        "minority feature than in each majority feature.",
        "fails": "At ρ = 8, near the learnability cliff, *more* neurons specialise in each "
        "minority feature than in each majority feature.",
        "undecided": "At ρ = 8, near the learnability cliff, the seeds do not tell which group "
        "gets more neurons per feature.",
    },
    "ch2.decline": {
        "holds": "Over the whole ρ grid the minority count falls as ρ grows, in the rank sense.",
        "fails": "Over the whole ρ grid the minority count *rises* with ρ, in the rank sense.",
        "undecided": "Over the whole ρ grid the seeds do not show a monotone trend of the "
        "minority count with ρ.",
    },
    "ch2.coverage-shrinks": {
        "holds": "A smaller share of the minority features has a neuron of its own at ρ = 8 "
        "than at ρ = 1.",
        "fails": "A *larger* share of the minority features has a neuron of its own at ρ = 8 "
        "than at ρ = 1.",
        "undecided": "The seeds do not tell whether fewer minority features have a neuron of "
        "their own at ρ = 8 than at ρ = 1.",
    },
    "ch2.cliff-not-width": {
        "holds": "At ρ = 16 fewer than half of the minority features are learned even at the "
        "widest width: past the cliff, width does not serve them.",
        "fails": "At ρ = 16 at least half of the minority features are learned at the widest "
        "width: past the recipe's cliff at the recipe's width, a wider network does serve "
        "them.",
        "undecided": "At ρ = 16 the seeds do not tell whether half of the minority features "
        "are learned at the widest width.",
    },
    "ch2.lower-penalty-learns": {
        "holds": "At ρ = 16 and m = 64 the smaller penalty lets more minority features be "
        "learned, on each seed's own dictionary and data: at the same width, what keeps them "
        "from being learned is the recipe's penalty, not the number of neurons.",
        "fails": "At ρ = 16 and m = 64 the smaller penalty lets *fewer* minority features be "
        "learned than the recipe's penalty.",
        "undecided": "At ρ = 16 and m = 64 the seeds do not tell whether the smaller penalty "
        "lets more minority features be learned.",
    },
}


# ------------------------------------------------------------------ one statistic per seed
def by_seed(sweep: pd.DataFrame, column: str, rho: float) -> pd.DataFrame:
    """``column`` at ``rho`` as a seed x width table (one row per seed), from
    :func:`imbcl.studies.capacity.sweep_rows`."""
    return sweep[sweep.rho == rho].pivot(index="seed", columns="m", values=column)


def width_average(sweep: pd.DataFrame, column: str, rho: float) -> pd.Series:
    """Per seed, the mean over the widths of ``column`` at ``rho`` (NaN if any width is)."""
    return by_seed(sweep, column, rho).mean(axis=1, skipna=False)


def decline(sweep: pd.DataFrame) -> pd.Series:
    """Per seed, Spearman(rho, npf_min) over the rho grid (:func:`imbcl.report.stats.spearman`),
    averaged over the widths; NaN if a cell is missing or if the minority count is the same at
    every rho of some width (no ranks to correlate)."""
    counts = sweep.pivot(index=["seed", "m"], columns="rho", values="npf_min")
    rhos = counts.columns.to_numpy(float)
    corr = pd.Series(
        [np.nan if np.isnan(c).any() else spearman(rhos, c) for c in counts.to_numpy(float)],
        index=counts.index,
    )
    return corr.unstack("m").mean(axis=1, skipna=False)


def learned_control(rows: pd.DataFrame, settings: capacity.Settings) -> pd.DataFrame:
    """Per seed, the share of minority features learned in the control cell under each arm
    (columns "recipe", "control") and their paired difference ("difference"), from
    :func:`imbcl.studies.capacity.measurements`."""
    cell = capacity.control_rows(rows, settings)
    table = cell.pivot_table(index="seed", columns="arm", values="learned_min", dropna=False)
    table = table.reindex(columns=list(ARMS))
    return table.assign(difference=table.control - table.recipe)


def claim_values(rows: pd.DataFrame, settings: capacity.Settings) -> dict[str, np.ndarray]:
    """The per-seed statistic of each Chapter 2 claim (one value per seed of ``settings``,
    in seed order; NaN where a seed's value is undefined), from
    :func:`imbcl.studies.capacity.measurements`."""
    sweep = capacity.sweep_rows(rows, settings)
    rho = capacity.CLAIM_RHOS
    widest = max(settings.width_grid)
    values = {
        "ch2.balanced-control": width_average(sweep, "relative_gap", rho["balanced"]),
        "ch2.fewer-neurons": width_average(sweep, "relative_gap", rho["fewer"]),
        "ch2.fewer-neurons-near-cliff": width_average(sweep, "relative_gap", rho["near_cliff"]),
        "ch2.decline": decline(sweep),
        "ch2.coverage-shrinks": width_average(sweep, "covered_min", rho["balanced"])
        - width_average(sweep, "covered_min", rho["near_cliff"]),
        "ch2.cliff-not-width": by_seed(sweep, "learned_min", rho["past"])[widest],
        "ch2.lower-penalty-learns": learned_control(rows, settings).difference,
    }
    seeds = list(settings.seeds)
    return {k: v.reindex(seeds).to_numpy(dtype=float) for k, v in values.items()}


def claims_from_results(settings: capacity.Settings, results) -> dict[str, np.ndarray]:
    """:func:`claim_values` straight from the results of :func:`imbcl.studies.capacity.plan`."""
    return claim_values(capacity.measurements(results), settings)


# ------------------------------------------------------------------ figures and tables
def rho_style(index: int) -> dict:
    """Colour and marker of the ``index``-th imbalance ratio of the grid."""
    color, marker = RHO_STYLES[index % len(RHO_STYLES)]
    return {"color": color, "marker": marker}


def dodge(index: int, count: int, step: float = 0.04) -> float:
    """Factor that shifts the ``index``-th of ``count`` lines on a log2 axis by ``step``
    octaves from the next, centred on the true position (1.0 for a single line)."""
    return 2.0 ** ((index - (count - 1) / 2) * step)


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
    share of minority features with a specialised neuron, and the share learned. Each rho's
    points are shifted a little along the width axis (:func:`dodge`) so that equal shares
    stay visible."""
    fig, axes = figures.figure(1, 2, sharey=True)
    panels = (
        ("covered_min", "share of minority features\nwith a specialised neuron"),
        ("learned_min", "share of minority features\nlearned"),
    )
    for ax, (column, label) in zip(axes, panels, strict=True):
        for k, rho in enumerate(settings.rhos):
            values = by_seed(sweep, column, rho)
            values = values.reindex(columns=list(settings.width_grid))
            x = values.columns.to_numpy() * dodge(k, len(settings.rhos))
            figures.band(ax, x, values.to_numpy(), f"ρ = {rho:g}", **rho_style(k))
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
        per_seed = by_seed(sweep, "count_ratio", rho)
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


def cell_means(sweep: pd.DataFrame, column: str) -> pd.DataFrame:
    """rho x width table of the mean over seeds of ``column``."""
    return sweep.pivot_table(index="rho", columns="m", values=column, aggfunc="mean")


def glued(sweep: pd.DataFrame, cell: pd.DataFrame) -> dict[str, float]:
    """The chapter's numbers that the prose quotes besides the claims' own
    (:func:`imbcl.report.text.verdict_values`), by glue key; each a mean over seeds.

    Per rho: the count ratio averaged over a seed's widths (``ch2-ratio-<rho>``) and at the
    narrowest and widest widths (``-narrowest``, ``-widest``); the share of minority features
    covered and learned averaged over widths (``ch2-covered-<rho>``,
    ``ch2-learned-avg-<rho>``), learned at the widest width (``ch2-learned-<rho>``) and at the
    narrowest (``ch2-learned-<rho>-narrowest``). Then ``ch2-covered-learned-gap``, the largest
    difference between the covered and the learned share over the cells of the sweep, and the
    share learned in each arm of the control (``ch2-control-<arm>``). Plain Python floats.
    """
    means = {c: cell_means(sweep, c) for c in ("count_ratio", "covered_min", "learned_min")}
    out: dict[str, float] = {}
    for rho in means["count_ratio"].index:
        average = {c: width_average(sweep, c, rho).mean() for c in means}
        ratio, learned = means["count_ratio"].loc[rho], means["learned_min"].loc[rho]
        out |= {
            f"ch2-ratio-{rho:g}": average["count_ratio"],
            f"ch2-ratio-{rho:g}-narrowest": ratio.iloc[0],
            f"ch2-ratio-{rho:g}-widest": ratio.iloc[-1],
            f"ch2-covered-{rho:g}": average["covered_min"],
            f"ch2-learned-avg-{rho:g}": average["learned_min"],
            f"ch2-learned-{rho:g}": learned.iloc[-1],
            f"ch2-learned-{rho:g}-narrowest": learned.iloc[0],
        }
    gap = (means["covered_min"] - means["learned_min"]).abs().to_numpy().max()
    out["ch2-covered-learned-gap"] = gap
    for arm in ARMS:
        out[f"ch2-control-{arm}"] = cell[cell.arm == arm].learned_min.mean()
    return {k: float(v) for k, v in out.items()}
