"""Chapter 4's figures and tables (paired changes of pruning, seed by seed) and its claims'
per-seed statistics (:func:`claim_values`).

Every figure and table here reads the long table of :func:`imbcl.studies.pruning.results_table`
(one row per rho, seed and branch) or its paired changes (:func:`paired`): each pruned
branch minus the unpruned twin of the same seed, summarised over seeds with a 95 % bootstrap
CI and "k of n seeds improved". A group of fewer than :data:`CI_MIN_SEEDS` seeds (the phase
diagram's other cells) gets no interval: the bootstrap's coverage was measured from that many
seeds up; its seeds are shown one by one instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from imbcl.report import figures, text
from imbcl.report.paired import cell_text, paired_deltas, summarise
from imbcl.report.registry import MIN_SEEDS
from imbcl.studies import pruning, stages

#: Bases in display order, with what each knows of the data model.
BASES = {
    "coordinate": "coordinate",
    "feature": "dictionary",
    "feature_random": "features\n+ random rest",
    "feature_noise": "features\n+ noise directions",
    "estimated": "FastICA",
}
#: One colour, marker and line style per pruning mode.
MODE_STYLE = {
    "magnitude": {"color": figures.PALETTE[2], "marker": "o", "ls": "-"},
    "random": {"color": figures.PALETTE[4], "marker": "s", "ls": "--"},
}
#: Fewest seeds for a 95 % CI in a figure or table of this chapter.
CI_MIN_SEEDS = MIN_SEEDS
#: The paired changes shown in the map's table, with their headings.
CHANGES = {
    "d_probe_min": "Δ minority probe",
    "d_probe_maj": "Δ majority probe",
    "d_neurons_min": "Δ neurons / minority feature",
    "d_purity_min": "Δ minority purity",
}


def paired(table: pd.DataFrame, metrics: Sequence[str] = pruning.METRICS) -> pd.DataFrame:
    """Every pruned row of ``table`` minus the twin of the same (rho, t1, seed): columns
    ``d_<metric>`` for each of ``metrics`` (default :data:`imbcl.studies.pruning.METRICS`)."""
    return paired_deltas(
        table,
        by="setting",
        reference=pruning.TWIN.label,
        pair_on=["rho", "t1", "seed"],
        values=list(metrics),
        prefix="d_",
    )


def level_cell(values: np.ndarray) -> str:
    """'mean (min–max)' of per-seed ``values``: a level, described rather than tested."""
    values = np.asarray(values, float)
    return f"{values.mean():.3f} ({values.min():.3f}–{values.max():.3f})"


def twin_levels(table: pd.DataFrame) -> pd.DataFrame:
    """The unpruned twins' end-of-training measurements: one row per rho (with its number of
    seeds), one column per metric, each :func:`level_cell` over seeds."""
    twins = table[table.setting == pruning.TWIN.label]
    out = twins.groupby("rho")[list(pruning.METRICS)].agg(level_cell)
    out.insert(0, "seeds", twins.groupby("rho").size())
    return out


def map_table(deltas: pd.DataFrame) -> pd.DataFrame:
    """One row per setting of the main cell: each paired change of :data:`CHANGES` as
    'mean [95 % CI] k/n' (k: seeds above 0)."""
    summary = summarise(deltas, by=["setting"], values=list(CHANGES))
    summary["cell"] = cell_text(summary, digits=3)
    order = list(dict.fromkeys(deltas.setting))
    wide = summary.pivot(index="setting", columns="metric", values="cell")
    return wide.loc[order, list(CHANGES)].rename(columns=CHANGES)


def _mean_ci_by(frame: pd.DataFrame, by: str, column: str) -> pd.DataFrame:
    """Mean and 95 % bootstrap CI over seeds of ``column`` for each value of ``by``; the CI
    is NaN below :data:`CI_MIN_SEEDS` seeds."""
    rows = []
    for key, grp in frame.groupby(by, sort=True):
        mean, lo, hi = (x[0] for x in figures.mean_ci(grp[column].to_numpy()[:, None]))
        if len(grp) < CI_MIN_SEEDS:
            lo = hi = np.nan
        rows.append({by: key, "mean": mean, "lo": lo, "hi": hi, "n": len(grp)})
    return pd.DataFrame(rows, columns=[by, "mean", "lo", "hi", "n"])


def _errorbars(ax, x, stats: pd.DataFrame, **style) -> None:
    """Means with asymmetric CI bars at ``x`` (bars left out where the CI is undefined)."""
    err = np.vstack([stats["mean"] - stats.lo, stats.hi - stats["mean"]])
    ax.errorbar(x, stats["mean"], yerr=np.nan_to_num(err), capsize=3, ms=5, **style)


def mode_legend(target, **kw) -> None:
    """A legend of the two pruning modes (:data:`MODE_STYLE`) on an axes or a figure."""
    handles = [plt.Line2D([], [], label=mode, **style) for mode, style in MODE_STYLE.items()]
    target.legend(handles=handles, fontsize=8, **kw)


def basis_panels(frame: pd.DataFrame, column: str, ylabel: str, seeds: bool = False):
    """One panel per basis present in ``frame`` (one cell): ``column`` against the rate
    (evenly spaced), one line per mode, mean and 95 % bootstrap CI over seeds; with
    ``seeds``, each seed also as a grey dot."""
    bases = [b for b in BASES if b in set(frame.basis)]
    rates = sorted(set(frame.rate))
    pos = {rate: i for i, rate in enumerate(rates)}
    fig, axes = figures.figure(1, len(bases), sharey=True, squeeze=False)
    for ax, basis in zip(axes[0], bases, strict=True):
        rows = frame[frame.basis == basis]
        for shift, (mode, style) in zip((-0.1, 0.1), MODE_STYLE.items(), strict=True):
            own = rows[rows["mode"] == mode]
            if seeds:
                x = [pos[r] + shift for r in own.rate]
                ax.scatter(x, own[column], color="0.65", s=8, zorder=1, lw=0)
            stats = _mean_ci_by(own, "rate", column)
            if len(stats):
                _errorbars(ax, [pos[r] + shift for r in stats.rate], stats, **style)
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_title(BASES[basis], fontsize=9)
        ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
        ax.set_xlim(-0.5, len(rates) - 0.5)
    fig.supxlabel("pruning rate p (fraction of coefficients zeroed)", fontsize=10)
    axes[0, 0].set_ylabel(ylabel)
    mode_legend(axes[0, -1], loc="best")
    return fig


def delta_vs_rate(deltas: pd.DataFrame, metric: str = "d_probe_min"):
    """:func:`basis_panels` of the paired change ``metric`` (pruned minus twin)."""
    return basis_panels(deltas, metric, f"{CHANGES.get(metric, metric)}\n(pruned − twin)")


def phase_diagram(table: pd.DataFrame, deltas: pd.DataFrame, setting: pruning.Setting):
    """Across the imbalance ratios of ``table``: left, the minority probe of the unpruned
    twin and of ``setting`` at the end of training; right, their paired change. Each seed a
    grey dot; mean and 95 % bootstrap CI over seeds (no CI below :data:`CI_MIN_SEEDS`)."""
    fig, (left, right) = figures.figure(1, 2)
    rhos = sorted(set(table.rho))
    pos = {rho: i for i, rho in enumerate(rhos)}
    for shift, (label, color) in zip(
        (-0.08, 0.08),
        ((pruning.TWIN.label, "0.3"), (setting.label, MODE_STYLE[setting.mode]["color"])),
        strict=True,
    ):
        rows = table[table.setting == label]
        left.scatter([pos[r] + shift for r in rows.rho], rows.probe_min, color="0.65", s=8, lw=0)
        stats = _mean_ci_by(rows, "rho", "probe_min")
        x = np.array([pos[r] for r in stats.rho]) + shift
        _errorbars(left, x, stats, label=label, color=color, marker="o", ls="-")
    left.axhline(1 / 3, color="0.5", lw=0.8, ls=":")
    left.text(0, 1 / 3, " chance", va="bottom", fontsize=8, color="0.4")
    left.set_ylabel("minority probe (balanced accuracy)")
    left.legend(fontsize=8, loc="upper right")
    rows = deltas[deltas.setting == setting.label]
    stats = _mean_ci_by(rows, "rho", "d_probe_min")
    right.scatter(
        [pos[r] for r in rows.rho], rows.d_probe_min, color="0.65", s=10, zorder=1, label="seed"
    )
    style = {"color": MODE_STYLE[setting.mode]["color"], "marker": "o", "ls": "none"}
    _errorbars(right, [pos[r] for r in stats.rho], stats, label="mean (95 % CI)", **style)
    right.axhline(0.0, color="0.5", lw=0.8)
    right.set_ylabel("Δ minority probe (pruned − twin)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xticks(range(len(rhos)), [f"{r:g}" for r in rhos])
        ax.set_xlabel("imbalance ratio ρ")
    return fig


def update_panel(table: pd.DataFrame):
    """:func:`basis_panels` of the log amplification of minority / majority update sizes on
    the kept feature coefficients (pruned branch against its twin on the same pairs), for
    the settings that measure it, seeds as dots; 0 = no tilt."""
    rows = table[np.isfinite(table.log_amplification)]
    return basis_panels(
        rows, "log_amplification", "log amplification of\nminority / majority updates", True
    )


def stage_check(results) -> pd.DataFrame:
    """Per (rho, seed) of the results of :func:`imbcl.studies.pruning.plan`: the pruning step
    t1, the twin's stage boundaries (Chapter 1's :func:`imbcl.studies.stages.stage_boundaries`
    on :func:`imbcl.studies.pruning.twin_histories`, steps; NaN if not found) and whether t1
    lies strictly inside stage II."""
    t1 = {(r.table.rho[0], r.table.seed[0]): int(r.table.t1[0]) for r in results}
    frames = []
    for rho, hist in pruning.twin_histories(results).items():
        bounds = stages.stage_boundaries(hist)
        seeds = [s.seed for s in hist.specs]
        step = np.array([t1[(rho, s)] for s in seeds])
        frames.append(
            pd.DataFrame(
                {
                    "rho": rho,
                    "seed": seeds,
                    "t1": step,
                    "end of I": bounds[:, 0],
                    "end of II": bounds[:, 1],
                    "t1 in stage II": (bounds[:, 0] < step) & (step < bounds[:, 1]),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def stage_table(check: pd.DataFrame) -> pd.DataFrame:
    """The stage check per rho: seeds, seeds with t1 inside stage II, and the range over
    seeds of the ends of stages I and II (steps)."""

    def span(x: pd.Series) -> str:
        x = x.dropna()
        return f"{x.min():.0f}–{x.max():.0f}" if len(x) else "not found"

    g = check.groupby("rho")
    return pd.DataFrame(
        {
            "t1": g.t1.first(),
            "seeds": g.size(),
            "t1 inside stage II": g["t1 in stage II"].sum(),
            "end of stage I": g["end of I"].apply(span),
            "end of stage II": g["end of II"].apply(span),
        }
    )


#: The discussion's phrase for each outcome of a claim ({claim id: {outcome: phrase}}).
WORDS = {
    "ch4.magnitude-helps-coordinate": {
        "holds": "raises",
        "fails": "lowers",
        "undecided": "does not detectably change",
    },
    "ch4.magnitude-helps-feature": {
        "holds": "raises",
        "fails": "lowers",
        "undecided": "does not detectably change",
    },
    "ch4.too-much-hurts": {
        "holds": "helps less than",
        "fails": "helps more than",
        "undecided": "is not detectably different from",
    },
    "ch4.magnitude-beats-random": {
        "holds": "helps more than",
        "fails": "helps less than",
        "undecided": "is not detectably different from",
    },
    "ch4.oracle-not-special": {
        "holds": "agree within the band of ±0.03",
        "fails": "differ by more than 0.03",
        "undecided": "are neither shown to agree within ±0.03 nor to differ by more",
    },
    "ch4.updates-amplified": {
        "holds": "tilts the updates towards",
        "fails": "tilts the updates away from",
        "undecided": "does not detectably tilt the updates towards or away from",
    },
}


def stage_counts(check: pd.DataFrame) -> dict[str, int]:
    """Of :func:`stage_check`'s runs: how many prune inside their own stage II
    (``ch4-inside``), of how many (``ch4-seeds-checked``)."""
    return {"ch4-inside": int(check["t1 in stage II"].sum()), "ch4-seeds-checked": len(check)}


def stage_text(check: pd.DataFrame) -> str:
    """The sentence on :func:`stage_check`: whether every seed prunes inside its stage II."""
    inside, total = int(check["t1 in stage II"].sum()), len(check)
    if inside == total:
        return "every seed of every cell prunes inside its own stage II"
    return (
        f"only {inside} of {total} seeds prune inside their own stage II; the others are "
        "pruned at the boundary or outside it, and their changes are not stage-II results"
    )


def oracle_gain(deltas: pd.DataFrame, label: str, metric: str = "d_probe_min") -> float:
    """Mean over seeds of ``metric`` of the ``feature_noise`` setting ``label`` minus that of
    the control (``feature_random``, same mode and rate) on the same seed: what knowing the
    noise directions adds. NaN if the control was not run."""
    row = deltas[deltas.setting == label].iloc[0]
    control = pruning.Setting(row.rate, "feature_random", row["mode"]).label
    wide = deltas[deltas.setting.isin([label, control])].pivot(
        index="seed", columns="setting", values=metric
    )
    if control not in wide:
        return float("nan")
    return float((wide[label] - wide[control]).mean())


def phase_text(deltas: pd.DataFrame, setting: pruning.Setting) -> str:
    """'ρ = 4: +0.003 (positive on 3 of 4 seeds); ...': the mean paired change of the minority
    probe for ``setting`` at each imbalance ratio, for prose."""
    rows = deltas[deltas.setting == setting.label]
    return "; ".join(
        f"ρ = {rho:g}: {grp.d_probe_min.mean():+.3f} (positive on "
        f"{int((grp.d_probe_min > 0).sum())} of {len(grp)} seeds)"
        for rho, grp in rows.groupby("rho")
    )


def update_text(table: pd.DataFrame) -> str:
    """'magnitude masks: from -0.001 to +0.034; random masks: ...': per mode, the range over
    settings of the mean log amplification (:func:`update_panel`'s means), for prose."""
    rows = table[np.isfinite(table.log_amplification)]
    means = rows.groupby(["mode", "setting"]).log_amplification.mean()
    return "; ".join(
        f"{mode} masks from {m.min():+.3f} to {m.max():+.3f}"
        for mode, m in means.groupby(level="mode")
    )


def oracle_text(deltas: pd.DataFrame) -> str:
    """ "`feature_noise m0.5` +0.004; ...": :func:`oracle_gain` of every ``feature_noise``
    setting in ``deltas`` (one cell), for prose."""
    oracle = sorted(s for s in set(deltas.setting) if s.startswith("feature_noise"))
    return "; ".join(f"`{s}` {oracle_gain(deltas, s):+.3f}" for s in oracle) or (
        "not run in this build (`extra` names no `feature_noise` setting)"
    )


def glued(table: pd.DataFrame, deltas: pd.DataFrame, rho: float) -> dict[str, float]:
    """The numbers the prose quotes besides the claims' own, by glue key, from the results
    table and its paired changes at the main imbalance ratio ``rho``: the twins' minority and
    majority probe (means over seeds) and the s.d. over seeds of their minority probe."""
    twin = table[(table.rho == rho) & (table.setting == pruning.TWIN.label)]
    return {
        "ch4-twin-min": float(twin.probe_min.mean()),
        "ch4-twin-maj": float(twin.probe_maj.mean()),
        "ch4-twin-sd": float(twin.probe_min.std(ddof=1)),
    }


def prose(
    table: pd.DataFrame, deltas: pd.DataFrame, rho: float, verdicts: Mapping
) -> dict[str, str]:
    """The Markdown phrases the prose quotes, by glue key: each claim's outcome word
    (``<id>-word``, :data:`WORDS`), the paper's setting across the phase diagram, the range of
    the update amplification, and the oracle against its control, at ``rho``."""
    main = table[table.rho == rho]
    return text.outcome_phrases(verdicts, WORDS, "word") | {
        "ch4-phase-text": phase_text(deltas, pruning.PAPER),
        "ch4-updates-text": update_text(main),
        "ch4-oracle-text": oracle_text(deltas[deltas.rho == rho]),
    }


# ------------------------------------------------------------------ one statistic per seed
def setting_values(frame: pd.DataFrame, setting: pruning.Setting, column: str) -> pd.Series:
    """``column`` of the rows of ``setting`` in ``frame`` (one cell), indexed by seed; KeyError
    if the setting has no row."""
    rows = frame[frame.setting == setting.label]
    if rows.empty:
        raise KeyError(f"no rows of the setting {setting.label!r}")
    return rows.set_index("seed")[column]


def claim_values(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The per-seed statistic of each Chapter 4 claim from the main cell's rows of
    :func:`imbcl.studies.pruning.results_table` (one value per seed, seeds ascending; NaN for
    a seed without the setting's row).

    The paired changes are :func:`paired` (pruned minus the twin of the same seed). Averages
    over bases, modes and rates are taken within each seed, so every claim rests on one
    number per seed. ValueError if ``table`` holds more than one cell; KeyError if a setting
    of the claims is missing.
    """
    if table.rho.nunique() != 1:
        raise ValueError(f"the table must hold one cell (got rho {sorted(table.rho.unique())})")
    seeds = np.sort(table.seed.unique())
    delta = paired(table, ["probe_min"])
    low = pruning.CLAIM_RATES[0]

    def d(basis, mode, rate):
        setting = pruning.Setting(rate, basis, mode)
        return setting_values(delta, setting, "d_probe_min").reindex(seeds).to_numpy(float)

    random_minus_magnitude = np.mean(
        [
            d(b, "random", r) - d(b, "magnitude", r)
            for b, r in itertools.product(pruning.SPARSE_BASES, pruning.CLAIM_RATES)
        ],
        axis=0,
    )
    oracle_minus_control = np.mean(
        [
            d("feature", m, r) - d("feature_random", m, r)
            for m, r in itertools.product(pruning.MODES, pruning.CLAIM_RATES)
        ],
        axis=0,
    )
    amplification = setting_values(table, pruning.PAPER, "log_amplification")
    high = d("feature", "magnitude", pruning.HIGH_RATE)
    return {
        "ch4.magnitude-helps-coordinate": d("coordinate", "magnitude", low),
        "ch4.magnitude-helps-feature": d("feature", "magnitude", low),
        "ch4.too-much-hurts": high - d("feature", "magnitude", low),
        "ch4.magnitude-beats-random": random_minus_magnitude,
        "ch4.oracle-not-special": oracle_minus_control,
        "ch4.updates-amplified": amplification.reindex(seeds).to_numpy(float),
    }


def main_cell(settings: pruning.Settings, results) -> pd.DataFrame:
    """The rows of :func:`imbcl.studies.pruning.results_table` at the main ``rho``."""
    table = pruning.results_table(results)
    return table[table.rho == settings.rho].reset_index(drop=True)


def claims_from_results(settings: pruning.Settings, results) -> dict[str, np.ndarray]:
    """:func:`claim_values` straight from the results of :func:`imbcl.studies.pruning.plan`."""
    return claim_values(main_cell(settings, results))
