"""Validated configuration dataclasses.

Every field is coerced to its declared type and range-checked at construction, so a bad value
(for example one passed by papermill as a string) fails at once with a message that names the
field, the allowed range and the value received, e.g. ``rho must be >= 1 (got 0.5)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

#: Masking granularities of the two views (see :func:`imbcl.engine.data.mask_views`).
MASKS = ("token", "sample")
#: Bases in which pruning ranks coefficients (see :func:`imbcl.engine.prune.pruning_basis`).
BASES = ("coordinate", "feature", "feature_random", "feature_noise", "estimated")


class ConfigError(ValueError):
    """A configuration value is outside its allowed range or of the wrong type."""


def validated_field(
    default: Any, *, lo=None, hi=None, lo_open=False, hi_open=False, choices=None, doc=""
):
    """A dataclass field carrying its validation rule in ``metadata``."""
    rule = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": choices}
    return field(default=default, metadata={"rule": rule, "doc": doc})


def coerce(name: str, value: Any, kind: type) -> Any:
    """Coerce ``value`` to ``kind`` (int, float, bool or str) or raise a ConfigError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
            return value.strip().lower() in {"true", "1"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{name} must be a boolean (got {value!r})")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string (got {value!r})")
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, not a boolean (got {value!r})")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number (got {value!r})") from None
    if not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number (got {value!r})")
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{name} must be finite (got {value!r})")
    if kind is int:
        if float(value) != int(value):
            raise ConfigError(f"{name} must be an integer (got {value!r})")
        return int(value)
    return float(value)


def check_range(name: str, value: Any, rule: dict) -> None:
    if rule["choices"] is not None and value not in rule["choices"]:
        allowed = ", ".join(repr(c) for c in rule["choices"])
        raise ConfigError(f"{name} must be one of {allowed} (got {value!r})")
    lo, hi = rule["lo"], rule["hi"]
    if lo is not None and (value <= lo if rule["lo_open"] else value < lo):
        raise ConfigError(f"{name} must be {'>' if rule['lo_open'] else '>='} {lo} (got {value!r})")
    if hi is not None and (value >= hi if rule["hi_open"] else value > hi):
        raise ConfigError(f"{name} must be {'<' if rule['hi_open'] else '<='} {hi} (got {value!r})")


class Validated:
    """Mixin: coerce and range-check every field in ``__post_init__``."""

    def __post_init__(self) -> None:
        kinds = {"int": int, "float": float, "bool": bool, "str": str}
        for f in dataclasses.fields(self):
            kind = kinds[f.type] if isinstance(f.type, str) else f.type
            value = coerce(f.name, getattr(self, f.name), kind)
            check_range(f.name, value, f.metadata["rule"])
            object.__setattr__(self, f.name, value)
        self._check_joint()

    def _check_joint(self) -> None:
        """Constraints that involve several fields; overridden where needed."""

    def replace(self, **changes):
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DataConfig(Validated):
    """The sparse-coding data model (see ``book/setting.md``)."""

    d: int = validated_field(64, lo=2, hi=4096, doc="token dimension")
    k_maj: int = validated_field(8, lo=0, doc="number of majority features")
    k_min: int = validated_field(8, lo=0, doc="number of minority features")
    rho: float = validated_field(10.0, lo=1, doc="imbalance ratio: minority probability is q / rho")
    q: float = validated_field(
        0.2, lo=0, hi=1, lo_open=True, doc="presence probability of a majority feature"
    )
    p_token: float = validated_field(
        0.75, lo=0, hi=1, lo_open=True, doc="probability that a token carries a present feature"
    )
    seq_len: int = validated_field(4, lo=1, hi=512, doc="tokens per sequence (L)")
    sigma: float = validated_field(
        1.0, lo=0, doc="isotropic noise scale: noise is N(0, sigma^2/d I)"
    )
    n_corr: int = validated_field(4, lo=0, doc="number of fixed correlated-noise directions")
    sigma_corr: float = validated_field(0.15, lo=0, doc="std of each correlated-noise amplitude")
    mask: str = validated_field(
        "token",
        choices=MASKS,
        doc="masking granularity: a coordinate mask per token, or one per sample for all tokens",
    )

    @property
    def k(self) -> int:
        return self.k_maj + self.k_min

    def _check_joint(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k_maj + k_min must be >= 1 (got {self.k_maj} + {self.k_min})")
        if self.k + self.n_corr > self.d:
            raise ConfigError(
                f"k_maj + k_min + n_corr must be <= d = {self.d} "
                f"(got {self.k_maj} + {self.k_min} + {self.n_corr})"
            )


@dataclass(frozen=True)
class ModelConfig(Validated):
    """The Transformer-MLP encoder: frozen or trained attention, m BReLU neurons."""

    m: int = validated_field(64, lo=1, hi=65536, doc="number of neurons")
    init_scale: float = validated_field(
        1e-3, lo=0, lo_open=True, doc="std of the initial neuron weights"
    )
    attn_scale: float = validated_field(
        0.1, lo=0, doc="W_Q = W_K = attn_scale * I at initialisation"
    )
    train_attention: bool = validated_field(False, doc="train W_Q, W_K, W_V (else frozen at init)")
    bias: str = validated_field(
        "ramp", choices=("ramp", "constant", "none"), doc="bias schedule kind"
    )
    kappa_max: float = validated_field(3.0, lo=0, doc="final bias multiplier kappa")
    ramp_steps: int = validated_field(
        500, lo=1, doc="steps over which kappa ramps from 0 to kappa_max"
    )


@dataclass(frozen=True)
class TrainConfig(Validated):
    """SGD on symmetric InfoNCE with an L2 penalty, on fresh samples every step."""

    steps: int = validated_field(1000, lo=0, doc="SGD steps")
    batch: int = validated_field(128, lo=2, doc="samples per step (in-batch negatives: batch - 1)")
    lr: float = validated_field(0.5, lo=0, lo_open=True, doc="learning rate")
    tau: float = validated_field(1.0, lo=0, lo_open=True, doc="InfoNCE temperature")
    weight_decay: float = validated_field(
        0.05, lo=0, doc="lambda in the penalty lambda/2 * ||theta||^2"
    )
    record_every: int = validated_field(10, lo=1, doc="steps between History records")


@dataclass(frozen=True)
class PruneConfig(Validated):
    """One-shot pruning of the neuron weights."""

    rate: float = validated_field(
        0.5, lo=0, hi=1, hi_open=True, doc="fraction of coefficients zeroed"
    )
    basis: str = validated_field("coordinate", choices=BASES, doc="basis of coefficients")
    scope: str = validated_field(
        "global", choices=("global", "neuron"), doc="rank within replica or row"
    )
    mode: str = validated_field("magnitude", choices=("magnitude", "random"), doc="which to zero")
    keep_mask: bool = validated_field(True, doc="hold the mask during continued training")


@dataclass(frozen=True)
class RunSpec:
    """One replica: a seed plus the three configs. Seeds must be non-negative integers."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"{name} must be a {kind.__name__} (got {getattr(self, name)!r})")
        seed = coerce("seed", self.seed, int)
        check_range(
            "seed",
            seed,
            {"lo": 0, "hi": 2**63 - 1, "lo_open": False, "hi_open": False, "choices": None},
        )
        object.__setattr__(self, "seed", seed)

    def shape_key(self) -> tuple:
        """Fields that must agree for replicas to be trained together in one call."""
        d, m, t = self.data, self.model, self.train
        return (
            d.d,
            d.k_maj,
            d.k_min,
            d.seq_len,
            d.n_corr,
            d.mask,
            m.m,
            m.train_attention,
            t.batch,
            t.record_every,
        )

    def to_dict(self) -> dict:
        return {
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(
            DataConfig(**d["data"]), ModelConfig(**d["model"]), TrainConfig(**d["train"]), d["seed"]
        )


SHAPE_FIELDS = (
    "d",
    "k_maj",
    "k_min",
    "seq_len",
    "n_corr",
    "mask",
    "m",
    "train_attention",
    "batch",
    "record_every",
)
