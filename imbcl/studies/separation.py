"""Chapter 3: how cleanly specialised neurons separate features from noise, per group.

A live neuron i is *specialised* to feature j* = argmax_j |A_ij| when |A_ij*| >= noise_i
(:func:`imbcl.engine.metrics.owners`); its feature-to-noise ratio is |A_ij*| / noise_i
(:func:`imbcl.engine.metrics.feature_noise_ratio`, dimensionless). A live neuron specialised to no
feature is *noise-dominated*. This module turns a History into tidy pandas tables of

* the median ratio of the neurons specialised to majority and to minority features, per
  replica and record (NaN, with ``n_neurons = 0``, when a group has no specialised neuron);
* the fraction of live neurons that are noise-dominated;
* linear-probe balanced accuracy (chance 1/3) per group, measured between training segments;

plus the seed-level summaries and paired gaps that the chapter's claims use.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.history import History
from imbcl.engine.train import Replicas

GROUPS = ("majority", "minority")
#: Balanced accuracy of a guess among z in {-1, 0, +1}.
CHANCE = 1.0 / 3.0


def sweep_specs(
    rhos: Sequence[float],
    sigmas: Sequence[float],
    n_seeds: int,
    data: DataConfig,
    model: ModelConfig,
    train: TrainConfig,
) -> list[RunSpec]:
    """One RunSpec per (sigma, rho, seed), in that nesting order; seeds are 0..n_seeds-1.

    ``data`` supplies every data field except ``rho`` and ``sigma``.
    """
    return [
        RunSpec(data.replace(rho=r, sigma=s), model, train, seed=k)
        for s in sigmas
        for r in rhos
        for k in range(n_seeds)
    ]


def spec_frame(specs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per replica: replica index, rho, sigma, seed."""
    return pd.DataFrame(
        {
            "replica": np.arange(len(specs)),
            "rho": [s.data.rho for s in specs],
            "sigma": [s.data.sigma for s in specs],
            "seed": [s.seed for s in specs],
        }
    )


# ------------------------------------------------------------------------------- training
def train_with_probes(
    specs: Sequence[RunSpec],
    probe_steps: Sequence[int],
    n_probe: int = 1000,
    probe_replicas: Sequence[int] | None = None,
) -> tuple[History, np.ndarray, list[int]]:
    """Train ``specs`` to their ``train.steps`` in segments, probing at each of ``probe_steps``.

    Returns the joined History, probe balanced accuracies (P, R, K) and the P probe steps
    (sorted, unique, always ending with the last step): :func:`imbcl.engine.metrics.probe_accuracy` with ``n_probe`` training and ``n_probe``
    test samples, every feature present at the majority rate q. Before the last training step
    only ``probe_replicas`` (default: all) are probed and the other rows are NaN; at the last
    step every replica is. Probing reads the weights and draws from its own fixed stream, so
    it does not change the training trajectory.
    """
    specs = list(specs)
    total = specs[0].train.steps
    if any(s.train.steps != total for s in specs):
        raise ConfigError("specs must agree on train.steps")
    marks = sorted({int(t) for t in probe_steps})
    if not marks or marks[0] < 1 or marks[-1] > total:
        raise ConfigError(f"probe_steps must lie in [1, {total}] (got {list(probe_steps)})")
    reps = Replicas(specs)
    some = reps.indices(probe_replicas)  # checked before any training
    probes = np.full((len(marks), len(specs), reps.k), np.nan)
    hist = None
    for p, t in enumerate(marks):
        seg = reps.run(t - reps.step, progress=False)
        hist = seg if hist is None else hist.concat(seg)
        if t == total:
            probes[p] = metrics.probe_accuracy(reps, n_probe, n_probe)
        else:
            probes[p, some] = metrics.probe_accuracy(reps, n_probe, n_probe, replicas=some)
    if reps.step < total:
        hist = hist.concat(reps.run(total - reps.step, progress=False))
        probes = np.concatenate([probes, metrics.probe_accuracy(reps, n_probe, n_probe)[None]])
        marks.append(total)
    return hist, probes, marks


# ---------------------------------------------------------------------------- measurement
def feature_best_ratio(align: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(..., K) for each feature j, max over live neurons i of |A_ij| / noise_i.

    The feature-side view: how cleanly the best neuron for feature j carries it. Unlike the
    neuron-side ratio it is defined for every feature; it is below 1 when no neuron is
    specialised to j. ``align`` (..., m, K), ``noise`` (..., m).
    """
    ratio = np.abs(align) / np.maximum(noise, 1e-12)[..., None]
    return metrics.best_per_feature(ratio, metrics.alive(align, noise))


def group_ratios(hist: History) -> dict[str, np.ndarray]:
    """Per record and replica: median ratio and count of each group's specialised neurons.

    Returns arrays of shape (T, R): ``{group}_ratio`` (NaN when the group has no specialised
    neuron) and ``{group}_n`` for group in majority/minority; ``{group}_best``, the median over
    the group's features of :func:`feature_best_ratio` (finite even for an unlearned feature);
    and ``noise_fraction``, the fraction of live neurons specialised to no feature (NaN if no
    neuron is alive).
    """
    owner = metrics.owners(hist.align, hist.noise)  # (T, R, m)
    ratio = metrics.feature_noise_ratio(hist.align, hist.noise)
    live = metrics.alive(hist.align, hist.noise)
    minority_owner = hist.minority[np.clip(owner, 0, None)]
    out = {}
    for group, sel in (("majority", ~minority_owner), ("minority", minority_owner)):
        mask = (owner >= 0) & sel
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice: group is empty
            out[f"{group}_ratio"] = np.nanmedian(np.where(mask, ratio, np.nan), axis=-1)
        out[f"{group}_n"] = mask.sum(-1)
    best = feature_best_ratio(hist.align, hist.noise)  # (T, R, K)
    out["majority_best"] = np.median(best[..., ~hist.minority], axis=-1)
    out["minority_best"] = np.median(best[..., hist.minority], axis=-1)
    n_live = live.sum(-1)
    noisy = (live & (owner < 0)).sum(-1)
    out["noise_fraction"] = np.where(n_live > 0, noisy / np.maximum(n_live, 1), np.nan)
    return out


def ratio_table(hist: History) -> pd.DataFrame:
    """Tidy table, one row per (record, replica, group): step, replica, rho, sigma, seed,
    group, ratio (median over the group's specialised neurons, NaN if none), n_neurons,
    best_ratio (median over the group's features of :func:`feature_best_ratio`).
    """
    g = group_ratios(hist)
    frames = []
    for group in GROUPS:
        cols = {"ratio": g[f"{group}_ratio"], "n_neurons": g[f"{group}_n"]}
        df = _long(hist, cols | {"best_ratio": g[f"{group}_best"]})
        frames.append(df.assign(group=group))
    return pd.concat(frames, ignore_index=True)


def noise_table(hist: History) -> pd.DataFrame:
    """Tidy table, one row per (record, replica): step, replica, rho, sigma, seed,
    noise_fraction (fraction of live neurons specialised to no feature)."""
    return _long(hist, {"noise_fraction": group_ratios(hist)["noise_fraction"]})


def probe_table(
    probes: np.ndarray, steps: Sequence[int], specs: Sequence[RunSpec], minority: np.ndarray
) -> pd.DataFrame:
    """Tidy table from probe accuracies (P, R, K): one row per (step, replica, group) with the
    mean balanced accuracy over the group's features; replicas never probed are dropped."""
    frames = []
    for group, sel in (("majority", ~minority), ("minority", minority)):
        acc = probes[..., sel].mean(-1)  # (P, R)
        frame = _frame(np.asarray(sorted(set(steps))), specs, {"probe": acc})
        frames.append(frame.assign(group=group))
    return pd.concat(frames, ignore_index=True).dropna(subset=["probe"])


def per_neuron_ratios(hist: History, step: int) -> pd.DataFrame:
    """Every specialised neuron at the record nearest before ``step``: replica, rho, sigma,
    seed, group, ratio. Noise-dominated and silent neurons are left out."""
    t = hist.at(step)
    owner = metrics.owners(hist.align[t], hist.noise[t])  # (R, m)
    ratio = metrics.feature_noise_ratio(hist.align[t], hist.noise[t])
    r_idx, i_idx = np.nonzero(owner >= 0)
    groups = np.where(hist.minority[owner[r_idx, i_idx]], "minority", "majority")
    meta = spec_frame(hist.specs).iloc[r_idx].reset_index(drop=True)
    return meta.assign(group=groups, ratio=ratio[r_idx, i_idx])


def _frame(steps: np.ndarray, specs: Sequence[RunSpec], values: dict) -> pd.DataFrame:
    """Long table of (T, R) arrays ``values`` with step and the replica's rho/sigma/seed."""
    meta = spec_frame(specs)
    t, r = np.meshgrid(np.arange(len(steps)), np.arange(len(specs)), indexing="ij")
    df = meta.iloc[r.ravel()].reset_index(drop=True)
    df.insert(0, "step", steps[t.ravel()])
    for name, arr in values.items():
        df[name] = np.asarray(arr, dtype=float).ravel()
    return df


def _long(hist: History, values: dict) -> pd.DataFrame:
    return _frame(hist.steps, hist.specs, values)


# ------------------------------------------------------------------------------ summaries
def at_step(df: pd.DataFrame, step: int) -> pd.DataFrame:
    """Rows of ``df`` at the last recorded step <= ``step``."""
    steps = np.sort(df["step"].unique())
    pick = steps[steps <= step]
    if not len(pick):
        raise ValueError(f"step must be >= {steps[0]} (got {step})")
    return df[df["step"] == pick[-1]]


def seed_summary(df: pd.DataFrame, value: str, by: Sequence[str]) -> pd.DataFrame:
    """Mean, s.d. (ddof=1) and number of finite values of ``value`` over seeds, per ``by``.

    NaN entries (a group with no specialised neuron) are left out and counted in ``n_nan``.
    """
    grouped = df.groupby(list(by))[value]
    return pd.DataFrame(
        {
            "mean": grouped.mean(),
            "sd": grouped.std(ddof=1),
            "n": grouped.count(),
            "n_nan": grouped.apply(lambda v: int(v.isna().sum())),
        }
    ).reset_index()


def paired_gap(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per step, rho, sigma and seed: majority minus minority of ``value`` (``gap``)."""
    keys = ["step", "rho", "sigma", "seed"]
    wide = df.pivot_table(index=keys, columns="group", values=value, dropna=False)
    wide = wide.reindex(columns=list(GROUPS))
    return (wide["majority"] - wide["minority"]).rename("gap").reset_index()


def wide_summary(df: pd.DataFrame, value: str, step: int) -> pd.DataFrame:
    """Table rho x (sigma, group) of 'mean ± sd' strings of ``value`` at ``step``."""
    s = seed_summary(at_step(df, step), value, ["sigma", "rho", "group"])
    s["cell"] = [
        f"{m:.2f} ± {d:.2f}" + (f" ({k} NaN)" if k else "")
        for m, d, k in zip(s["mean"], s["sd"].fillna(0.0), s["n_nan"], strict=True)
    ]
    return s.pivot_table(index="rho", columns=["sigma", "group"], values="cell", aggfunc="first")
