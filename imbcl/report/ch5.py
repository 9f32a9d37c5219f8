"""Chapter 5's tables and figures (probe accuracies, paired deltas seed by seed, the loss) and
its claims' per-seed statistics (:func:`claim_values`).

Every summary is over seeds, the unit: mean and 95 % bootstrap CI
(:func:`imbcl.report.paired.summarise`, :func:`imbcl.report.figures.mean_ci`); paired deltas
subtract a reference method on the same rho, seed and probe
(:func:`imbcl.report.paired.paired_deltas`), plain SimCLR in the tables and figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imbcl.images import study
from imbcl.images.analysis import METRICS
from imbcl.report import figures
from imbcl.report.paired import cell_text, paired_deltas, summarise

#: The reference of every paired delta in the chapter's tables and figures.
REFERENCE = "SimCLR"
#: Columns that identify a unit of pairing: the same split, initialisation and mini-batches.
UNIT = ("rho", "seed", "probe")
#: Probes in the order of the tables and figures.
PROBES = ("few-shot", "full")
#: Per registered claim: (method, reference, probe, metric); its per-seed value is the
#: method's metric minus the reference's, same seed, at rho = CLAIM_RHO (points).
CLAIMS = {
    "ch5.pretraining-helps": ("SimCLR", "untrained", "full", "overall"),
    "ch5.imbalance-costs-tail": ("balanced", "SimCLR", "few-shot", "tail"),
    "ch5.prune-helps-tail": ("prune 0.5", "SimCLR", "few-shot", "tail"),
    "ch5.heavy-prune-hurts": ("prune 0.9", "SimCLR", "full", "overall"),
    "ch5.sdclr-helps-tail": ("SDCLR 0.5", "SimCLR", "few-shot", "tail"),
}


def deltas(table: pd.DataFrame) -> pd.DataFrame:
    """Each method's row minus SimCLR's on the same (rho, seed, probe), for every metric of
    :data:`imbcl.images.analysis.METRICS` (points); the untrained encoder included."""
    return paired_deltas(table, by="method", reference=REFERENCE, pair_on=UNIT, values=METRICS)


def _ordered(frame: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by rho, probe (few-shot first) and method in ``order`` (stable)."""
    rank = {"probe": list(PROBES), "method": list(order)}

    def key(column: pd.Series) -> pd.Series:
        return column.map(rank[column.name].index) if column.name in rank else column

    return frame.sort_values(["rho", "probe", "method"], key=key, kind="stable")


def _wide(summary: pd.DataFrame, cells: pd.Series) -> pd.DataFrame:
    """One row per (rho, probe, method), one column per metric, from a summarise table."""
    wide = summary.assign(cell=cells.to_numpy()).pivot(
        index=["rho", "probe", "method"], columns="metric", values="cell"
    )
    keys = summary[["rho", "probe", "method"]].drop_duplicates()
    return wide.loc[pd.MultiIndex.from_frame(keys), list(METRICS)]


def accuracy_table(table: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per (rho, probe, method): 'mean [95 % CI]' over seeds of each metric (percent; not
    paired), methods in ``order``."""
    summary = summarise(_ordered(table, order), by=["rho", "probe", "method"], values=METRICS)
    cells = [
        f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"
        for mean, lo, hi in zip(summary["mean"], summary["lo"], summary["hi"], strict=True)
    ]
    return _wide(summary, pd.Series(cells, index=summary.index))


def delta_table(paired: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per (rho, probe, method): 'mean [95 % CI] k/n' of each metric's paired delta (points),
    k the seeds that improved (a higher accuracy, a smaller gap); methods in ``order``."""
    summary = summarise(
        _ordered(paired, order),
        by=["rho", "probe", "method"],
        values=METRICS,
        smaller_is_better=["gap"],
    )
    return _wide(summary, cell_text(summary))


def plot_paired(ax, paired: pd.DataFrame, metric: str, order: Sequence[str], **where) -> None:
    """One column per method of ``order`` present in ``paired``: each seed's paired delta of
    ``metric`` (grey dots, jittered) and the mean with its 95 % bootstrap CI over seeds (bar),
    in points; rows filtered by ``where`` (e.g. probe='full', rho=50)."""
    sel = paired
    for column, value in where.items():
        sel = sel[sel[column] == value]
    names = [m for m in order if m in set(sel.method)]
    rng = np.random.default_rng(0)  # jitter only
    for i, method in enumerate(names):
        v = sel.loc[sel.method == method, metric].to_numpy(float)
        ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=10, color="0.55", lw=0)
        mean, lo, hi = (float(a) for a in figures.mean_ci(v))
        err = np.array([[mean - lo], [hi - mean]]) if np.isfinite(lo) else None
        ax.errorbar(i + 0.3, mean, yerr=err, fmt="o", color=figures.PALETTE[0], ms=4, capsize=3)
    ax.axhline(0.0, color="0.2", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")


def paired_figure(paired: pd.DataFrame, rhos: Sequence[float], order: Sequence[str], metric: str):
    """Rows: few-shot and full probe; columns: the ``rhos``. Each panel: :func:`plot_paired`
    of ``metric`` for every method but SimCLR (the reference) and the untrained encoder."""
    shown = [m for m in order if m not in (REFERENCE, "untrained")]
    fig, axes = figures.figure(len(PROBES), len(rhos), size=(7.5, 6.0), sharey="row", squeeze=False)
    for i, probe in enumerate(PROBES):
        for j, rho in enumerate(rhos):
            ax = axes[i, j]
            plot_paired(ax, paired, metric, shown, probe=probe, rho=rho)
            ax.set_title(f"{probe} probe, ρ = {rho:g}", fontsize=10)
            if i < len(PROBES) - 1:
                ax.set_xticklabels([])
        axes[i, 0].set_ylabel(f"Δ {metric} accuracy (points)")
    return fig


def loss_figure(curves: dict, methods: Sequence[str], shown: Sequence[str], prune_step: int):
    """One panel per rho: the InfoNCE loss (nats) of the methods in ``shown``, mean and 95 %
    CI over seeds, against the training step; ``curves`` is
    :func:`imbcl.images.study.loss_curves` ({rho: (steps (T,), losses (S, T, M))}), the
    columns of ``losses`` named by ``methods``. Dotted line: the one-shot pruning step."""
    fig, axes = figures.figure(1, len(curves), sharey=True, squeeze=False)
    for ax, (rho, (steps, losses)) in zip(axes[0], curves.items(), strict=True):
        for k, name in enumerate(shown):
            figures.band(ax, steps, losses[:, :, methods.index(name)], name, figures.PALETTE[k])
        ax.axvline(prune_step, color="0.5", ls=":", lw=1)
        ax.set_xlabel("training step")
        ax.set_title(f"ρ = {rho:g}", fontsize=10)
    axes[0, 0].set_ylabel("InfoNCE loss (nats)")
    axes[0, -1].legend(fontsize=8)
    return fig


def seed_numbers(key: str, values, digits: int = 2) -> dict:
    """Glue-ready summary of per-seed ``values`` (n,) (:func:`imbcl.report.paired.summarise`):
    {key-mean, key-lo, key-hi (95 % CI, rounded to ``digits``), key-k (seeds above zero),
    key-n (finite seeds)} as plain Python numbers."""
    frame = pd.DataFrame({"unit": 0, "value": np.asarray(values, dtype=float)})
    row = summarise(frame, by=["unit"], values=["value"]).iloc[0]
    out = {f"{key}-{name}": round(float(row[name]), digits) for name in ("mean", "lo", "hi")}
    return out | {f"{key}-k": int(row["improved"]), f"{key}-n": int(row["n"])}


#: An assumption, not a measurement: sustained fp32/TF32 matrix throughput of one GPU (TFLOP/s).
ASSUMED_GPU_TFLOPS = 20.0


def papermill_line(params: dict) -> str:
    """The papermill command that runs this chapter with ``params`` (``-p NAME VALUE``)."""
    flags = " ".join(f"-p {k} {v}" for k, v in params.items())
    return f"papermill notebooks/ch5_longtail_images.ipynb out.ipynb {flags}"


def cost_table(settings: study.Settings, other: study.Settings, results) -> pd.DataFrame:
    """The training cost of this chapter's ``results`` (its ``settings``) and the estimated
    cost of ``other`` (e.g. the CIFAR-10-LT set), at the FLOP rate these runs achieved
    (:func:`imbcl.images.study.training_flops` over :func:`imbcl.images.study.cpu_seconds`)
    and at :data:`ASSUMED_GPU_TFLOPS`; one column, rounded to 2 decimals."""
    ours, theirs = study.training_flops(settings), study.training_flops(other)
    rate = ours / study.cpu_seconds(results)  # FLOP/s
    cost = {
        "digits runs of this chapter (TFLOP)": ours / 1e12,
        "achieved by these runs (GFLOP/s, training and probes)": rate / 1e9,
        "CIFAR-10-LT set (PFLOP)": theirs / 1e15,
        "CIFAR-10-LT at the rate above (days)": theirs / rate / 86400,
        f"CIFAR-10-LT at {ASSUMED_GPU_TFLOPS:g} TFLOP/s (GPU-hours)": theirs
        / (ASSUMED_GPU_TFLOPS * 1e12)
        / 3600,
    }
    return pd.Series(cost, name="estimate").round(2).to_frame()


# ------------------------------------------------------------------ one statistic per seed
def contrast(
    table: pd.DataFrame, method: str, reference: str, probe: str, metric: str, rho: float
) -> pd.Series:
    """Per seed (index, ascending): ``method``'s ``metric`` minus ``reference``'s on the same
    seed, probe and rho (points; :func:`imbcl.report.paired.paired_deltas`). KeyError if either
    method has no row, or no finite value, for a seed that the other has."""
    sel = table[(table.rho == rho) & (table.probe == probe)]
    sel = sel[sel.method.isin([method, reference])]
    problem = KeyError(
        f"no paired rows for {method!r} and {reference!r} at rho={rho:g}, probe={probe!r}"
    )
    try:
        paired = paired_deltas(sel, by="method", reference=reference, pair_on=UNIT, values=[metric])
    except ValueError as exc:  # no reference row for some seed
        raise problem from exc
    per_seed = paired.set_index("seed")[metric].sort_index()
    if per_seed.empty or set(per_seed.index) != set(sel.seed) or per_seed.isna().any():
        raise problem
    return per_seed


def claim_values(table: pd.DataFrame, seeds) -> dict[str, np.ndarray]:
    """{claim id: (len(seeds),) per-seed value in the order of ``seeds``} from
    :func:`imbcl.images.study.results_table`: for each claim of :data:`CLAIMS`, its method
    minus its reference at rho = :data:`imbcl.images.study.CLAIM_RHO` (:func:`contrast`).
    KeyError if a seed has no pair of rows."""
    seeds = list(seeds)
    values = {}
    for claim, (method, reference, probe, metric) in CLAIMS.items():
        per_seed = contrast(table, method, reference, probe, metric, study.CLAIM_RHO)
        missing = sorted(set(seeds) - set(per_seed.index))
        if missing:
            raise KeyError(f"{claim}: no rows for seed(s) {missing} at rho={study.CLAIM_RHO:g}")
        values[claim] = per_seed.loc[seeds].to_numpy()
    return values


def claims_from_results(settings: study.Settings, results) -> dict[str, np.ndarray]:
    """:func:`claim_values` of ``settings.seeds`` straight from the results of
    :func:`imbcl.images.study.plan`."""
    return claim_values(study.results_table(results), settings.seeds)
