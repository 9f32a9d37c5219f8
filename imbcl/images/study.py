"""Chapter 5's study: its settings, one task per (rho, seed), and its measurements.

A task (:func:`seed_task`) trains every method of the chapter on one seed's long-tailed split
and probes each, plus the untrained encoder of that seed; its table has one row per (rho,
seed, method, probe) (:func:`imbcl.images.analysis.evaluate`). A seed's numbers depend only on
the settings and that seed, never on how many seeds a run asks for: ``n_seeds = 50`` extends
``n_seeds = 12`` and leaves the first 12 seeds' numbers as they were; each probe is solved
on its own (:func:`imbcl.engine.probe.fit_logistic`).

The registered claims are per-seed differences between two methods of the same seed at
rho = :data:`CLAIM_RHO` (:data:`imbcl.report.ch5.CLAIMS`); :func:`imbcl.report.ch5.claim_values`
computes them from :func:`results_table`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from imbcl.engine.config import ConfigError
from imbcl.engine.config import validated_field as field
from imbcl.engine.runtime import default_device
from imbcl.engine.settings import StudySettings
from imbcl.images.analysis import run_experiment
from imbcl.images.config import (
    ImageDataConfig,
    Method,
    SimCLRConfig,
    check_schedule,
    make_methods,
)
from imbcl.images.datasets import DATASETS, class_counts, load_dataset
from imbcl.images.encoder import step_flops, token_shape
from imbcl.images.splits import check_class_sizes
from imbcl.sweep import Result, Task

#: The imbalance ratio of every registered claim of the chapter.
CLAIM_RHO = 50.0
#: The rates the claims need, per grid of the settings.
CLAIM_RATES = {"rates": (0.5, 0.9), "sdclr_rates": (0.5,)}
#: Overrides of the full profile in the spirit of the usual CIFAR-10-LT benchmark (a GPU job;
#: the book documents it and estimates its cost, see :func:`training_flops`).
CIFAR_LT = {
    "dataset": "cifar10",
    "download": True,
    "rho_grid": "50,100",
    "n_max": 5000,
    "n_probe": 500,
    "n_test": 1000,
    "n_seeds": 10,
    "steps": 10000,
    "batch": 512,
    "d": 128,
    "m": 512,
    "proj": 128,
    "lr": 1e-3,
    "sdclr_every": 25,
}


@dataclass(frozen=True)
class Settings(StudySettings):
    """Chapter 5: SimCLR, one-shot magnitude pruning, a random-mask control and an SDCLR-style
    pruned branch, pre-trained on long-tailed digits and read by linear probes."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 12, "steps": 400},
        "small": {"n_seeds": 6, "steps": 200},
    }

    dataset: str = field("digits", choices=DATASETS, doc="image set (cifar10 needs the data)")
    data_root: str = field("", doc="folder holding cifar-10-batches-py ('': IMBCL_DATA)")
    download: bool = field(False, doc="fetch CIFAR-10 (~163 MB) into data_root if missing")
    rho_grid: str = field("50", doc="imbalance ratios n_max / n_min, comma-separated")
    n_max: int = field(120, lo=1, doc="pre-training images of the most frequent class")
    n_probe: int = field(100, lo=1, doc="labelled images per class (full probe)")
    n_test: int = field(50, lo=1, doc="held-out test images per class")
    k_shot: int = field(5, lo=1, doc="labelled images per class (few-shot probe)")
    n_draws: int = field(10, lo=1, doc="few-shot draws averaged per seed")
    group: int = field(3, lo=1, doc="classes in the head and in the tail")
    steps: int = field(400, lo=1, doc="training steps, the same for every method")
    batch: int = field(128, lo=2, doc="images per step (negatives: batch - 1)")
    d: int = field(16, lo=1, hi=4096, doc="token embedding width")
    m: int = field(32, lo=1, hi=65536, doc="ReLU neurons = representation size")
    proj: int = field(32, lo=1, hi=4096, doc="projection head output size")
    lr: float = field(3e-3, lo=0, lo_open=True, doc="AdamW learning rate")
    tau: float = field(0.2, lo=0, lo_open=True, doc="InfoNCE temperature")
    weight_decay: float = field(1e-4, lo=0, doc="AdamW decoupled weight decay")
    warmup: float = field(0.3, lo=0, hi=1, hi_open=True, doc="fraction of steps before pruning")
    sdclr_every: int = field(50, lo=1, doc="steps between SDCLR branch-mask updates")
    prune: str = field("W", doc="pruned parameters, comma-separated among E, WQ, WK, WV, W")
    rates: str = field("0.5,0.9", doc="one-shot magnitude pruning rates")
    random_rates: str = field("0.5", doc="random-mask pruning rates (control)")
    sdclr_rates: str = field("0.5", doc="SDCLR branch pruning rates")

    @property
    def rhos(self) -> tuple[float, ...]:
        """The imbalance ratios of ``rho_grid``, in the order given."""
        return self.grid("rho_grid", lo=1)

    def data_config(self, rho: float) -> ImageDataConfig:
        """The long-tailed view of the data at imbalance ratio ``rho``."""
        return ImageDataConfig(
            dataset=self.dataset,
            rho=rho,
            n_max=self.n_max,
            n_probe=self.n_probe,
            n_test=self.n_test,
            k_shot=self.k_shot,
            n_draws=self.n_draws,
            group=self.group,
        )

    @property
    def simclr(self) -> SimCLRConfig:
        """The encoder and its optimisation, shared by every method."""
        return SimCLRConfig(
            d=self.d,
            m=self.m,
            proj=self.proj,
            steps=self.steps,
            batch=self.batch,
            lr=self.lr,
            tau=self.tau,
            weight_decay=self.weight_decay,
            warmup=self.warmup,
            sdclr_every=self.sdclr_every,
            prune=self.prune,
        )

    @property
    def methods(self) -> list[Method]:
        """SimCLR, prune at ``rates``, random at ``random_rates``, SDCLR at ``sdclr_rates``,
        balanced (see :func:`imbcl.images.config.make_methods`)."""
        return make_methods(self.rates, self.random_rates, self.sdclr_rates)

    @property
    def method_names(self) -> list[str]:
        """Names of the trained methods, then 'untrained': the order of tables and figures."""
        return [m.name for m in self.methods] + ["untrained"]

    def _check_joint(self) -> None:
        rhos = self.rhos
        if max(rhos) > self.n_max:
            raise ConfigError(
                f"rho_grid values must be <= n_max = {self.n_max}, so that the rarest class "
                f"keeps n_max / rho >= 1 pre-training image (got {self.rho_grid!r})"
            )
        for rho in rhos:
            self.data_config(rho)
        check_schedule(self.simclr, self.methods)
        check_class_sizes(
            self.dataset, *class_counts(self.dataset), self.n_max, self.n_probe, self.n_test
        )
        if CLAIM_RHO not in rhos:
            raise ConfigError(
                f"rho_grid must include {CLAIM_RHO:g}, the imbalance ratio of the chapter's "
                f"registered claims (got {self.rho_grid!r})"
            )
        for name, needed in CLAIM_RATES.items():
            have = self.grid(name, lo=0, hi=1, hi_open=True, allow_empty=True)
            missing = [r for r in needed if r not in have]
            if missing:
                raise ConfigError(
                    f"{name} must include {', '.join(f'{r:g}' for r in needed)}, the rates of "
                    f"the chapter's registered claims (got {getattr(self, name)!r})"
                )


def training_flops(settings: Settings) -> float:
    """Floating-point operations of the matrix products of all training in ``settings``: one
    step of one replica (:func:`imbcl.images.encoder.step_flops`) times the steps, methods,
    seeds and imbalance ratios. Probes, augmentations and element-wise work are left out."""
    per_step = step_flops(settings.simclr, *token_shape(settings.dataset))
    runs = len(settings.methods) * settings.n_seeds * len(settings.rhos)
    return per_step * settings.steps * runs


def load_sets(settings: Settings):
    """(pool, test or None) of ``settings.dataset`` (downloading CIFAR-10 first if
    ``settings.download`` and it is missing); FileNotFoundError saying how to get it."""
    return load_dataset(settings.dataset, settings.data_root or None, settings.download)


def seed_task(
    data: ImageDataConfig,
    cfg: SimCLRConfig,
    methods: list[Method],
    seed: int,
    data_root: str = "",
) -> Result:
    """Train ``methods`` on seed ``seed``'s split of ``data`` and probe them and the untrained
    encoder (:func:`imbcl.images.analysis.run_experiment` on one seed, on the default device:
    env ``IMBCL_DEVICE``, else CUDA when available, else the CPU).

    table: one row per (method, probe), the untrained encoder first, with rho, seed and the
    overall, head and tail accuracy and the head - tail gap (percent). arrays: ``loss_steps``
    (T,) the recorded steps and ``losses`` (T, M) the InfoNCE loss of each method (nats).
    meta: the method names in the order of ``losses``' columns, and ``cpu_seconds`` of this
    task (process time where it was computed).
    """
    start = time.process_time()
    sets = load_dataset(data.dataset, data_root or None)
    rows, exp = run_experiment(data, cfg, methods, [seed], sets, default_device())
    arrays = {
        "loss_steps": np.asarray(exp.loss_steps, dtype=np.int64),
        "losses": np.stack(exp.losses).astype(np.float64),
    }
    meta = {
        "methods": [m.name for m in methods],
        "cpu_seconds": time.process_time() - start,
    }
    return Result(rows, arrays, meta)


def plan(settings: Settings) -> list[Task]:
    """One task per (rho, seed): :func:`seed_task` with every method of ``settings``."""
    cfg, methods = settings.simclr, settings.methods
    return [
        Task(
            "imbcl.images.study:seed_task",
            {
                "data": settings.data_config(rho),
                "cfg": cfg,
                "methods": methods,
                "seed": seed,
                "data_root": "" if settings.dataset == "digits" else settings.data_root,
            },
            f"ch5 rho={rho:g} seed={seed}",
        )
        for rho in settings.rhos
        for seed in settings.seeds
    ]


def results_table(results) -> pd.DataFrame:
    """The tables of the results of :func:`plan`, stacked: one row per (rho, seed, method,
    probe), accuracies and gap in percent."""
    return pd.concat([r.table for r in results], ignore_index=True)


def loss_curves(settings: Settings, results) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{rho: (steps (T,), losses (S, T, M))}: the InfoNCE loss (nats) of every seed and
    method (in the order of ``settings.methods``) at the recorded steps."""
    curves, per_rho = {}, len(settings.seeds)
    for i, rho in enumerate(settings.rhos):
        part = results[i * per_rho : (i + 1) * per_rho]
        steps = np.asarray(part[0].arrays["loss_steps"])
        curves[rho] = (steps, np.stack([np.asarray(r.arrays["losses"]) for r in part]))
    return curves


def cpu_seconds(results) -> float:
    """Total process time of the tasks of ``results`` where they were computed (s)."""
    return float(sum(r.meta["cpu_seconds"] for r in results))


def loss_contrast(
    steps: np.ndarray,
    losses: np.ndarray,
    methods: list[str],
    method: str,
    reference: str,
    prune_step: int,
    final_records: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, ``method``'s InfoNCE loss against ``reference``'s (nats), from one rho of
    :func:`loss_curves` (steps (T,), losses (S, T, M), columns named by ``methods``).

    Returns (jump (S,), final (S,)): jump is the change of the loss between the last record
    before ``prune_step`` and the first at or after it, minus the reference's change over the
    same records (NaN when no record precedes the step); final is the mean over the last
    ``final_records`` records of the method's loss minus the reference's.
    """
    diff = losses[:, :, methods.index(method)] - losses[:, :, methods.index(reference)]
    before, after = np.flatnonzero(steps < prune_step), np.flatnonzero(steps >= prune_step)
    jump = np.full(len(diff), np.nan)
    if len(before) and len(after):
        jump = diff[:, after[0]] - diff[:, before[-1]]
    return jump, diff[:, -final_records:].mean(axis=1)
