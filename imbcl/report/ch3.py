"""Chapter 3's figures and tables (feature-to-noise ratios and probes against rho and over
training, mean and 95 % bootstrap CI over seeds) and its claims' per-seed statistics
(:func:`claim_values`), read from :func:`imbcl.studies.separation.seed_table`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imbcl.engine.config import DataConfig, ModelConfig
from imbcl.report import figures
from imbcl.report.paired import cell_text, summarise
from imbcl.report.stats import seed_summary, spearman
from imbcl.report.verdicts import estimate_text
from imbcl.studies import separation as sep

#: Line style of the recipe's noise level and of the noisier one.
STYLES = {"recipe": "-", "noisy": "--"}


def by_rho(frame: pd.DataFrame, value: str, sigma: float = sep.RECIPE_SIGMA) -> pd.DataFrame:
    """``value`` of the runs at ``sigma`` of a :func:`imbcl.studies.separation.seed_table` as
    a seed x rho table (both ascending)."""
    return frame[frame.sigma == sigma].pivot(index="seed", columns="rho", values=value)


def seeds_by_rho(frame: pd.DataFrame, value: str, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The rho values (X,) and ``value`` (seeds, X) of :func:`by_rho`."""
    wide = by_rho(frame, value, sigma)
    return wide.columns.to_numpy(float), wide.to_numpy(float)


def seeds_by_step(frame: pd.DataFrame, value: str, rho: float, group: str):
    """The steps (T,) and ``value`` (seeds, T) of one group of the runs at ``rho`` and the
    recipe's sigma, from a table with step, rho, sigma, seed, group columns."""
    rows = frame[(frame.sigma == sep.RECIPE_SIGMA) & (frame.rho == rho) & (frame.group == group)]
    wide = rows.pivot(index="seed", columns="step", values=value)
    return wide.columns.to_numpy(float), wide.to_numpy(float)


def _sigmas(seeds: pd.DataFrame) -> list[tuple[float, str]]:
    """(sigma, 'recipe' or 'noisy') of each noise level in ``seeds``, the recipe's first."""
    levels = sorted(seeds.sigma.unique(), key=lambda s: s != sep.RECIPE_SIGMA)
    return [(s, "recipe" if s == sep.RECIPE_SIGMA else "noisy") for s in levels]


def _group_bands(ax, seeds: pd.DataFrame, column: str, require_all: bool = False) -> None:
    """Bands of ``column.format(group=...)`` against rho for both groups and noise levels; a
    noise level with a single rho is drawn as points with CI bars. With ``require_all``, a rho
    at which some seed has no value is left out (a gap), so the mean never rests on a subset
    of the seeds."""
    for sigma, kind in _sigmas(seeds):
        for group in sep.GROUPS:
            rho, values = seeds_by_rho(seeds, column.format(group=group), sigma)
            if require_all:
                values = np.where(np.isnan(values).any(axis=0), np.nan, values)
            label = f"{group}, σ = {sigma:g}"
            colour = figures.COLORS[group]
            if len(rho) == 1:
                mean, lo, hi = (a[0] for a in figures.mean_ci(values))
                ax.errorbar(
                    rho,
                    [mean],
                    yerr=[[mean - lo], [hi - mean]],
                    color=colour,
                    marker="s",
                    mfc="white",
                    ls="none",
                    capsize=3,
                    label=label,
                )
            else:
                figures.band(ax, rho, values, label, colour, ls=STYLES[kind], marker="o", ms=3)


def _rho_axis(ax, rhos) -> None:
    """A log2 axis of the imbalance ratio with a tick at each of ``rhos``."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(rhos), [f"{r:g}" for r in sorted(rhos)])
    ax.minorticks_off()
    ax.set_xlabel("imbalance ratio ρ")


def ratio_vs_rho(seeds: pd.DataFrame):
    """Three panels at the end of training against rho: the feature side (best live neuron per
    feature, median over the group), the neuron side (median over specialised neurons; a rho
    where some seed has no such neuron is left out) and the number of specialised neurons."""
    fig, axes = figures.figure(1, 3, size=(7.5, 3.6))
    panels = (
        ("best_{group}", "feature side: best neuron", "feature-to-noise ratio"),
        ("neuron_{group}", "neuron side: specialised", "feature-to-noise ratio"),
        ("neurons_{group}", "specialised neurons", "neurons (count)"),
    )
    for ax, (column, title, ylabel) in zip(axes, panels, strict=True):
        _group_bands(ax, seeds, column, require_all=column.startswith("neuron_"))
        _rho_axis(ax, seeds.rho.unique())
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
    for ax in axes[:2]:
        ax.set_yscale("log")
        ax.axhline(1.0, color=figures.COLORS["noise"], lw=0.8, ls=":")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
    return fig


def probe_vs_rho(seeds: pd.DataFrame):
    """Two panels at the end of training against rho: the probe balanced accuracy of each
    group (chance dotted) and the paired gap majority minus minority, with the control's
    tolerance of +-0.02 shaded."""
    fig, axes = figures.figure(1, 2)
    _group_bands(axes[0], seeds, "probe_{group}")
    axes[0].axhline(sep.CHANCE, color=figures.COLORS["noise"], ls=":", lw=1, label="chance")
    axes[0].set_ylabel("probe balanced accuracy")
    axes[0].legend(fontsize=7)
    for sigma, kind in _sigmas(seeds):
        rho, gap = seeds_by_rho(seeds, "probe_gap", sigma)
        if len(rho) > 1:
            figures.band(
                axes[1], rho, gap, f"σ = {sigma:g}", "k", ls=STYLES[kind], marker="o", ms=3
            )
    axes[1].axhspan(-0.02, 0.02, color=figures.COLORS["noise"], alpha=0.2, lw=0)
    axes[1].axhline(0.0, color=figures.COLORS["noise"], lw=0.8)
    axes[1].set_ylabel("probe gap, majority − minority")
    for ax in axes:
        _rho_axis(ax, seeds.rho.unique())
    return fig


def over_time(ratios: pd.DataFrame, probes: pd.DataFrame, rhos: Sequence[float]):
    """Two rows, one column per rho of ``rhos`` at the recipe's sigma: the feature side over
    training (top; the stage-II step of the claims dashed, the end of the bias ramp dotted)
    and the probe balanced accuracy at the probed steps (bottom; chance dotted)."""
    fig, axes = figures.figure(
        2, len(rhos), size=(7.5, 4.8), sharex=True, sharey="row", squeeze=False
    )
    for col, rho in enumerate(rhos):
        top, bottom = axes[0, col], axes[1, col]
        for group in sep.GROUPS:
            colour = figures.COLORS[group]
            figures.band(top, *seeds_by_step(ratios, "best_ratio", rho, group), group, colour)
            steps, acc = seeds_by_step(probes, "probe", rho, group)
            figures.band(bottom, steps, acc, group, colour, marker="o", ms=3)
        top.set_title(f"ρ = {rho:g}", fontsize=10)
        top.set_yscale("log")
        top.axhline(1.0, color=figures.COLORS["noise"], lw=0.6)
        bottom.axhline(sep.CHANCE, color=figures.COLORS["noise"], ls=":", lw=1)
        bottom.set_xlabel("training step")
        for ax in (top, bottom):
            ax.axvline(sep.STAGE_II_STEP, color=figures.COLORS["noise"], ls="--", lw=0.8)
            ax.axvline(ModelConfig().ramp_steps, color=figures.COLORS["noise"], ls=":", lw=0.8)
    axes[0, 0].set_ylabel("feature-to-noise ratio,\nbest neuron")
    axes[1, 0].set_ylabel("probe balanced\naccuracy")
    axes[0, 0].legend(fontsize=7)
    return fig


def shown_rhos(rho_grid: Sequence[float]) -> list[float]:
    """The rho values shown over training: the claims' regimes and the largest of the grid."""
    return sorted({*sep.CLAIM_RHOS, max(rho_grid)})


def summary_table(seeds: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per statistic (rows) and (sigma, rho) (columns): 'mean [95 % CI] k/n' over seeds, k the
    seeds above 0; NaN values (no specialised neuron) are left out of n."""
    table = summarise(seeds, by=["sigma", "rho"], values=list(columns))
    table = table.assign(cell=cell_text(table))
    wide = table.pivot(index="metric", columns=["sigma", "rho"], values="cell")
    return wide.loc[list(columns)]


def per_seed_table(values: dict[str, np.ndarray], seeds: Sequence[int]) -> pd.DataFrame:
    """The per-seed statistic of each claim (columns) by seed (rows), then the mean."""
    table = pd.DataFrame(values, index=pd.Index(list(seeds), name="seed"))
    table.loc["mean"] = table.mean()
    return table.round(3)


# ------------------------------------------------------------------ one statistic per seed
def rank_trend(seeds: pd.DataFrame, value: str) -> pd.Series:
    """Per seed, the Spearman correlation (:func:`imbcl.report.stats.spearman`) between rho
    and ``value`` over the rho grid of the recipe's sigma, indexed by seed; NaN for a seed
    whose ``value`` is constant over rho (no ranks) or missing at some rho of the grid."""
    wide = by_rho(seeds, value)
    rho = wide.columns.to_numpy(float)
    trend = [np.nan if np.isnan(v).any() else spearman(rho, v) for v in wide.to_numpy(float)]
    return pd.Series(trend, index=wide.index, dtype=float)


def log_change(seeds: pd.DataFrame, value: str, rho: float, reference: float) -> np.ndarray:
    """(n_seeds,) per seed (ascending), log(``value`` at ``rho`` / ``value`` at ``reference``)
    at the recipe's sigma; NaN for a seed without both runs. KeyError if either rho was not
    run."""
    wide = by_rho(seeds, value)
    missing = [r for r in (rho, reference) if r not in wide.columns]
    if missing:
        raise KeyError(f"no runs at rho = {missing[0]:g}, sigma = {sep.RECIPE_SIGMA:g}")
    return np.log(wide[rho] / wide[reference]).to_numpy(float)


def at_rho(seeds: pd.DataFrame, rho: float, value: str) -> np.ndarray:
    """(n_seeds,) ``value`` of the runs at ``rho`` and the recipe's sigma, by seed."""
    rows = seeds[(seeds.sigma == sep.RECIPE_SIGMA) & (seeds.rho == rho)].sort_values("seed")
    if rows.empty:
        raise KeyError(f"no runs at rho = {rho:g}, sigma = {sep.RECIPE_SIGMA:g}")
    return rows[value].to_numpy(float)


def claim_values(seeds: pd.DataFrame) -> dict[str, np.ndarray]:
    """The per-seed statistic of each Chapter 3 claim (seeds ascending), from
    :func:`imbcl.studies.separation.seed_table`.

    ``ch3.ratio-falls`` compares the minority feature side at the ends of the learnable range,
    log(best_minority at rho = 8 / best_minority at rho = 1): across the cliff the ratio
    collapses with the features themselves, so a trend over the whole grid would not measure it.
    """
    return {
        "ch3.control-probe": at_rho(seeds, sep.CONTROL_RHO, "probe_gap"),
        "ch3.probe-gap": at_rho(seeds, sep.GAP_RHO, "probe_gap"),
        "ch3.probe-gap-grows": rank_trend(seeds, "probe_gap").to_numpy(),
        "ch3.minority-noisier": at_rho(seeds, sep.NOISIER_RHO, "log_best"),
        "ch3.minority-noisier-stage-ii": at_rho(seeds, sep.GAP_RHO, "log_best_stage_ii"),
        "ch3.ratio-falls": log_change(seeds, "best_minority", sep.GAP_RHO, sep.CONTROL_RHO),
    }


def claims_from_results(settings: sep.Settings, results) -> dict[str, np.ndarray]:
    """:func:`claim_values` straight from the results of :func:`imbcl.studies.separation.plan`
    (each run carries its own spec, so ``settings`` is not needed beyond the plan that made the
    results)."""
    ratios = sep.ratio_table(sep.joined_history(results))
    return claim_values(sep.seed_table(ratios, sep.probe_frame(results)))


# ------------------------------------------------------------------------- numbers in prose
def ci_text(values) -> str:
    """'mean [lo, hi]' (95 % bootstrap CI over seeds, 3 significant digits) of the finite
    ``values`` (seeds,); with fewer than two, the value itself or 'undefined'."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return f"{x[0]:.3g} (one seed)" if len(x) else "undefined"
    s = seed_summary(x)
    return f"{s.mean:.3g} [{s.lo:.3g}, {s.hi:.3g}]"


def estimate(seeds: pd.DataFrame, column: str, rho: float, sigma: float = sep.RECIPE_SIGMA) -> str:
    """:func:`ci_text` of ``column`` at (``sigma``, ``rho``) of a seed table; 'not run' where
    there is no such run."""
    rows = seeds[(seeds.sigma == sigma) & (seeds.rho == rho)]
    return ci_text(rows[column]) if len(rows) else "not run"


def end_bias(sigma: float) -> float:
    """The bias b_i / ||W_V^T w_i|| at the end of the recipe's ramp for noise scale ``sigma``:
    kappa_max * sqrt(2) * sigma / sqrt(d) (dimensionless; book/setting.md, eq-bias)."""
    return ModelConfig().kappa_max * np.sqrt(2.0) * sigma / np.sqrt(DataConfig().d)


def glue_values(seeds: pd.DataFrame, probes: pd.DataFrame, verdicts: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, as text keyed by glue name ("ch3-..."), from a
    seed table, the probe table and the chapter's {claim id: Verdict}: see
    :func:`claim_glue`, :func:`cell_glue`, :func:`noisy_glue` and :func:`time_glue`; with
    :func:`imbcl.report.text.verdict_values` for each claim's outcome and seed counts."""
    out = {"ch3-n-seeds": str(seeds.seed.nunique())}
    return out | claim_glue(verdicts) | cell_glue(seeds) | noisy_glue(seeds) | time_glue(probes)


def claim_glue(verdicts: dict) -> dict[str, str]:
    """Per claim (``<slug>``: its id after "ch3."): ``ch3-<slug>-estimate``, its mean with
    the 95 % CI as text (outcome and seed counts: :func:`imbcl.report.text.verdict_values`)."""
    return {f"ch3-{c.removeprefix('ch3.')}-estimate": estimate_text(v) for c, v in verdicts.items()}


def cell_glue(seeds: pd.DataFrame) -> dict[str, str]:
    """At the recipe's sigma, for the claims' rho and the largest ("rho1", "rho4", "rho8",
    "rhomax"): ``ch3-<best|neuron|probe>-<group>-<name>`` at the end; ``ch3-rho-max``; and
    ``ch3-neurons-minority-rhomax``, the minority-specialised neurons at the largest rho."""
    rho_max = float(seeds[seeds.sigma == sep.RECIPE_SIGMA].rho.max())
    out = {
        "ch3-rho-max": f"{rho_max:g}",
        "ch3-neurons-minority-rhomax": estimate(seeds, "neurons_minority", rho_max),
    }
    named = {f"rho{r:g}": r for r in sep.CLAIM_RHOS} | {"rhomax": rho_max}
    for name, rho in named.items():
        for column in ("best", "neuron", "probe"):
            for group in sep.GROUPS:
                out[f"ch3-{column}-{group}-{name}"] = estimate(seeds, f"{column}_{group}", rho)
    return out


def noisy_glue(seeds: pd.DataFrame) -> dict[str, str]:
    """At the smallest noisier level and its smallest rho (``ch3-noisy-sigma``,
    ``ch3-noisy-rho``), and at the recipe's sigma for the same rho: the feature side, the
    probe and the majority's best alignment at the end (``ch3-noisy-...``,
    ``ch3-recipe-...``; 'not run' where absent); the end-of-ramp bias (:func:`end_bias`) at
    both levels (``ch3-end-bias-recipe``, ``ch3-end-bias-noisy``)."""
    noisy = seeds[seeds.sigma != sep.RECIPE_SIGMA]
    sigma, rho = (noisy.sigma.min(), noisy.rho.min()) if len(noisy) else (np.nan, np.nan)
    out = {
        "ch3-noisy-sigma": f"{sigma:g}",
        "ch3-noisy-rho": f"{rho:g}",
        "ch3-end-bias-recipe": f"{end_bias(sep.RECIPE_SIGMA):.2f}",
        "ch3-end-bias-noisy": f"{end_bias(sigma):.2f}",
    }
    for column in ("best_majority", "best_minority", "probe_majority", "probe_minority"):
        key = column.replace("_", "-")
        out[f"ch3-noisy-{key}"] = estimate(seeds, column, rho, sigma)
        out[f"ch3-recipe-{key}"] = estimate(seeds, column, rho)
    out["ch3-noisy-align-majority"] = estimate(seeds, "align_majority", rho, sigma)
    out["ch3-recipe-align-majority"] = estimate(seeds, "align_majority", rho)
    return out


def time_glue(probes: pd.DataFrame) -> dict[str, str]:
    """The majority probe at rho = 1 and the recipe's sigma at the first probed step
    (``ch3-probe-first-step``, ``ch3-probe-early-majority-rho1``) and at the end
    (``ch3-probe-end-majority-rho1``)."""
    rows = probes[
        (probes.sigma == sep.RECIPE_SIGMA)
        & (probes.rho == sep.CONTROL_RHO)
        & (probes.group == "majority")
    ]
    wide = rows.pivot(index="seed", columns="step", values="probe")
    return {
        "ch3-probe-first-step": f"{wide.columns[0]:g}",
        "ch3-probe-early-majority-rho1": ci_text(wide[wide.columns[0]]),
        "ch3-probe-end-majority-rho1": ci_text(wide[wide.columns[-1]]),
    }
