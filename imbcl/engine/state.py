"""The state of R replicas trained together: parameters, data streams, step, pruning mask.

Replica r depends only on its own RunSpec: its dictionary, initial weights and data stream
come from its seed (:mod:`imbcl.engine.streams`), so it holds the same state alone or inside
any group. Parameters are (R, ...) tensors on ``device``: ``W`` (R, m, d) neuron weights and
the attention matrices ``WQ``, ``WK``, ``WV`` (R, d, d).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from imbcl.engine import data, model, prune
from imbcl.engine.config import SHAPE_FIELDS, ConfigError, RunSpec
from imbcl.engine.streams import Stream, generator


def check_specs(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """The specs as a list, or a ConfigError naming the first field that cannot be batched."""
    specs = list(specs)
    if not specs:
        raise ConfigError("specs must hold at least one RunSpec (got none)")
    for i, s in enumerate(specs):
        if not isinstance(s, RunSpec):
            raise ConfigError(f"specs[{i}] must be a RunSpec (got {type(s).__name__})")
    ref = specs[0].shape_key()
    for i, s in enumerate(specs[1:], start=1):
        for name, a, b in zip(SHAPE_FIELDS, ref, s.shape_key(), strict=True):
            if a != b:
                raise ConfigError(
                    f"specs[{i}] has {name} = {b!r} but specs[0] has {a!r}: replicas trained "
                    f"in one call must share {', '.join(SHAPE_FIELDS)}"
                )
    return specs


@dataclass
class Hyper:
    """Per-replica hyper-parameters as (R,) float32 tensors (replicas may differ in each)."""

    lr: torch.Tensor
    tau: torch.Tensor
    weight_decay: torch.Tensor
    sigma: torch.Tensor  # noise scale of the data, which sets the bias unit
    kappa_max: torch.Tensor  # 0 for bias "none"
    ramp: torch.Tensor  # ramp length in steps, 0 for a constant bias

    @classmethod
    def from_specs(cls, specs: Sequence[RunSpec], device: torch.device) -> Hyper:
        def col(get):
            return torch.tensor([get(s) for s in specs], dtype=torch.float32, device=device)

        return cls(
            lr=col(lambda s: s.train.lr),
            tau=col(lambda s: s.train.tau),
            weight_decay=col(lambda s: s.train.weight_decay),
            sigma=col(lambda s: s.data.sigma),
            kappa_max=col(lambda s: 0.0 if s.model.bias == "none" else s.model.kappa_max),
            ramp=col(lambda s: 0.0 if s.model.bias != "ramp" else s.model.ramp_steps),
        )

    def kappa(self, step: int) -> torch.Tensor:
        """(R,) bias multiplier at ``step``: kappa_max, ramped linearly over ``ramp`` steps."""
        return self.kappas(step, step + 1)[0]

    def kappas(self, start: int, end: int) -> torch.Tensor:
        """(end - start, R) the bias multipliers of the steps start, ..., end - 1."""
        t = torch.arange(start, end, dtype=torch.float32, device=self.ramp.device)[:, None]
        frac = torch.where(self.ramp > 0, (t / self.ramp.clamp(min=1)).clamp(max=1.0), 1.0)
        return self.kappa_max * frac


@dataclass
class PruneMask:
    """A coefficient mask held on the neuron weights: ``mask`` (R, m, d), 1 = kept, in the
    basis whose transpose is ``basis_t`` (R, d, d) and inverse transpose ``basis_inv_t``
    (None for the coordinate basis)."""

    mask: torch.Tensor
    basis_t: torch.Tensor | None
    basis_inv_t: torch.Tensor | None

    def project(self, w: torch.Tensor, sl: slice) -> torch.Tensor:
        """``w`` (Rc, m, d) of the replicas ``sl`` with their masked coefficients zeroed."""
        bt = None if self.basis_t is None else self.basis_t[sl]
        bit = None if self.basis_inv_t is None else self.basis_inv_t[sl]
        return prune.from_coefficients(prune.to_coefficients(w, bit) * self.mask[sl], bt)

    def clone(self) -> PruneMask:
        return PruneMask(*(None if v is None else v.clone() for v in vars(self).values()))

    def repeat(self, k: int) -> PruneMask:
        """Every replica's rows repeated k times in a row (for branches)."""
        return PruneMask(
            *(None if v is None else v.repeat_interleave(k, 0) for v in vars(self).values())
        )

    def hold(self, idx: list[int], mask: torch.Tensor, basis_t, basis_inv_t) -> None:
        """Hold ``mask`` (len(idx), m, d) in the basis ``basis_t`` / ``basis_inv_t``
        (len(idx), d, d), or coordinates if None, on the replicas ``idx``; the other replicas
        keep what they hold. A replica that holds nothing has mask 1 in coordinates."""
        if basis_t is not None and self.basis_t is None:
            eye = torch.eye(mask.shape[-1], dtype=mask.dtype, device=mask.device)
            self.basis_t = eye.expand(len(self.mask), -1, -1).clone()
            self.basis_inv_t = self.basis_t.clone()
        if self.basis_t is not None:
            eye = torch.eye(mask.shape[-1], dtype=mask.dtype, device=mask.device)
            self.basis_t[idx] = eye if basis_t is None else basis_t
            self.basis_inv_t[idx] = eye if basis_inv_t is None else basis_inv_t
        self.mask[idx] = mask


def init_params(specs: Sequence[RunSpec], device: torch.device) -> dict[str, torch.Tensor]:
    """Initial parameters: W ~ N(0, init_scale^2) from each seed's INIT stream,
    W_Q = W_K = attn_scale * I, W_V = I."""
    d = specs[0].data.d
    ws = []
    for s in specs:
        g = generator(s.seed, Stream.INIT)
        ws.append(torch.randn(s.model.m, d, generator=g) * s.model.init_scale)
    eye = torch.eye(d)
    attn = torch.stack([eye * s.model.attn_scale for s in specs])
    return {
        "W": torch.stack(ws).to(device),
        "WQ": attn.to(device),
        "WK": attn.clone().to(device),
        "WV": eye.expand(len(specs), -1, -1).clone().to(device),
    }


class ReplicaState:
    """R replicas' parameters, data generators, step count and pruning mask.

    ``dictionaries`` holds each replica's :class:`imbcl.engine.data.Dictionary`, ``features``
    (R, d, K) their feature columns and ``noise_dirs`` (R, d, n_corr) their correlated-noise
    directions; ``minority`` (K,) marks minority features.
    ``step`` counts SGD steps taken so far; ``pruned`` is the mask held on W, if any.
    ``data_leader[r]`` is the replica whose draws replica r's batches are (r itself, or, for
    branches of one run, the first branch: see :meth:`imbcl.engine.train.Replicas.branches`).
    """

    def __init__(self, specs: Sequence[RunSpec], device: torch.device):
        self.specs = check_specs(specs)
        self.device = device
        s0 = self.specs[0]
        self.d, self.m, self.k = s0.data.d, s0.model.m, s0.data.k
        self.minority = data.minority_mask(s0.data)
        self.dictionaries = [data.make_dictionary(s.data, s.seed, device) for s in self.specs]
        self.features = torch.stack([dc.features for dc in self.dictionaries])  # (R, d, K)
        self.noise_dirs = torch.stack([dc.noise_dirs for dc in self.dictionaries])  # (R, d, c)
        self.params = init_params(self.specs, device)
        self.data_gens = [generator(s.seed, Stream.DATA, device) for s in self.specs]
        self.data_leader = list(range(len(self.specs)))
        self.hyper = Hyper.from_specs(self.specs, device)
        self.step = 0
        self.pruned: PruneMask | None = None

    @property
    def n_replicas(self) -> int:
        return len(self.specs)

    @property
    def trainable(self) -> tuple[str, ...]:
        return ("W", "WQ", "WK", "WV") if self.specs[0].model.train_attention else ("W",)

    @property
    def mask(self) -> torch.Tensor | None:
        """(R, m, d) the held pruning mask (1 = kept), or None."""
        return None if self.pruned is None else self.pruned.mask

    def kappa(self, step: int | None = None) -> torch.Tensor:
        """(R,) bias multiplier at ``step`` (default: the current step)."""
        return self.hyper.kappa(self.step if step is None else step)

    def bias(self, sl: slice = slice(None)) -> torch.Tensor:
        """(R, m) current BReLU biases of the replicas ``sl``."""
        p, h = self.params, self.hyper
        return model.bias(self.kappa()[sl], p["W"][sl], p["WV"][sl], h.sigma[sl], self.d)

    def indices(self, replicas=None) -> list[int]:
        """``replicas`` (indices, or None for all) as a checked list of replica indices."""
        if replicas is None:
            return list(range(self.n_replicas))
        idx = [int(i) for i in np.atleast_1d(np.asarray(replicas))]
        if not idx or min(idx) < 0 or max(idx) >= self.n_replicas:
            raise ConfigError(
                f"replicas must be non-empty indices in [0, {self.n_replicas - 1}] "
                f"(got {list(np.atleast_1d(replicas))})"
            )
        return idx

    def copy(self):
        """An independent copy: parameters, data streams, step and mask (for paired runs)."""
        other = copy.copy(self)
        other.params = {k: v.clone() for k, v in self.params.items()}
        clones: dict[int, torch.Generator] = {}  # branches that share a stream keep sharing
        for g in self.data_gens:
            if id(g) not in clones:
                clones[id(g)] = torch.Generator(device=g.device)
                clones[id(g)].set_state(g.get_state())
        other.data_gens = [clones[id(g)] for g in self.data_gens]
        other.pruned = None if self.pruned is None else self.pruned.clone()
        return other
