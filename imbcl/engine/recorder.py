"""The recorder: what a training segment writes into its :class:`History`."""

from __future__ import annotations

import numpy as np
import torch

from imbcl.engine import model
from imbcl.engine.history import History
from imbcl.engine.state import ReplicaState


def record_steps(start: int, end: int, every: int) -> list[int]:
    """Steps recorded by a segment from ``start`` to ``end``: ``start`` itself when it is 0,
    then every multiple of ``every`` after ``start``, and ``end``."""
    steps = [t for t in range(start + 1, end + 1) if t % every == 0 or t == end]
    return [0, *steps] if start == 0 else steps


class Recorder:
    """Alignments, noise norms, biases and losses of R replicas at the steps ``steps``.

    Arrays (T = len(steps)): ``align`` (T, R, m, K), ``noise`` (T, R, m), ``bias`` (T, R, m),
    ``loss`` (T, R), NaN until written (and at step 0, before any loss).
    """

    def __init__(self, steps: list[int], n_replicas: int, m: int, k: int):
        self.steps = steps
        shape = (len(steps), n_replicas)
        self.align = np.zeros((*shape, m, k), np.float32)
        self.noise = np.zeros((*shape, m), np.float32)
        self.bias = np.zeros((*shape, m), np.float32)
        self.loss = np.full(shape, np.nan, np.float32)

    @torch.no_grad()
    def record(self, slot: int, state: ReplicaState, p: dict, sl: slice, t: int, loss) -> None:
        """Write record ``slot`` of the replicas ``sl`` from their parameters ``p`` at step ``t``."""
        v = model.effective_weights(p["W"], p["WV"])
        a = v @ state.features[sl]  # (Rc, m, K)
        resid = v - a @ state.features[sl].transpose(1, 2)
        h = state.hyper
        b = model.bias(h.kappa(t)[sl], p["W"], p["WV"], h.sigma[sl], state.d)
        self.align[slot, sl] = a.cpu().numpy()
        self.noise[slot, sl] = resid.norm(dim=-1).cpu().numpy()
        self.bias[slot, sl] = b.cpu().numpy()
        self.loss[slot, sl] = loss

    def diverged(self, sl: slice, start: int) -> np.ndarray:
        """Indices (within ``sl``) of replicas with a non-finite loss after step ``start``."""
        first = 1 if self.steps and self.steps[0] == start else 0
        return np.flatnonzero(~np.isfinite(self.loss[first:, sl]).all(axis=0))

    def history(self, state: ReplicaState) -> History:
        return History(
            np.array(self.steps),
            self.align,
            self.noise,
            self.bias,
            self.loss,
            state.minority.copy(),
            list(state.specs),
        )
