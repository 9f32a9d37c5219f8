"""Chapter 4: does pruning restore what imbalance degrades? The paired protocol and its map.

One *cell* of the map is an imbalance ratio rho and a pruning time T1. Its protocol:

1. train R replicas (one per seed) for T1 steps: the *base*;
2. for every pruning setting, ``base.copy()`` (same weights, same future data stream), prune
   the copy, continue it for T2 steps with the mask held (or not, for the no-mask control);
3. the unpruned copy also continues for T2 steps: it is the shared baseline of the cell;
4. every measurement is compared seed by seed with that baseline (a *paired* delta).

Because a copy clones the data generators, a pruned branch and its baseline see exactly the
same batches: the delta isolates the pruning. Every branch costs T2 steps, so the map shares one
T1 run (and one baseline) among all the settings of a cell.

A setting is a basis (``coordinate``; ``feature``: each replica's dictionary, an oracle that
needs M; ``estimated``: FastICA on unlabelled tokens), a mode (``magnitude`` or ``random`` at the
same rate), a scope (``global`` or per ``neuron``), whether the mask is held, and a rate p.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from imbcl.engine import metrics
from imbcl.engine import model as M
from imbcl.engine import prune as P
from imbcl.engine.config import ConfigError, PruneConfig, RunSpec
from imbcl.engine.history import History
from imbcl.engine.streams import Stream
from imbcl.engine.train import Replicas

BASES = ("coordinate", "feature", "estimated")
MODES = ("magnitude", "random")
#: Measurements taken at the end of every branch, one value per replica (see ``measure``).
METRICS = (
    "probe_min",
    "probe_maj",
    "neurons_min",
    "neurons_maj",
    "coverage_min",
    "purity_min",
    "purity_maj",
)


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """One pruning setting; ``rate == 0`` is the unpruned baseline.

    The fields are validated (and coerced) at construction through :class:`PruneConfig`, so a
    bad rate, basis, mode or scope fails at once with the config's message.
    """

    rate: float = 0.0
    basis: str = "feature"
    mode: str = "magnitude"
    scope: str = "global"
    keep_mask: bool = True

    def __post_init__(self) -> None:
        cfg = self.config()
        for name in ("rate", "basis", "mode", "scope", "keep_mask"):
            object.__setattr__(self, name, getattr(cfg, name))

    @property
    def is_baseline(self) -> bool:
        return self.rate == 0

    @property
    def family(self) -> str:
        """The setting without its rate, e.g. ``feature · random`` (one line in a figure)."""
        if self.is_baseline:
            return "unpruned"
        parts = [self.basis, self.mode]
        if self.scope == "neuron":
            parts.append("per neuron")
        if not self.keep_mask:
            parts.append("no mask")
        return " · ".join(parts)

    def config(self) -> PruneConfig:
        return PruneConfig(
            rate=self.rate,
            basis=self.basis,
            scope=self.scope,
            mode=self.mode,
            keep_mask=self.keep_mask,
        )


BASELINE = Setting()


def grid(
    rates: Sequence[float],
    bases: Sequence[str] = BASES,
    modes: Sequence[str] = MODES,
    scope: str = "global",
    keep_mask: bool = True,
) -> list[Setting]:
    """Every (basis, mode, rate) combination at one scope and mask policy (rates > 0)."""
    return [
        Setting(rate, basis, mode, scope, keep_mask)
        for basis, mode, rate in itertools.product(bases, modes, rates)
        if rate > 0
    ]


# -------------------------------------------------------------------------- measurements
def estimated_bases(reps: Replicas, n_samples: int) -> np.ndarray:
    """(R, d, d) one FastICA basis per replica, fit on its unlabelled clean tokens.

    ``n_samples`` sequences (each of L tokens) are drawn from the replica's own data
    distribution (stream ``Stream.ICA``); no dictionary or label is used.
    """
    x, _ = reps.sample(n_samples, stream=Stream.ICA)
    tokens = x.reshape(reps.n_replicas, -1, reps.d).cpu().numpy()
    out = [P.estimate_basis(tokens[r], seed=s.seed) for r, s in enumerate(reps.specs)]
    return np.stack(out).astype(np.float32)


def check_bases(settings: Sequence[Setting], bases, specs: Sequence[RunSpec]) -> None:
    """ConfigError unless ``bases`` is an (R, d, d) array whenever a setting is "estimated".

    Called before any training, so a missing basis does not fail after T1 steps.
    """
    if not any(s.basis == "estimated" and not s.is_baseline for s in settings):
        return
    shape = (len(specs), specs[0].data.d, specs[0].data.d)
    if bases is None:
        raise ConfigError(
            "an 'estimated' setting needs bases (R, d, d): pass bases=estimated_bases(...)"
        )
    if np.shape(bases) != shape:
        raise ConfigError(f"bases must have shape {shape} (got {np.shape(bases)})")


def basis_recovery(basis: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(R, K) max_k |cos(b_k, M_j)|: how well some basis column matches each feature.

    ``basis`` (R, d, d) columns b_k; ``features`` (R, d, K) columns M_j (unit norm).
    """
    b = basis / np.linalg.norm(basis, axis=1, keepdims=True)
    return np.abs(np.einsum("rdk,rdj->rkj", b, features)).max(axis=1)


def purity_by_group(align: np.ndarray, noise: np.ndarray, minority: np.ndarray):
    """Feature purity of the best neuron per feature, averaged over majority / minority.

    For feature j: max over live neurons i of |A_ij| / ||w_i|| (the cosine between the neuron
    and the feature; 1 = a noise-free neuron). It is the feature-to-noise ratio
    |A_ij| / noise_i mapped into [0, 1]; unlike the ratio it stays finite when pruning in the
    feature basis removes a neuron's noise part entirely. ``align`` (R, m, K), ``noise``
    (R, m). Returns two (R,) arrays, (majority, minority) like ``metrics.group_mean``.
    """
    norm = metrics.weight_norm(align, noise)[..., None]
    cosine = np.abs(align) / np.maximum(norm, 1e-12)
    best = metrics.best_per_feature(cosine, metrics.alive(align, noise))  # (R, K)
    return metrics.group_mean(best, minority)


def measure(reps: Replicas, hist: History, n_probe: int) -> dict[str, np.ndarray]:
    """Per-replica end-of-branch measurements, each (R,), keyed as in ``METRICS``.

    Neuron counts are specialised neurons per feature averaged over the group; coverage is 1 if
    every minority feature has one; probes are balanced accuracies (chance 1/3) with
    ``n_probe`` training and ``n_probe`` test samples; purity is ``purity_by_group``.
    """
    align, noise, minority = hist.align[-1], hist.noise[-1], hist.minority
    counts = metrics.neurons_per_feature(metrics.owners(align, noise), reps.k)
    n_maj, n_min = metrics.group_mean(counts, minority)
    probe = metrics.probe_accuracy(reps, n_probe, n_probe)
    p_maj, p_min = metrics.group_mean(probe, minority)
    pur_maj, pur_min = purity_by_group(align, noise, minority)
    return {
        "probe_min": p_min,
        "probe_maj": p_maj,
        "neurons_min": n_min,
        "neurons_maj": n_maj,
        "coverage_min": metrics.coverage(counts, minority).astype(float),
        "purity_min": pur_min,
        "purity_maj": pur_maj,
    }


# ------------------------------------------------------------------------------- the map
def branch(
    base: Replicas, setting: Setting, basis: np.ndarray | None = None
) -> tuple[Replicas, float]:
    """A pruned (or, for the baseline, untouched) copy of ``base`` and the fraction zeroed."""
    reps = base.copy()
    if setting.is_baseline:
        return reps, 0.0
    est = basis if setting.basis == "estimated" else None
    mask = reps.prune(setting.config(), basis=est)
    return reps, float(1.0 - mask.mean())


def run_cell(
    specs: Sequence[RunSpec],
    t1: int,
    t2: int,
    settings: Sequence[Setting],
    n_probe: int,
    bases: np.ndarray | None = None,
) -> pd.DataFrame:
    """Train ``specs`` for ``t1`` steps, then branch the baseline and every setting for ``t2``.

    ``bases`` (R, d, d) is needed for "estimated" settings (:func:`estimated_bases` of the same
    specs: it depends only on the seeds and the data model, so compute it once per seed set).
    Returns one row per (setting, replica) with the setting's fields, rho, seed, t1, the
    fraction of coefficients zeroed and the ``METRICS``; the baseline rows have rate 0.
    """
    if t1 < 1 or t2 < 1:
        raise ConfigError(f"t1 and t2 must be >= 1 (got t1={t1}, t2={t2})")
    check_bases(settings, bases, specs)
    base = Replicas(specs)
    base.run(t1, progress=False)
    rows = []
    for setting in [BASELINE, *[s for s in settings if not s.is_baseline]]:
        reps, zeroed = branch(base, setting, bases)
        tail = reps.run(t2, progress=False)
        values = measure(reps, tail, n_probe)
        for r, spec in enumerate(reps.specs):
            rows.append(
                {
                    "rho": spec.data.rho,
                    "t1": t1,
                    "seed": spec.seed,
                    "family": setting.family,
                    "basis": setting.basis if not setting.is_baseline else "none",
                    "mode": setting.mode if not setting.is_baseline else "none",
                    "scope": setting.scope,
                    "keep_mask": setting.keep_mask,
                    "rate": setting.rate,
                    "zeroed": zeroed,
                    **{k: float(v[r]) for k, v in values.items()},
                }
            )
    return pd.DataFrame(rows)


def paired_deltas(table: pd.DataFrame) -> pd.DataFrame:
    """Each pruned row minus the unpruned row of the same (rho, t1, seed): ``d_<metric>``."""
    keys = ["rho", "t1", "seed"]
    base = table[table.rate == 0].set_index(keys)[list(METRICS)]
    if base.index.duplicated().any():
        raise ValueError("the table holds more than one baseline row per (rho, t1, seed)")
    pruned = table[table.rate > 0].reset_index(drop=True)
    ref = base.loc[pd.MultiIndex.from_frame(pruned[keys])].to_numpy()
    deltas = pruned[list(METRICS)].to_numpy() - ref
    out = pruned.drop(columns=list(METRICS)).copy()
    for j, name in enumerate(METRICS):
        out[f"d_{name}"] = deltas[:, j]
    return out


def summarise(deltas: pd.DataFrame) -> pd.DataFrame:
    """Mean and s.d. over seeds of the paired deltas, per (rho, t1, setting).

    A setting is identified by its family and its fields (basis, mode, scope, keep_mask, rate),
    so a row can be turned back into a :class:`Setting` (:func:`best_setting`). Columns besides
    those: n_seeds, improved (seeds with d_probe_min > 0), d_probe_min mean/sd,
    d_probe_maj mean, d_neurons_min mean/sd, d_coverage_min mean, d_purity_min mean.
    """
    keys = ["rho", "t1", "family", "basis", "mode", "scope", "keep_mask", "rate"]
    g = deltas.groupby(keys, sort=False)
    return pd.DataFrame(
        {
            "n_seeds": g.size(),
            "improved": g.d_probe_min.apply(lambda x: int((x > 0).sum())),
            "d_probe_min": g.d_probe_min.mean(),
            "sd_probe_min": g.d_probe_min.std(ddof=1),
            "d_probe_maj": g.d_probe_maj.mean(),
            "d_neurons_min": g.d_neurons_min.mean(),
            "sd_neurons_min": g.d_neurons_min.std(ddof=1),
            "d_coverage_min": g.d_coverage_min.mean(),
            "d_purity_min": g.d_purity_min.mean(),
        }
    ).reset_index()


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired comparison of a and b (n,) (same seeds): mean and s.d. of a - b, wins of a,
    and the two-sided exact sign-test p-value (binomial on the non-zero differences)."""
    from scipy import stats  # imported here: scipy.stats is slow to import

    diff = np.asarray(a, float) - np.asarray(b, float)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    p = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    mean, sd = metrics.mean_sd(diff)
    return {"mean": float(mean), "sd": float(sd), "wins": wins, "n": diff.size, "p_sign": p}


# -------------------------------------------------------------------- update measurement
def _effective(reps: Replicas) -> torch.Tensor:
    return M.effective_weights(reps.params["W"], reps.params["WV"])


def update_sizes(reps: Replicas, steps: int) -> np.ndarray:
    """(R, m, K) mean over the next ``steps`` SGD steps of |Delta A_ij| per step.

    Delta A_ij = <W_V^T w_i(t+1) - W_V^T w_i(t), M_j>, one step's update of neuron i along
    feature j (after the mask, if any, is re-applied). Trains ``reps`` for ``steps`` steps.
    """
    total = torch.zeros(reps.n_replicas, reps.m, reps.k)
    for _ in range(steps):
        before = _effective(reps)
        reps.run(1, progress=False)
        total += ((_effective(reps) - before) @ reps.features).abs().cpu()
    return (total / steps).numpy()


def group_update(size: np.ndarray, select: np.ndarray, minority: np.ndarray):
    """Mean of ``size`` (R, m, K) over the selected (neuron, feature) pairs ``select``
    (R, m, K) bool, for majority and for minority features: two (R,) arrays, (majority,
    minority) like ``metrics.group_mean``. A replica with no selected pair in a group gets NaN.
    """
    out = []
    for group in (~minority, minority):
        sel = select[..., group]
        total = np.where(sel, size[..., group], 0.0).sum((1, 2))
        count = sel.sum((1, 2))
        # no selected pair: the mean is undefined (NaN), not a 0/0 warning
        out.append(np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0))
    return out[0], out[1]


def update_ratio_study(
    specs: Sequence[RunSpec],
    t1: int,
    settings: Sequence[Setting],
    window: int,
    bases: np.ndarray | None = None,
) -> pd.DataFrame:
    """Minority / majority update sizes in the ``window`` steps after pruning at ``t1``.

    For the unpruned copy and each setting, one row per replica: ``upd_min`` and ``upd_maj``
    (mean |Delta A_ij| per step over minority / majority features j and the neurons alive at
    t1), their ``ratio``, and ``amplification`` = the ratio over the unpruned ratio (same seed).
    The ``*_kept`` columns average only over the (neuron, feature) coefficients that the mask
    kept, for feature-basis settings (a pruned feature coefficient cannot move); for the other
    settings they equal the plain columns. ``bases`` (R, d, d) is needed for "estimated"
    settings, as in :func:`run_cell`.
    """
    if t1 < 1 or window < 1:
        raise ConfigError(f"t1 and window must be >= 1 (got t1={t1}, window={window})")
    check_bases(settings, bases, specs)
    base = Replicas(specs)
    head = base.run(t1, progress=False)
    live = metrics.alive(head.align[-1], head.noise[-1])
    minority = head.minority
    rows = []
    for setting in [BASELINE, *[s for s in settings if not s.is_baseline]]:
        reps, _ = branch(base, setting, bases)
        pairs = np.broadcast_to(live[..., None], (*live.shape, reps.k))
        kept = pairs
        if setting.basis == "feature" and reps.mask is not None:
            kept = pairs & (reps.mask[..., : reps.k].cpu().numpy() > 0)
        size = update_sizes(reps, window)
        maj, mnr = group_update(size, pairs, minority)
        maj_k, mnr_k = group_update(size, kept, minority)
        for r, spec in enumerate(specs):
            rows.append(
                {
                    "seed": spec.seed,
                    "family": setting.family,
                    "rate": setting.rate,
                    "upd_min": mnr[r],
                    "upd_maj": maj[r],
                    "ratio": mnr[r] / maj[r],
                    "ratio_kept": mnr_k[r] / maj_k[r],
                }
            )
    out = pd.DataFrame(rows)
    ref = out[out.rate == 0].set_index("seed")
    for col, amp in (("ratio", "amplification"), ("ratio_kept", "amplification_kept")):
        out[amp] = out[col] / ref[col].loc[out.seed].to_numpy()
    return out


# ------------------------------------------------------------------------------ figures
def plot_delta_vs_rate(ax, summary: pd.DataFrame, metric: str, families: Sequence[str]) -> None:
    """One line per family: mean paired delta of ``metric`` against the rate, +-1 s.d. bars.

    ``summary`` is ``summarise``'s table restricted to one (rho, t1); ``metric`` is e.g.
    ``probe_min`` (columns ``d_<metric>`` and ``sd_<metric>``).
    """
    markers = itertools.cycle("osD^v<>")
    for family in families:
        rows = summary[summary.family == family].sort_values("rate")
        ls = "-" if "magnitude" in family else "--"
        ax.errorbar(
            rows.rate,
            rows[f"d_{metric}"],
            yerr=rows[f"sd_{metric}"],
            label=family,
            marker=next(markers),
            ls=ls,
            capsize=3,
            ms=4,
        )
    ax.axhline(0.0, color="0.5", lw=0.8)


def best_setting(summary: pd.DataFrame, families: Sequence[str]) -> Setting:
    """The setting among ``families`` (rows of :func:`summarise`) with the largest mean
    paired d_probe_min, built from that row's columns."""
    rows = summary[summary.family.isin(list(families))]
    if rows.empty:
        raise ConfigError(f"no summary row belongs to the families {list(families)}")
    top = rows.loc[rows.d_probe_min.idxmax()]
    return Setting(float(top.rate), top.basis, top["mode"], top.scope, bool(top.keep_mask))
