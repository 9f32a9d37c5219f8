"""Chapter 1's figures and tables, the three stages seed by seed, and its claims' per-seed
statistics (:func:`claims_from_results`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.history import History
from imbcl.engine.state import Hyper
from imbcl.report import figures
from imbcl.report.paired import cell_text, summarise
from imbcl.studies import stages


def shade_stages(ax, bounds: np.ndarray, last_step: float) -> None:
    """Shade stages I, II, III on ``ax`` at the mean of the per-seed ``bounds`` (R, 2); each
    seed's own boundaries are thin dashed lines. Stage names are written above the axes."""
    t1, t2 = np.nanmean(bounds, axis=0)
    shades = ((0.0, t1, "0.93"), (t1, t2, "white"), (t2, last_step, "0.86"))
    for (a, b, colour), name in zip(shades, stages.STAGES, strict=True):
        ax.axvspan(a, b, color=colour, zorder=0, lw=0)
        centre = np.sqrt(max(a, 1.0) * b) if ax.get_xscale() != "linear" else (a + b) / 2
        ax.text(centre, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom")
    for t in bounds[np.isfinite(bounds)]:
        ax.axvline(t, color="0.5", lw=0.6, ls="--", zorder=1)


def stage_curves(hists: dict[str, History], bounds: dict[str, np.ndarray], titles: dict):
    """One panel per regime: the three group curves (mean and 95 % CI over seeds) against the
    step, linear to step 10 and logarithmic beyond, stages shaded."""
    fig, axes = figures.figure(1, len(hists), sharey=True, squeeze=False)
    for ax, (name, h) in zip(axes[0], hists.items(), strict=True):
        ax.set_xscale("symlog", linthresh=10)
        for group, curve in stages.group_curves(h).items():
            figures.band(ax, h.steps, curve.T, group, figures.COLORS[group])
        ax.set_yscale("log")
        ax.set_xlim(0, h.steps[-1])
        shade_stages(ax, bounds[name], h.steps[-1])
        ax.set_title(titles[name], pad=14)
        ax.set_xlabel("training step")
    axes[0, 0].set_ylabel("best alignment / noise norm (a.u.)")
    axes[0, 0].legend(loc="lower right")
    return fig


def kappa_curve(hist: History) -> np.ndarray:
    """(T,) the bias multiplier kappa(t) of the first run of ``hist`` at its record steps."""
    hyper = Hyper.from_specs(hist.specs[:1], "cpu")
    return np.array([float(hyper.kappa(int(t))[0]) for t in hist.steps])


def bias_and_loss(hists: dict[str, History], titles: dict):
    """Three panels: the schedule kappa(t) with the mean bias of the live neurons; the number
    of live neurons; the InfoNCE loss (mean over the steps between records). Mean and 95 % CI
    over seeds, one line style per regime."""
    fig, axes = figures.figure(1, 3)
    fig.get_layout_engine().set(wspace=0.12)  # room for the twin axis's label
    first = next(iter(hists.values()))
    axes[0].plot(first.steps, kappa_curve(first), color="k")
    axes[0].set_ylabel("bias multiplier κ(t)")
    twin = axes[0].twinx()
    for (name, h), ls in zip(hists.items(), ("-", ":", "--"), strict=False):
        live = metrics.alive(h.align, h.noise)
        mean_bias = (h.bias * live).sum(-1) / np.maximum(live.sum(-1), 1)
        figures.band(twin, h.steps, mean_bias.T, titles[name], figures.PALETTE[2], ls=ls)
        figures.band(axes[1], h.steps, stages.alive_counts(h).T, titles[name], "k", ls=ls)
        figures.band(axes[2], h.steps[1:], h.loss[1:].T, titles[name], "k", ls=ls, lw=0.8)
    twin.set_ylabel("mean bias, live neurons (a.u.)")
    twin.spines["right"].set_visible(True)
    axes[1].set_ylabel("live neurons (count)")
    axes[2].set_ylabel("InfoNCE loss (nats)")
    for ax in axes:
        ax.set_xlabel("training step")
    axes[2].legend(loc="upper right", fontsize=8)
    return fig


def heatmaps(hist: History, replica: int, bounds: np.ndarray):
    """|A_ij| of one seed at the end of each stage, neurons in one order (by the feature they
    own at the end); the white line separates majority (left) from minority features."""
    marks = [bounds[replica, 0], bounds[replica, 1], hist.steps[-1]]
    panels, _ = stages.heatmap_panels(hist, replica, marks)
    fig, axes = figures.figure(1, 3, sharey=True)
    vmax = panels.max()
    for ax, panel, step, name in zip(axes, panels, marks, stages.STAGES, strict=True):
        image = ax.imshow(panel, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.axvline(hist.minority.argmax() - 0.5, color="w", lw=1)
        ax.set_title(f"end of stage {name} (step {step:.0f})", fontsize=10)
    axes[0].set_ylabel("neuron i (sorted by owner)")
    fig.supxlabel("feature j (majority | minority)", fontsize=11)
    fig.colorbar(image, ax=axes, label="|A_ij| (a.u.)", shrink=0.9)
    return fig


#: How the per-seed statistics read in the chapter's tables.
LABELS = {
    "t1": "end of stage I, t1 (step)",
    "t2": "end of stage II, t2 (step)",
    "onset_gap": "earliest minority - latest majority onset (steps)",
    "noise_I": "noise growth rate, stage I (per 1k steps)",
    "noise_II": "noise growth rate, stage II (per 1k steps)",
    "noise_III": "noise growth rate, stage III, all neurons",
    "survivors_III": "noise growth rate, stage III, survivors",
    "final_majority": "final best alignment, majority (a.u.)",
    "final_minority": "final best alignment, minority (a.u.)",
    "log_ratio": "log(final minority / final majority)",
}


def summary_table(stats: dict[str, pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Per statistic (rows, see :data:`LABELS`) and regime (columns): 'mean [95 % CI] k/n'
    over seeds, k the seeds above 0."""
    long = pd.concat([s.assign(regime=name) for name, s in stats.items()], ignore_index=True)
    table = summarise(long, by=["regime"], values=columns).assign(cell=lambda t: cell_text(t))
    wide = table.pivot(index="metric", columns="regime", values="cell").loc[columns, list(stats)]
    return wide.rename(index=LABELS).rename_axis(index="statistic", columns="regime")


def attention_table(summary: pd.DataFrame, settings: stages.Settings) -> pd.DataFrame:
    """Seed by seed, the main regime with frozen and with trained attention: attention entropy
    at the end (nats), the norm of W_Q at the end, and the final best alignment of each group
    (a.u.), then the mean."""
    main = summary[(summary.rho == settings.rho) & ~summary.trained_attention]
    trained = summary[summary.trained_attention].set_index("seed")
    frozen = main.set_index("seed").loc[trained.index]
    cols = ["attention_entropy", "wq_norm", "final_majority", "final_minority"]
    table = pd.concat({"frozen": frozen[cols], "trained": trained[cols]}, axis=1)
    table = table.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    table.loc["mean"] = table.mean()
    return table.round(3)


# ------------------------------------------------------------------ the claims, one value per seed
def claim_values(stats: pd.DataFrame) -> dict[str, np.ndarray]:
    """The per-seed statistic of each Chapter 1 claim, from the main regime's
    :func:`imbcl.studies.stages.seed_statistics` (one value per seed; NaN where a stage was
    not found). ``ch1.noise-stalls-stage-ii`` is log10(|stage II rate| / stage I rate) of the
    mean noise norm, NaN where the stage I rate is not positive."""
    rate_i = stats.noise_I.to_numpy()
    with np.errstate(all="ignore"):
        slowdown = np.where(rate_i > 0, np.log10(np.abs(stats.noise_II) / rate_i), np.nan)
    return {
        "ch1.onset-order": stats.onset_gap.to_numpy(),
        "ch1.noise-grows-stage-i": rate_i,
        "ch1.noise-stalls-stage-ii": slowdown,
        "ch1.noise-falls-stage-iii": stats.survivors_III.to_numpy(),
        "ch1.minority-smaller": stats.log_ratio.to_numpy(),
    }


def claims_from_results(settings: stages.Settings, results) -> dict[str, np.ndarray]:
    """:func:`claim_values` straight from the results of :func:`imbcl.studies.stages.plan`."""
    main = stages.regime_histories(settings, results)["main"]
    return claim_values(stages.seed_statistics(main, settings))


#: How the discussion reads each outcome of two claims ({claim id: {outcome: sentence}}): the
#: stage III claim (survivors' noise falls) and the final-alignment claim.
READINGS = {
    "ch1.noise-falls-stage-iii": {
        "holds": "The neurons that survive to the end lose noise during stage III, as the "
        "paper says.",
        "fails": "The neurons that survive to the end carry *more* noise at the end of stage "
        "III than at its start: the rising bias makes them ignore noise in their activations, "
        "but it does not remove noise from their weights. The fall of the mean over all "
        "neurons comes from the silenced neurons shrinking under the penalty.",
        "undecided": "Whether the neurons that survive to the end lose noise during stage III "
        "is not decided by these seeds: the confidence interval of the rate straddles zero.",
    },
    "ch1.minority-smaller": {
        "holds": "In the main regime the minority features end with a smaller best alignment "
        "than the majority features, as the paper says.",
        "fails": "In the main regime the minority features end with a *larger* best alignment "
        "than the majority features, against the paper's statement.",
        "undecided": "In the main regime the final best alignments of the two groups are too "
        "close for these seeds to tell which is smaller.",
    },
}
