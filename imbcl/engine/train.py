"""Instrumented contrastive training of R independent replicas.

:class:`Replicas` trains R runs that share shapes (seeds and/or configurations) with SGD on
symmetric InfoNCE plus an L2 penalty, on fresh samples every step. Its parts have one job
each: the state (:mod:`imbcl.engine.state`), the batch stream (:mod:`imbcl.engine.batches`),
the step functions (:mod:`imbcl.engine.steps`, chosen by the ``step`` argument) and the
recorder that builds the :class:`History` (:mod:`imbcl.engine.recorder`). Replica r depends
only on its own RunSpec, so it trains to the same weights (up to float rounding) alone or inside
any group. Replicas are stacked into batched computations of ``chunk`` replicas: all of them on
a GPU, on the CPU as many as a measured cost rule allows (:func:`default_chunk`).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from imbcl.engine import data, model, prune
from imbcl.engine.config import ConfigError, PruneConfig, RunSpec
from imbcl.engine.history import History
from imbcl.engine.recorder import Recorder, record_steps
from imbcl.engine.runtime import default_device
from imbcl.engine.state import Hyper, PruneMask, ReplicaState
from imbcl.engine.steps import make_step, step_kind
from imbcl.engine.streams import Stream, generator


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss (raised by ``Replicas.run(..., divergence="raise")``)."""


#: What :meth:`Replicas.run` does when a replica's loss becomes non-finite.
DIVERGENCE = ("warn", "raise")


#: On the CPU, replicas are stacked while batch x m x (stacked replicas) stays within this:
#: ``benchmarks/bench_book.py --step`` measured stacking 8 replicas 36-50 % cheaper per
#: model-step than one at a time at batch x m up to 8,192, 4 best at 16,384, 2 at 32,768.
STACK_ELEMENTS = 65536


def default_chunk(spec: RunSpec, n_replicas: int, device: torch.device) -> int:
    """Replicas per stacked computation: all of them on a GPU; on the CPU as many as keep
    batch x m x chunk within :data:`STACK_ELEMENTS` (at least one)."""
    if device.type != "cpu":
        return n_replicas
    return max(1, min(n_replicas, STACK_ELEMENTS // (spec.train.batch * spec.model.m)))


def _progress_default() -> bool:
    return os.environ.get("IMBCL_PROGRESS", "1") not in {"0", "false", "False"}


class Replicas(ReplicaState):
    """R replicas trained together: :class:`ReplicaState` plus training, evaluation, pruning.

    ``chunk`` replicas are stacked into one computation (default: :func:`default_chunk`). ``step`` chooses the step implementation: "fused" (frozen attention, gradients
    by hand), "autograd", or "auto" (fused whenever the attention is frozen).
    """

    def __init__(
        self, specs: Sequence[RunSpec], device=None, chunk: int | None = None, step: str = "auto"
    ):
        device = torch.device(device) if device is not None else default_device()
        super().__init__(specs, device)
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ConfigError(f"chunk must be a positive integer or None (got {chunk!r})")
        self.chunk = chunk or default_chunk(self.specs[0], self.n_replicas, device)
        self.step_kind = step_kind(step, self)

    # --------------------------------------------------------------- training
    def run(
        self, steps: int | None = None, progress: bool | None = None, divergence: str = "warn"
    ) -> History:
        """Train every replica for ``steps`` SGD steps (default: the specs' ``train.steps``).

        Returns the History of this segment: a record before the first step when training
        starts from step 0, then every ``record_every`` steps and at the last step. A replica
        whose loss becomes non-finite triggers a RuntimeWarning, or a :class:`DivergenceError`
        naming its seed with ``divergence="raise"`` (what a sweep wants: a failed run, not a
        silent NaN).
        """
        if divergence not in DIVERGENCE:
            raise ConfigError(f"divergence must be one of {DIVERGENCE} (got {divergence!r})")
        if steps is None:
            counts = {s.train.steps for s in self.specs}
            if len(counts) > 1:
                raise ConfigError(f"specs disagree on train.steps ({sorted(counts)}): pass steps")
            steps = counts.pop()
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
            raise ConfigError(f"steps must be a non-negative integer (got {steps!r})")
        start, end = self.step, self.step + int(steps)
        rec = Recorder(
            record_steps(start, end, self.specs[0].train.record_every),
            self.n_replicas,
            self.m,
            self.k,
        )
        show = _progress_default() if progress is None else progress
        bar = tqdm(
            total=steps * -(-self.n_replicas // self.chunk),
            disable=not show,
            desc=f"training {self.n_replicas} replicas",
            leave=False,
        )
        for lo in range(0, self.n_replicas, self.chunk):
            self._run_chunk(slice(lo, lo + self.chunk), start, end, rec, bar, divergence)
        bar.close()
        self.step = end
        return rec.history(self)

    def _run_chunk(self, sl: slice, start: int, end: int, rec: Recorder, bar, divergence) -> None:
        idx = range(self.n_replicas)[sl]
        p = {k: v[sl].clone() for k, v in self.params.items()}
        slot, loss_sum, loss_n = 0, 0.0, 0
        if rec.steps and rec.steps[0] == start:
            rec.record(slot, self, p, sl, start, float("nan"))
            slot += 1
        step = make_step(self.step_kind, self, p, sl, idx, start, end)
        for t in range(start, end):
            loss_sum = loss_sum + step(t)
            loss_n += 1
            if slot < len(rec.steps) and rec.steps[slot] == t + 1:
                rec.record(slot, self, p, sl, t + 1, (loss_sum / loss_n).cpu().numpy())
                slot, loss_sum, loss_n = slot + 1, 0.0, 0
            bar.update(1)
        for k in self.params:
            self.params[k][sl] = p[k]
        bad = [idx[i] for i in rec.diverged(sl, start)]
        if bad:
            message = (
                f"training diverged (non-finite loss) for replicas {bad} (seeds "
                f"{[self.specs[r].seed for r in bad]}): lower train.lr or raise train.tau"
            )
            if divergence == "raise":
                raise DivergenceError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # ----------------------------------------------------------- evaluation
    def sample(self, n: int, stream: int = Stream.PROBE, probs=None, replicas=None):
        """Clean tokens (R', n, L, d) and codes (R', n, K) from a fixed per-replica stream.

        ``probs`` (K,) overrides the presence probabilities (e.g. equal for every feature so
        that a probe sees enough minority examples); ``replicas`` selects R' of the replicas
        (default all). The same call gives the same samples for a replica, whichever others
        are selected.
        """
        xs, zs = [], []
        for r in self.indices(replicas):
            g = generator(self.specs[r].seed, stream, self.device)
            x, z = data.sample_batch(self.specs[r].data, self.dictionaries[r], n, g, probs)
            xs.append(x)
            zs.append(z)
        return torch.stack(xs), torch.stack(zs)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, replicas=None) -> torch.Tensor:
        """f(X) (R', n, m) of tokens (R', n, L, d) at the current weights and bias of the
        selected ``replicas`` (default all)."""
        idx = self.indices(replicas)
        params = {k: v[idx] for k, v in self.params.items()}
        return model.encode(x.to(self.device), params, self.bias()[idx])

    # ---------------------------------------------------------------- branches
    def branches(self, k: int) -> Replicas:
        """These replicas, each repeated ``k`` times in a row: replica r becomes branches
        r k, ..., r k + k - 1, each starting from its parameters, step, mask and data stream.

        The branches of one replica see exactly the batches it would have seen: they share its
        stream, which is drawn once per step, and they are stacked together (``chunk`` is a
        multiple of ``k``). Treat branches differently with :meth:`prune` and ``replicas``.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer (got {k!r})")

        def repeat(seq):
            return [x for x in seq for _ in range(k)]

        other = copy.copy(self)
        other.specs = repeat(self.specs)
        other.dictionaries = repeat(self.dictionaries)
        other.features = self.features.repeat_interleave(k, 0)
        other.noise_dirs = self.noise_dirs.repeat_interleave(k, 0)
        other.params = {n: v.repeat_interleave(k, 0) for n, v in self.params.items()}
        other.data_gens = repeat(self.copy().data_gens)
        other.data_leader = [r - r % k for r in range(k * self.n_replicas)]
        other.hyper = Hyper.from_specs(other.specs, self.device)
        other.pruned = None if self.pruned is None else self.pruned.repeat(k)
        other.chunk = k * max(1, default_chunk(other.specs[0], len(other.specs), self.device) // k)
        return other

    # ---------------------------------------------------------------- pruning
    @torch.no_grad()
    def prune(
        self, cfg: PruneConfig, basis: torch.Tensor | None = None, replicas=None
    ) -> torch.Tensor:
        """Zero a fraction ``cfg.rate`` of the neuron-weight coefficients of each of the
        ``replicas`` (indices; default all), each ranked within its own replica.

        The basis is :func:`imbcl.engine.prune.pruning_basis` of ``cfg.basis``; ``basis``
        (R', d, d), one per selected replica, gives the columns b_k when it is "estimated".
        With ``keep_mask`` the mask is re-applied after every later step (other replicas keep
        what they hold); without it, the selected replicas hold no mask. Returns the mask
        (R', m, d).
        """
        if not isinstance(cfg, PruneConfig):
            raise ConfigError(f"cfg must be a PruneConfig (got {type(cfg).__name__})")
        idx = self.indices(replicas)
        dictionaries = [self.dictionaries[i] for i in idx]
        seeds = [self.specs[i].seed for i in idx]
        b = prune.pruning_basis(cfg.basis, dictionaries, seeds, basis, self.device)
        bt = bit = None
        if b is not None:
            bt, bit = b.transpose(1, 2), torch.linalg.inv(b).transpose(1, 2)
        coef = prune.to_coefficients(self.params["W"][idx], bit)
        if cfg.mode == "magnitude":
            mask = prune.magnitude_mask(coef, cfg.rate, cfg.scope)
        else:
            mask = torch.cat(
                [
                    prune.random_mask(
                        (1, *coef.shape[1:]),
                        cfg.rate,
                        cfg.scope,
                        generator(seed, Stream.PRUNE, self.device),
                    )
                    for seed in seeds
                ]
            )
        self.params["W"][idx] = prune.from_coefficients(coef * mask, bt)
        if cfg.keep_mask or self.pruned is not None:
            if self.pruned is None:
                self.pruned = PruneMask(torch.ones_like(self.params["W"]), None, None)
            if cfg.keep_mask:
                self.pruned.hold(idx, mask, bt, bit)
            else:
                self.pruned.hold(idx, torch.ones_like(mask), None, None)
            if bool((self.pruned.mask == 1).all()):
                self.pruned = None
        return mask


def train(
    specs: Sequence[RunSpec],
    steps: int | None = None,
    device=None,
    chunk=None,
    progress: bool | None = None,
) -> tuple[History, Replicas]:
    """Train ``specs`` as one group of replicas; returns the History and the trained Replicas."""
    reps = Replicas(specs, device=device, chunk=chunk)
    return reps.run(steps, progress=progress), reps
