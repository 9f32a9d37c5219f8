"""Chapter 2: the capacity cost of minority features.

A sweep over imbalance ratio rho, width m and seed trains every (rho, m, seed) cell once and
keeps only its final weights. From them it measures, per replica: how many live neurons
specialise in each majority and each minority feature, whether every minority feature has such
a neuron (coverage), and whether each minority feature was learned at all (some neuron aligned
with it). Cells are then summarised over seeds, and m*(rho), the smallest width at which
minority coverage reaches a given probability, is read off the grid, with "not reached" kept
explicit (NaN), never extrapolated.

Units: alignments |A_ij| = |<W_V^T w_i, M_j>| are in the units of the weights (a.u.); counts
are neurons; probabilities are fractions of seeds; costs are seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from imbcl.engine import metrics
from imbcl.engine.config import ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.history import History
from imbcl.engine.runtime import default_device
from imbcl.engine.train import Replicas

#: A minority feature counts as learned when some neuron's |A_ij| reaches this (a.u.). An
#: unlearned feature sits on a plateau near 0.06; a learned one ends near 0.5-0.8.
LEARNED = 0.2
#: On the CPU, replicas are stacked into one computation when m * batch is at most this
#: (measured: stacking saves 20-40 % of the per-step overhead for small layers, none above).
STACK_MAX = 8192
#: Default coverage probability that defines m*(rho).
COVERAGE_LEVEL = 0.9


# ----------------------------------------------------------------------- sweep
def sweep_specs(
    rhos: Sequence[float],
    widths: Sequence[int],
    n_seeds: int,
    data: DataConfig,
    model: ModelConfig,
    train: TrainConfig,
) -> list[RunSpec]:
    """One RunSpec per (rho, m, seed), seeds 0..n_seeds-1, other fields from the base configs.

    The same seed gives the same dictionary at every (rho, m), so cells are paired by seed.
    """
    return [
        RunSpec(data.replace(rho=r), model.replace(m=m), train, seed=s)
        for r in rhos
        for m in widths
        for s in range(n_seeds)
    ]


def shape_groups(specs: Sequence[RunSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped so that each group can train as one Replicas call.

    Specs share a group when their shape key (see RunSpec.shape_key) and step count agree;
    groups and the indices inside them keep the order of first appearance.
    """
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault((*s.shape_key(), s.train.steps), []).append(i)
    return list(groups.values())


def final_measurements(hist: History, learned: float = LEARNED) -> pd.DataFrame:
    """One row per replica, measured at the History's last record.

    Columns: rho, m, seed, steps, lr, weight_decay (from the spec); n_alive (live neurons);
    npf_maj, npf_min (mean neurons specialised per majority / minority feature); cov_maj,
    cov_min (every feature of the group has a specialised neuron); best_maj, best_min (mean
    over the group's features of max_i |A_ij|, a.u.); learned_min (fraction of minority
    features with max_i |A_ij| >= ``learned``).
    """
    align, noise, minority = hist.align[-1], hist.noise[-1], hist.minority  # (R,m,K), (R,m)
    counts = metrics.neurons_per_feature(metrics.owners(align, noise), len(minority))
    npf_maj, npf_min = metrics.group_mean(counts.astype(float), minority)
    best = metrics.best_per_feature(np.abs(align))  # (R, K)
    best_maj, best_min = metrics.group_mean(best, minority)
    return pd.DataFrame(
        {
            "rho": [s.data.rho for s in hist.specs],
            "m": [s.model.m for s in hist.specs],
            "seed": [s.seed for s in hist.specs],
            "steps": [s.train.steps for s in hist.specs],
            "lr": [s.train.lr for s in hist.specs],
            "weight_decay": [s.train.weight_decay for s in hist.specs],
            "n_alive": metrics.alive(align, noise).sum(-1),
            "npf_maj": npf_maj,
            "npf_min": npf_min,
            "cov_maj": metrics.coverage(counts, ~minority),
            "cov_min": metrics.coverage(counts, minority),
            "best_maj": best_maj,
            "best_min": best_min,
            "learned_min": (best[:, minority] >= learned).mean(-1),
        }
    )


def stack_chunk(spec: RunSpec, n: int, device=None) -> int | None:
    """Replicas per batched computation for a group of ``n`` like ``spec``.

    On the CPU: all ``n`` at once for small layers (m * batch <= STACK_MAX), else one at a
    time. On any other device: None, the trainer's default (everything stacked).
    """
    kind = torch.device(device).type if device is not None else default_device().type
    if kind != "cpu":
        return None
    return n if spec.model.m * spec.train.batch <= STACK_MAX else 1


def run_sweep(
    specs: Sequence[RunSpec], learned: float = LEARNED, device=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``specs`` group by group (see shape_groups) and measure each replica's end state.

    Returns ``rows`` (one row per spec, in the order of ``specs``; columns of
    final_measurements) and ``cost`` (one row per group: m, batch, steps, replicas, wall_s,
    cpu_s, the wall-clock and this process's CPU seconds spent training it).
    """
    specs = list(specs)
    if not specs:
        raise ConfigError("specs must hold at least one RunSpec (got none)")
    rows, cost = [None] * len(specs), []
    for idx in shape_groups(specs):
        group = [specs[i] for i in idx]
        wall, cpu = time.perf_counter(), time.process_time()
        reps = Replicas(group, device=device, chunk=stack_chunk(group[0], len(group), device))
        hist = reps.run(progress=False)
        cost.append(
            {
                "m": group[0].model.m,
                "batch": group[0].train.batch,
                "steps": group[0].train.steps,
                "replicas": len(group),
                "wall_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
            }
        )
        for i, (_, row) in zip(idx, final_measurements(hist, learned).iterrows(), strict=True):
            rows[i] = row
    return pd.DataFrame(rows).reset_index(drop=True), pd.DataFrame(cost)


# -------------------------------------------------------------------- analysis
def cell_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (rho, m): seeds, mean and s.d. (ddof=1) of npf_maj, npf_min and n_alive, coverage
    probabilities cov_maj and cov_min, and the mean fraction of minority features learned."""
    g = rows.groupby(["rho", "m"])
    out = g.agg(
        seeds=("seed", "size"),
        npf_maj=("npf_maj", "mean"),
        npf_maj_sd=("npf_maj", "std"),
        npf_min=("npf_min", "mean"),
        npf_min_sd=("npf_min", "std"),
        n_alive=("n_alive", "mean"),
        cov_maj=("cov_maj", "mean"),
        cov_min=("cov_min", "mean"),
        learned_min=("learned_min", "mean"),
    )
    return out.fillna({"npf_maj_sd": 0.0, "npf_min_sd": 0.0}).reset_index()


def coverage_table(rows: pd.DataFrame, column: str = "cov_min") -> pd.DataFrame:
    """rho x m table of the probability (fraction of seeds) that ``column`` holds."""
    return rows.pivot_table(index="rho", columns="m", values=column, aggfunc="mean")


def critical_width(rows: pd.DataFrame, level: float = COVERAGE_LEVEL) -> pd.DataFrame:
    """m*(rho): the smallest width in the sweep whose minority coverage probability >= level.

    One row per rho: m_star (float; NaN when no width reaches ``level``), coverage_at_widest,
    learned_at_widest (mean fraction of minority features learned at the widest m) and status:
    "reached", "not reached (minority features not learned)" when fewer than half of them are
    learned even at the widest m, else "not reached (learned but not covered)". NaN is never
    replaced by an extrapolated width.
    """
    if not 0 < level <= 1:
        raise ConfigError(f"level must be in (0, 1] (got {level!r})")
    cov = coverage_table(rows)
    learned = coverage_table(rows, "learned_min")
    widest = cov.columns.max()
    out = []
    for rho, line in cov.iterrows():
        ok = line.index[line.to_numpy() >= level]
        m_star = float(ok.min()) if len(ok) else math.nan
        frac = float(learned.loc[rho, widest])
        if len(ok):
            status = "reached"
        elif frac < 0.5:
            status = "not reached (minority features not learned)"
        else:
            status = "not reached (learned but not covered)"
        out.append(
            {
                "rho": rho,
                "m_star": m_star,
                "coverage_at_widest": float(line[widest]),
                "learned_at_widest": frac,
                "status": status,
            }
        )
    return pd.DataFrame(out)


def format_m_star(table: pd.DataFrame) -> pd.DataFrame:
    """critical_width's table for display: m* as an integer string or "not reached"."""
    shown = table.copy()
    shown["m_star"] = [
        "not reached" if math.isnan(v) else str(int(v)) for v in table["m_star"].to_numpy()
    ]
    return shown


def width_rank(m_star: Sequence[float], widths: Sequence[int]) -> np.ndarray:
    """Position of each m* in the width grid; "not reached" (NaN) ranks past the widest (len).

    This orders "not reached" above every width of the sweep without inventing a value for it.
    """
    widths = list(widths)
    out = []
    for v in m_star:
        if math.isnan(v):
            out.append(len(widths))
        elif int(v) in widths:
            out.append(widths.index(int(v)))
        else:
            raise ValueError(f"m* = {v} is not a width of the grid {widths}")
    return np.array(out)


def rank_decreases(ranks: Sequence[int]) -> int:
    """Number of adjacent steps (in rho order) where the rank of m* goes down."""
    r = np.asarray(ranks)
    return int((np.diff(r) < 0).sum())


def ramped(model: ModelConfig, steps: int, fraction: float) -> ModelConfig:
    """``model`` with its bias ramp spanning ``fraction`` of ``steps`` (at least one step).

    The core's default ramps over 1000 of 2000 steps (fraction 0.5); a shorter run keeps that
    shape by scaling the ramp with the run.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"ramp_fraction must be in (0, 1] (got {fraction!r})")
    return model.replace(ramp_steps=max(1, round(fraction * steps)))


def control_specs(
    rho: float,
    m: int,
    n_seeds: int,
    data: DataConfig,
    model: ModelConfig,
    trains: Sequence[TrainConfig],
    ramp_fraction: float,
) -> list[RunSpec]:
    """Specs for the learnability control: one cell (rho, m) trained under each of ``trains``.

    Seeds 0..n_seeds-1 match the sweep's, so each arm is paired with the sweep's cell by seed;
    the bias ramp of each arm spans ``ramp_fraction`` of that arm's steps.
    """
    return [
        RunSpec(data.replace(rho=rho), ramped(model.replace(m=m), t.steps, ramp_fraction), t, s)
        for t in trains
        for s in range(n_seeds)
    ]


def group_ratio(rows: pd.DataFrame, m: int) -> pd.DataFrame:
    """Per rho at width ``m``: mean npf_maj, npf_min, their ratio min/maj (mean over seeds of
    the per-seed counts, ratio of the means) and the frequency ratio 1/rho for comparison."""
    at = rows[rows.m == m].groupby("rho")[["npf_maj", "npf_min"]].mean()
    at["ratio_min_maj"] = at.npf_min / at.npf_maj
    at["frequency_ratio"] = 1.0 / at.index.to_numpy()
    return at.reset_index()
