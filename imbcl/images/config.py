"""Chapter 5's settings: the long-tailed view of the data, the encoder and its training, the
methods compared, and the bounds between them.

Every value is checked at construction (:class:`imbcl.engine.config.Validated`); bounds that
need the methods are :func:`check_schedule`, bounds on the images per class are
:func:`imbcl.images.splits.check_class_sizes` (both run by :func:`imbcl.images.training.build`
and, before any data is loaded, by the chapter's :class:`imbcl.images.study.Settings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imbcl.engine.config import ConfigError, Validated, validated_field
from imbcl.engine.params import parse_grid
from imbcl.images.datasets import DATASETS, N_CLASSES

#: Parameters that pruning may target (their rows are what a mask zeroes).
PRUNABLE = ("E", "WQ", "WK", "WV", "W")


@dataclass(frozen=True)
class ImageDataConfig(Validated):
    """The long-tailed view of an image set (see :func:`imbcl.images.splits.make_split`)."""

    dataset: str = validated_field("digits", choices=DATASETS, doc="image set")
    rho: float = validated_field(10.0, lo=1, doc="imbalance ratio n_max / n_min of pre-training")
    n_max: int = validated_field(120, lo=1, doc="pre-training images of the most frequent class")
    n_probe: int = validated_field(100, lo=1, doc="labelled probe images per class (full probe)")
    n_test: int = validated_field(50, lo=1, doc="held-out test images per class")
    k_shot: int = validated_field(5, lo=1, doc="labelled images per class in a few-shot probe")
    n_draws: int = validated_field(5, lo=1, doc="few-shot draws averaged per replica")
    group: int = validated_field(3, lo=1, doc="classes in the head and in the tail")

    def _check_joint(self) -> None:
        if self.k_shot > self.n_probe:
            raise ConfigError(f"k_shot must be <= n_probe = {self.n_probe} (got {self.k_shot})")
        half = N_CLASSES[self.dataset] // 2
        if self.group > half:
            raise ConfigError(
                f"group must be <= {half}, half the {N_CLASSES[self.dataset]} classes of "
                f"{self.dataset}, so that the head and the tail do not overlap (got {self.group})"
            )
        if self.rho > self.n_max:
            raise ConfigError(
                f"rho must be <= n_max = {self.n_max}, so that the rarest class keeps "
                f"n_max / rho >= 1 pre-training image (got {self.rho:g})"
            )


@dataclass(frozen=True)
class SimCLRConfig(Validated):
    """Encoder sizes and optimisation (AdamW on symmetric InfoNCE)."""

    d: int = validated_field(32, lo=1, hi=4096, doc="token embedding width")
    m: int = validated_field(64, lo=1, hi=65536, doc="ReLU neurons = representation size")
    proj: int = validated_field(32, lo=1, hi=4096, doc="projection head output size")
    steps: int = validated_field(600, lo=1, doc="training steps for every method")
    batch: int = validated_field(256, lo=2, doc="images per step (negatives: batch - 1)")
    lr: float = validated_field(3e-3, lo=0, lo_open=True, doc="AdamW learning rate")
    tau: float = validated_field(0.2, lo=0, lo_open=True, doc="InfoNCE temperature")
    weight_decay: float = validated_field(1e-4, lo=0, doc="AdamW decoupled weight decay")
    warmup: float = validated_field(
        0.3, lo=0, hi=1, hi_open=True, doc="fraction of steps before pruning"
    )
    sdclr_every: int = validated_field(50, lo=1, doc="steps between SDCLR branch-mask updates")
    prune: str = validated_field("W", doc="comma-separated parameters that pruning targets")
    record_every: int = validated_field(10, lo=1, doc="steps between loss records")

    @property
    def prune_step(self) -> int:
        """The step (0-based) at which the pruning methods zero their weights."""
        return int(round(self.warmup * self.steps))

    @property
    def prune_params(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.prune.split(","))

    def _check_joint(self) -> None:
        names = self.prune_params
        if any(p not in PRUNABLE for p in names) or not names:
            raise ConfigError(
                f"prune must name parameters among {', '.join(PRUNABLE)} (got {self.prune!r})"
            )
        repeated = sorted({p for p in names if names.count(p) > 1})
        if repeated:
            raise ConfigError(
                f"prune names {', '.join(repeated)} more than once (got {self.prune!r})"
            )


@dataclass(frozen=True)
class Method:
    """One training method: ``kind`` in simclr, magnitude, random, sdclr, balanced."""

    kind: str
    rate: float = 0.0

    @property
    def name(self) -> str:
        label = {"magnitude": "prune", "random": "random", "sdclr": "SDCLR"}
        if self.kind in label:
            return f"{label[self.kind]} {self.rate:g}"
        return {"simclr": "SimCLR", "balanced": "balanced"}[self.kind]


def make_methods(rates: str, random_rates: str, sdclr_rates: str) -> list[Method]:
    """SimCLR, magnitude pruning at ``rates``, random pruning at ``random_rates``, SDCLR at
    ``sdclr_rates`` (comma-separated strings of rates in [0, 1), each possibly empty), then the
    balanced reference."""
    grids = (
        ("magnitude", rates, "rates"),
        ("random", random_rates, "random_rates"),
        ("sdclr", sdclr_rates, "sdclr_rates"),
    )
    methods = [
        Method(kind, r)
        for kind, text, name in grids
        for r in parse_grid(text, name, lo=0, hi=1, hi_open=True, allow_empty=True)
    ]
    return [Method("simclr"), *methods, Method("balanced")]


def check_schedule(cfg: SimCLRConfig, methods: Sequence[Method]) -> None:
    """ConfigError unless the training schedule lets every method in ``methods`` act.

    A pruning method (magnitude or random) prunes at step ``round(warmup * steps)``, which
    must come before the last step, else it trains as plain SimCLR; SDCLR recomputes its
    branch mask at steps 0, sdclr_every, 2 sdclr_every, ..., so ``sdclr_every < steps`` for
    at least one recomputation from trained weights.
    """
    kinds = {m.kind for m in methods}
    if kinds & {"magnitude", "random"} and cfg.prune_step >= cfg.steps:
        raise ConfigError(
            f"warmup must put the prune step inside training: round(warmup * steps) = "
            f"{cfg.prune_step} must be < steps = {cfg.steps} (got warmup={cfg.warmup:g})"
        )
    if "sdclr" in kinds and cfg.sdclr_every >= cfg.steps:
        raise ConfigError(
            f"sdclr_every must be < steps = {cfg.steps}, so that SDCLR's branch mask is "
            f"recomputed from trained weights at least once (got {cfg.sdclr_every})"
        )
