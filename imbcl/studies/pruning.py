"""Chapter 4: does pruning in stage II restore the minority features? A paired map.

A *cell* of the map is an imbalance ratio rho and a pruning step t1. For each seed of a cell,
one task (:func:`cell_task`):

1. trains the *base* run of the recipe to step t1;
2. for the unpruned *twin* and for every pruning setting, copies the base
   (``Replicas.copy``: same weights, same future data stream), prunes the copy once and
   continues it to the end of the recipe with the mask held;
3. measures every branch at the end (:func:`measure`: probes, specialised neurons, purity)
   and, for the settings whose basis begins with the features, the sizes of the updates of
   the kept feature coefficients in the ``window`` steps after pruning
   (:func:`update_amplification`);
4. returns one row per branch, and the twin's whole record (base and continuation), from
   which the chapter reads each seed's stage boundaries (:func:`twin_histories`,
   :func:`imbcl.report.ch4.stage_check`).

A pruned branch and its twin see the same batches, so the paired change (pruned minus twin,
same seed) isolates the pruning. A :class:`Setting` is a basis, a mode and a rate; every
setting ranks coefficients within the whole run (global scope) and holds its mask. The
bases differ in what they know of the data model (:func:`imbcl.engine.prune.pruning_basis`):
``coordinate`` nothing; ``feature`` the dictionary; ``feature_random`` the features and a
random completion (the control for ``feature``); ``feature_noise`` the features and the
correlated-noise directions (an oracle); ``estimated`` what FastICA recovers from unlabelled
tokens (:func:`estimated_basis`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from imbcl.engine import metrics
from imbcl.engine import model as M
from imbcl.engine import prune as P
from imbcl.engine.config import (
    MASKS,
    ConfigError,
    DataConfig,
    ModelConfig,
    PruneConfig,
    RunSpec,
    TrainConfig,
)
from imbcl.engine.config import validated_field as field
from imbcl.engine.history import History
from imbcl.engine.settings import StudySettings
from imbcl.engine.streams import Stream
from imbcl.engine.train import Replicas
from imbcl.sweep import Result, Task

MODES = ("magnitude", "random")
#: Bases whose first K columns are the features: a feature coefficient can be kept or pruned.
FEATURE_FIRST = ("feature", "feature_random", "feature_noise")
#: The sparse bases averaged over by ``ch4.magnitude-beats-random``.
SPARSE_BASES = ("feature", "feature_random", "estimated")
#: The rates at which the registered claims compare settings, and the rate "past" them.
CLAIM_RATES = (0.5, 0.9)
HIGH_RATE = 0.97
#: Measurements taken at the end of every branch, one value per run (see :func:`measure`).
METRICS = (
    "probe_min",
    "probe_maj",
    "neurons_min",
    "neurons_maj",
    "purity_min",
    "purity_maj",
)
#: FastICA iterations: the isotropic noise is Gaussian, so ICA never converges on it; the
#: feature directions are recovered after far fewer iterations (the chapter measures how well).
ICA_ITER = 100
#: Chapter 1's stage boundaries read growth rates over +-4 steps and hold for 6 steps.
STAGE_WINDOW = 4


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """One way to prune: a ``basis`` (one of ``imbcl.engine.config.BASES``), a ``mode``
    (``magnitude``: the smallest |coefficients|; ``random``: the same count at random) and a
    ``rate`` (the fraction of the run's coefficients zeroed; 0 is the unpruned twin).

    Validated (and coerced) through :class:`PruneConfig` at construction.
    """

    rate: float = 0.0
    basis: str = "feature"
    mode: str = "magnitude"

    def __post_init__(self) -> None:
        cfg = self.config()
        for name in ("rate", "basis", "mode"):
            object.__setattr__(self, name, getattr(cfg, name))

    @property
    def is_twin(self) -> bool:
        return self.rate == 0

    @property
    def label(self) -> str:
        """e.g. ``feature · magnitude · 0.5``; ``unpruned`` for the twin."""
        return "unpruned" if self.is_twin else f"{self.basis} · {self.mode} · {self.rate:g}"

    def config(self) -> PruneConfig:
        return PruneConfig(rate=self.rate, basis=self.basis, mode=self.mode, keep_mask=True)


TWIN = Setting()
#: The setting of ``ch4.magnitude-helps-feature``, ``ch4.updates-amplified`` and the phase
#: diagram: the paper's recipe in the dictionary's basis.
PAPER = Setting(CLAIM_RATES[0], "feature", "magnitude")
#: The settings the registered claims compare: coordinate magnitude pruning at the lower
#: claim rate, every sparse basis in both modes at both claim rates, and the feature basis's
#: magnitude pruning at the high rate.
CLAIM_SETTINGS = (
    Setting(CLAIM_RATES[0], "coordinate", "magnitude"),
    *(
        Setting(rate, basis, mode)
        for basis, mode, rate in itertools.product(SPARSE_BASES, MODES, CLAIM_RATES)
    ),
    Setting(HIGH_RATE, "feature", "magnitude"),
)


def parse_settings(text: str, name: str = "extra") -> tuple[Setting, ...]:
    """Settings from ``"basis mode rate, basis mode rate"`` (``""``: none), each validated
    (:class:`Setting`); a malformed entry raises a ConfigError naming ``name``."""
    out = []
    for entry in (e.strip() for e in str(text).split(",")):
        if not entry:
            continue
        words = entry.split()
        if len(words) != 3:
            raise ConfigError(
                f"{name} entries must read 'basis mode rate', e.g. 'feature_noise random 0.9' "
                f"(got {entry!r})"
            )
        basis, mode, rate = words
        setting = Setting(rate, basis, mode)
        if setting.is_twin:
            raise ConfigError(f"{name} rates must be > 0 (got {entry!r})")
        out.append(setting)
    return tuple(out)


@dataclass(frozen=True)
class Settings(StudySettings):
    """Chapter 4: one main cell (every setting, at ``rho``) and a phase diagram over rho."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 8},
        "small": {
            "n_seeds": 6,
            "extra": "feature_noise magnitude 0.9",
            "d": 32,
            "features": 4,
            "m": 32,
            "batch": 32,
            "steps": 160,
            "ramp_steps": 80,
            "t1": 40,
            "n_probe": 200,
            "n_ica": 200,
            "phase_seeds": 2,
        },
    }

    rho: float = field(8.0, lo=1, doc="imbalance ratio of the main cell (the claims' regime)")
    t1: int = field(170, lo=1, doc="pruning step (default: middle of stage II, measured)")
    mask: str = field("token", choices=MASKS, doc="masking granularity of the two views")
    extra: str = field(
        "feature_noise magnitude 0.9, feature_noise random 0.9",
        doc="settings beyond the claims' ('basis mode rate, ...'; '': none)",
    )
    phase_rhos: str = field("4,12", doc="other imbalance ratios of the phase diagram ('': none)")
    phase_seeds: int = field(4, lo=2, doc="seeds of each other cell of the phase diagram")
    window: int = field(20, lo=1, doc="steps after pruning over which updates are averaged")
    record_every: int = field(2, lo=1, doc="steps between records of the unpruned twin")
    n_probe: int = field(1000, lo=50, doc="probe training (= test) samples per run")
    n_ica: int = field(1000, lo=50, doc="unlabelled sequences the estimated basis is fit on")
    d: int = field(64, lo=2, doc="token dimension (recipe: 64)")
    features: int = field(8, lo=1, doc="features per group, majority and minority (recipe: 8)")
    m: int = field(64, lo=1, doc="neurons (recipe: 64)")
    batch: int = field(128, lo=2, doc="samples per SGD step (recipe: 128)")
    steps: int = field(1000, lo=1, doc="SGD steps in all, t1 + continuation (recipe: 1000)")
    ramp_steps: int = field(500, lo=1, doc="steps of the bias ramp (recipe: 500)")

    def _check_joint(self) -> None:
        self.spec(self.rho, 0)  # the recipe's own bounds (e.g. 2 * features + n_corr <= d)
        if self.t1 + self.window > self.steps:
            raise ConfigError(
                f"t1 + window must be <= steps = {self.steps}: the updates are measured in the "
                f"window steps after pruning at t1 (got t1={self.t1}, window={self.window})"
            )
        if self.record_every > STAGE_WINDOW:
            raise ConfigError(
                f"record_every must be <= {STAGE_WINDOW} steps: the stage boundaries read "
                f"growth rates over +-{STAGE_WINDOW} steps (got {self.record_every})"
            )
        if self.t1 % self.record_every:
            raise ConfigError(
                f"t1 must be a multiple of record_every = {self.record_every}, so that the "
                f"twin's record stays evenly spaced across the pruning step (got {self.t1})"
            )
        repeated = [s.label for s in self.extra_settings if s in CLAIM_SETTINGS]
        if repeated or len(set(self.extra_settings)) < len(self.extra_settings):
            raise ConfigError(
                f"extra must name settings once and none of the claims' settings, which are "
                f"always run (got {self.extra!r})"
            )
        if self.rho in self.other_rhos:
            raise ConfigError(
                f"phase_rhos must not repeat rho = {self.rho:g}, the main cell of the "
                f"diagram (got {self.phase_rhos!r})"
            )
        if self.phase_seeds > self.n_seeds:
            raise ConfigError(
                f"phase_seeds must be <= n_seeds = {self.n_seeds} (got {self.phase_seeds})"
            )
        tokens = self.n_ica * DataConfig().seq_len
        if tokens < self.d:
            raise ConfigError(
                f"n_ica must give at least d = {self.d} tokens to fit a basis "
                f"(got {self.n_ica} sequences = {tokens} tokens)"
            )

    @property
    def extra_settings(self) -> tuple[Setting, ...]:
        return parse_settings(self.extra)

    @property
    def other_rhos(self) -> tuple[float, ...]:
        return self.grid("phase_rhos", lo=1, allow_empty=True)

    def spec(self, rho: float, seed: int) -> RunSpec:
        """The RunSpec of one run of a cell: the recipe at ``rho``, recorded every
        ``record_every`` steps."""
        data = DataConfig(
            d=self.d, k_maj=self.features, k_min=self.features, rho=rho, mask=self.mask
        )
        model = ModelConfig(m=self.m, ramp_steps=self.ramp_steps)
        train = TrainConfig(steps=self.steps, batch=self.batch, record_every=self.record_every)
        return RunSpec(data, model, train, seed=seed)


def map_settings(settings: Settings) -> list[Setting]:
    """The pruning settings of the main cell: :data:`CLAIM_SETTINGS`, then ``extra``."""
    return [*CLAIM_SETTINGS, *settings.extra_settings]


# -------------------------------------------------------------------------- measurements
def estimated_basis(reps: Replicas, n_samples: int) -> np.ndarray:
    """(R, d, d) one FastICA basis per run, fit on its own unlabelled clean tokens.

    ``n_samples`` sequences (L tokens each) are drawn from the run's data distribution
    (stream ``Stream.ICA``); no dictionary and no label is used.
    """
    x, _ = reps.sample(n_samples, stream=Stream.ICA)
    tokens = x.reshape(reps.n_replicas, -1, reps.d).cpu().numpy()
    out = [
        P.estimate_basis(tokens[r], seed=s.seed, max_iter=ICA_ITER)
        for r, s in enumerate(reps.specs)
    ]
    return np.stack(out).astype(np.float32)


def basis_recovery(basis: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(R, K) max_k |cos(b_k, M_j)|: how well some basis column matches each feature.

    ``basis`` (R, d, d) columns b_k; ``features`` (R, d, K) columns M_j (unit norm).
    """
    b = basis / np.linalg.norm(basis, axis=1, keepdims=True)
    return np.abs(np.einsum("rdk,rdj->rkj", b, features)).max(axis=1)


def purity_by_group(align: np.ndarray, noise: np.ndarray, minority: np.ndarray):
    """Feature purity of the best live neuron per feature, averaged over each group.

    For feature j: max over live neurons i of |A_ij| / ||w_i|| (the cosine between the neuron
    and the feature; 1 = a neuron that is the feature and nothing else). ``align`` (R, m, K),
    ``noise`` (R, m). Returns two (R,) arrays, (majority, minority).
    """
    norm = metrics.weight_norm(align, noise)[..., None]
    cosine = np.abs(align) / np.maximum(norm, 1e-12)
    best = metrics.best_per_feature(cosine, metrics.alive(align, noise))  # (R, K)
    return metrics.group_mean(best, minority)


def measure(reps: Replicas, hist: History, n_probe: int) -> dict[str, np.ndarray]:
    """End-of-branch measurements, each (R,), keyed as in :data:`METRICS`.

    Probes: balanced accuracy (chance 1/3) of a linear probe per feature, averaged over the
    group, fit on ``n_probe`` samples and scored on ``n_probe`` others (the same samples for
    every branch of a seed). Neurons: specialised neurons per feature, averaged over the group.
    Purity: :func:`purity_by_group`.
    """
    align, noise, minority = hist.align[-1], hist.noise[-1], hist.minority
    counts = metrics.neurons_per_feature(metrics.owners(align, noise), reps.k)
    n_maj, n_min = metrics.group_mean(counts, minority)
    p_maj, p_min = metrics.group_mean(metrics.probe_accuracy(reps, n_probe, n_probe), minority)
    pur_maj, pur_min = purity_by_group(align, noise, minority)
    return {
        "probe_min": p_min,
        "probe_maj": p_maj,
        "neurons_min": n_min,
        "neurons_maj": n_maj,
        "purity_min": pur_min,
        "purity_maj": pur_maj,
    }


def update_sizes(reps: Replicas, steps: int) -> np.ndarray:
    """(R, m, K) mean over the next ``steps`` SGD steps of |A_ij(t+1) - A_ij(t)|.

    A_ij = <W_V^T w_i, M_j> after the step (and after the held mask is re-applied): one
    step's update of neuron i along feature j, in alignment units. Trains ``reps``.
    """
    total = torch.zeros(reps.n_replicas, reps.m, reps.k)
    for _ in range(steps):
        before = M.effective_weights(reps.params["W"], reps.params["WV"])
        reps.run(1, progress=False, divergence="raise")
        after = M.effective_weights(reps.params["W"], reps.params["WV"])
        total += ((after - before) @ reps.features).abs().cpu()
    return (total / steps).numpy()


def group_update(size: np.ndarray, select: np.ndarray, minority: np.ndarray):
    """Mean of ``size`` (R, m, K) over the selected (neuron, feature) pairs ``select``
    (R, m, K) bool, over majority and over minority features: two (R,) arrays (majority,
    minority); NaN for a run with no selected pair in a group."""
    out = []
    for group in (~minority, minority):
        sel = select[..., group]
        total = np.where(sel, size[..., group], 0.0).sum((1, 2))
        count = sel.sum((1, 2))
        out.append(np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0))
    return out[0], out[1]


def update_amplification(
    pruned: np.ndarray, twin: np.ndarray, kept: np.ndarray, minority: np.ndarray
) -> dict[str, np.ndarray]:
    """Minority / majority update sizes of a pruned branch against its twin, on the same pairs.

    ``pruned``, ``twin``: :func:`update_sizes` (R, m, K) of the branch and of the unpruned
    twin over the same steps and batches; ``kept`` (R, m, K) bool: the feature coefficients
    the mask kept, of neurons alive at pruning. Both are averaged over the same ``kept``
    pairs, so the comparison is of the same coefficients with and without the pruning of the
    others. Returns (R,) arrays ``upd_min``, ``upd_maj``, ``twin_upd_min``, ``twin_upd_maj``
    and ``log_amplification`` = log(upd_min / upd_maj) - log(twin_upd_min / twin_upd_maj).
    """
    maj, mnr = group_update(pruned, kept, minority)
    twin_maj, twin_min = group_update(twin, kept, minority)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_amp = np.log(mnr / maj) - np.log(twin_min / twin_maj)
    return {
        "upd_min": mnr,
        "upd_maj": maj,
        "twin_upd_min": twin_min,
        "twin_upd_maj": twin_maj,
        "log_amplification": log_amp,
    }


# --------------------------------------------------------------------------- the task
def branch_all(
    base: Replicas, settings: Sequence[Setting], estimated: np.ndarray | None = None
) -> tuple[Replicas, list[float]]:
    """The twin and every setting as branches of ``base`` (one replica): branch 0 is the twin,
    branch j the j-th setting, pruned once with its mask held (:meth:`Replicas.branches`:
    stacked, sharing the base's future batches). Returns the branches and the fraction of
    coefficients each zeroed. ``estimated`` (1, d, d) is the basis of ``estimated`` settings
    (:func:`estimated_basis`)."""
    branches = base.branches(1 + len(settings))
    zeroed = [0.0]
    for j, setting in enumerate(settings, start=1):
        if setting.basis == "estimated" and estimated is None:
            raise ConfigError("an 'estimated' setting needs its basis (1, d, d): pass estimated")
        basis = estimated if setting.basis == "estimated" else None
        mask = branches.prune(setting.config(), basis=basis, replicas=[j])
        zeroed.append(float(1.0 - mask.mean()))
    return branches, zeroed


def cell_task(
    spec: RunSpec,
    t1: int,
    settings: Sequence[Setting],
    n_probe: int,
    n_ica: int,
    window: int,
) -> Result:
    """One seed of one cell: the base to ``t1``, then the twin and every setting to the end.

    ``spec`` is the run (its ``train.steps`` is the end of every branch). The branches train
    stacked on the base's batches (:func:`branch_all`). Returns a Result whose table has one
    row per branch (the twin first): rho, t1, seed, basis, mode, rate, setting (its label),
    zeroed (fraction of coefficients pruned), the :data:`METRICS`, and, for feature-first
    bases, the update columns of :func:`update_amplification` over the ``window`` steps after
    pruning (NaN otherwise); whose arrays are the twin's History (base and continuation,
    :meth:`History.to_arrays`) plus ``ica_recovery`` (K,), the :func:`basis_recovery` of the
    estimated basis (NaN if no setting uses it); and whose meta holds the specs.
    """
    if not (0 < t1 and t1 + window <= spec.train.steps):
        raise ConfigError(
            f"need 0 < t1 and t1 + window <= {spec.train.steps} (got t1={t1}, window={window})"
        )
    base = Replicas([spec])
    head = base.run(t1, progress=False, divergence="raise")
    live = metrics.alive(head.align[-1], head.noise[-1])  # (1, m)
    pruned = [s for s in settings if not s.is_twin]
    estimated, recovery = None, np.full(base.k, np.nan)
    if any(s.basis == "estimated" for s in pruned):
        estimated = estimated_basis(base, n_ica)
        recovery = basis_recovery(estimated, base.features.cpu().numpy())[0]
    branches, zeroed = branch_all(base, pruned, estimated)
    sizes = update_sizes(branches.copy(), window)  # (B, m, K), every branch on the same steps
    tail = branches.run(spec.train.steps - t1, progress=False, divergence="raise")
    values = measure(branches, tail, n_probe)
    rows = []
    for j, setting in enumerate([TWIN, *pruned]):
        updates = {}
        if setting.basis in FEATURE_FIRST and not setting.is_twin:
            coefficients = branches.mask[j : j + 1, :, : branches.k].cpu().numpy()
            kept = live[..., None] & (coefficients > 0)
            updates = update_amplification(sizes[j : j + 1], sizes[:1], kept, branches.minority)
        rows.append(
            {
                "rho": spec.data.rho,
                "t1": t1,
                "seed": spec.seed,
                "basis": setting.basis if not setting.is_twin else "none",
                "mode": setting.mode if not setting.is_twin else "none",
                "rate": setting.rate,
                "setting": setting.label,
                "zeroed": zeroed[j],
                **{k: float(v[j]) for k, v in values.items()},
                **{k: float(v[0]) for k, v in updates.items()},
            }
        )
    arrays, meta = head.concat(tail.select([0])).to_arrays()
    return Result(pd.DataFrame(rows), arrays | {"ica_recovery": recovery}, meta)


def cell_tasks(settings: Settings, rho: float, seeds, cell: Sequence[Setting]) -> list[Task]:
    """One :func:`cell_task` per seed of the cell at ``rho``."""
    return [
        Task(
            "imbcl.studies.pruning:cell_task",
            {
                "spec": settings.spec(rho, seed),
                "t1": settings.t1,
                "settings": list(cell),
                "n_probe": settings.n_probe,
                "n_ica": settings.n_ica,
                "window": settings.window,
            },
            f"ch4 rho={rho:g} t1={settings.t1} seed={seed} ({len(cell)} settings)",
        )
        for seed in seeds
    ]


def plan(settings: Settings) -> list[Task]:
    """The main cell (every setting of :func:`map_settings`, ``n_seeds`` seeds), then each
    other cell of the phase diagram (the :data:`PAPER` setting, ``phase_seeds`` seeds)."""
    seeds = settings.seeds
    tasks = cell_tasks(settings, settings.rho, seeds, map_settings(settings))
    for rho in settings.other_rhos:
        tasks += cell_tasks(settings, rho, seeds[: settings.phase_seeds], [PAPER])
    return tasks


# ------------------------------------------------------------------------ reading results
def results_table(results) -> pd.DataFrame:
    """The tables of every task, stacked: one row per (rho, seed, branch)."""
    return pd.concat([r.table for r in results], ignore_index=True)


def twin_histories(results) -> dict[float, History]:
    """{rho: the twins' Histories of that cell, joined over seeds} (base and continuation)."""
    groups: dict[float, list[History]] = {}
    for r in results:
        hist = History.from_arrays(r.arrays, r.meta)
        groups.setdefault(hist.specs[0].data.rho, []).append(hist)
    return {rho: History.join(hists) for rho, hists in groups.items()}


def ica_recovery(results) -> pd.DataFrame:
    """Per seed of the cells that fit an estimated basis: the mean over majority and over
    minority features of :func:`basis_recovery` (1 = some column is exactly the feature)."""
    rows = []
    for r in results:
        rec = np.asarray(r.arrays["ica_recovery"])
        if np.isfinite(rec).all():
            maj, mnr = metrics.group_mean(rec, np.asarray(r.arrays["minority"]))
            rows.append(
                {"rho": r.table.rho[0], "seed": r.table.seed[0]}
                | {"majority": float(maj), "minority": float(mnr)}
            )
    return pd.DataFrame(rows, columns=["rho", "seed", "majority", "minority"])


# ------------------------------------------------------------------------------ the atlas
#: The recipe's values of the sizes a profile of this chapter may change.
RECIPE_SIZES = {
    "d": DataConfig().d,
    "features": DataConfig().k_maj,
    "m": ModelConfig().m,
    "batch": TrainConfig().batch,
    "steps": TrainConfig().steps,
    "ramp_steps": ModelConfig().ramp_steps,
}


def regimes(settings: Settings) -> list[dict]:
    """Where the chapter runs, for the atlas: label, rho and what differs from the recipe (the
    pruning, and any size of the recipe the settings change)."""
    changed = [
        f"{name} = {getattr(settings, name)}"
        for name, value in RECIPE_SIZES.items()
        if getattr(settings, name) != value
    ]
    deviation = ", ".join([f"pruned at step t1 = {settings.t1}, mask held", *changed])
    why = "the pruning is the experiment; the unpruned twin runs the recipe"
    return [
        {"label": "Ch4", "rho": rho, "deviation": deviation, "reason": why}
        for rho in (settings.rho, *settings.other_rhos)
    ]
