"""One SGD step of a chunk of replicas, in two implementations of the same math.

* :class:`FusedStep` (frozen attention): no autograd; the attention is regrouped
  (:func:`imbcl.engine.model.token_mix`) and the W-gradient of the symmetric stop-gradient
  InfoNCE is written out (:func:`imbcl.engine.loss.info_nce_grads`,
  :func:`imbcl.engine.model.neuron_weight_grad`), with scratch buffers reused across steps.
* :class:`AutogradStep`: the encoder as written in the setting, differentiated by autograd;
  needed when the attention trains.

Both update the chunk's parameters ``p`` in place (with the pruning mask re-applied) and
return the InfoNCE loss (Rc,) of the step. They agree to float rounding, which the training
dynamics can amplify over many steps, as any change of summation order does.
"""

from __future__ import annotations

import torch

from imbcl.engine import model
from imbcl.engine.batches import empty_draws, joined_views
from imbcl.engine.config import ConfigError
from imbcl.engine.loss import info_nce_grads, l2_penalty, symmetric_info_nce
from imbcl.engine.state import ReplicaState

#: Step implementations a trainer can be asked for; "auto" picks fused when it applies.
STEPS = ("auto", "fused", "autograd")


def step_kind(kind: str, state: ReplicaState) -> str:
    """``kind`` resolved to "fused" or "autograd" for ``state``, or a ConfigError."""
    if kind not in STEPS:
        raise ConfigError(f"step must be one of {', '.join(map(repr, STEPS))} (got {kind!r})")
    frozen = len(state.trainable) == 1
    if kind == "fused" and not frozen:
        raise ConfigError("step 'fused' needs frozen attention (model.train_attention = False)")
    return "fused" if kind == "auto" and frozen else ("autograd" if kind == "auto" else kind)


class FusedStep:
    """SGD step of the replicas ``sl`` (indices ``idx``) with frozen attention, by hand.

    ``kappas`` (T, Rc) are the chunk's bias multipliers of the steps ``start`` .. ``start + T
    - 1``. With W_V the identity (the book's frozen attention) the effective weights are W
    itself and the products by W_V are skipped (exactly: the same numbers).
    """

    def __init__(self, state, p: dict, sl: slice, idx: range, start: int, kappas: torch.Tensor):
        self.state, self.p, self.sl, self.idx = state, p, sl, idx
        self.start, self.kappas = start, kappas
        self.form = model.attention_form(p["WQ"], p["WK"])
        self.c, self.ws = model.scalar_form(self.form), model.Workspace()
        eye = torch.eye(state.d, dtype=p["WV"].dtype, device=p["WV"].device)
        self.identity_v = bool(torch.equal(p["WV"], eye.expand_as(p["WV"])))
        self.draws = empty_draws(state, idx)

    @torch.no_grad()
    def __call__(self, t: int) -> torch.Tensor:
        state, p, sl, h = self.state, self.p, self.sl, self.state.hyper
        x = joined_views(state, self.idx, self.draws, self.ws)
        n = x.shape[1] // 2
        hx = model.token_mix(x, self.form, self.c, self.ws)  # (Rc, 2n, L, d)
        w = p["W"]
        v = w if self.identity_v else model.effective_weights(w, p["WV"])
        b = model.bias_from_effective(self.kappas[t - self.start], v, h.sigma[sl], state.d)
        f, active = model.neurons_with_mask(hx, v, b, self.ws)
        nce, df1, df2 = info_nce_grads(f[:, :n], f[:, n:], h.tau[sl])
        grad = model.neuron_weight_grad(hx, active, torch.cat([df1, df2], dim=1))
        if not self.identity_v:
            grad = grad @ p["WV"].transpose(1, 2)
        grad.add_(w * h.weight_decay[sl, None, None])
        w.sub_(h.lr[sl, None, None] * grad)
        if state.pruned is not None:
            p["W"] = state.pruned.project(w, sl)
        return nce


class AutogradStep:
    """SGD step of the replicas ``sl`` (indices ``idx``) through autograd."""

    def __init__(self, state, p: dict, sl: slice, idx: range, start: int, kappas: torch.Tensor):
        self.state, self.p, self.sl, self.idx = state, p, sl, idx
        self.start, self.kappas = start, kappas
        self.draws = empty_draws(state, idx)

    def __call__(self, t: int) -> torch.Tensor:
        state, p, sl, h = self.state, self.p, self.sl, self.state.hyper
        x = joined_views(state, self.idx, self.draws)
        n = x.shape[1] // 2
        names = state.trainable
        for name in names:
            p[name].requires_grad_(True)
        b = model.bias(self.kappas[t - self.start], p["W"], p["WV"], h.sigma[sl], state.d)
        with torch.set_grad_enabled(len(names) > 1):
            h1 = model.attention(x[:, :n], p["WQ"], p["WK"], p["WV"])
            h2 = model.attention(x[:, n:], p["WQ"], p["WK"], p["WV"])
        f1, f2 = model.neurons(h1, p["W"], b), model.neurons(h2, p["W"], b)
        nce = symmetric_info_nce(f1, f2, h.tau[sl])
        objective = nce + l2_penalty({name: p[name] for name in names}, h.weight_decay[sl])
        grads = torch.autograd.grad(objective.sum(), [p[name] for name in names])
        with torch.no_grad():
            lr = h.lr[sl, None, None]
            for name, g in zip(names, grads, strict=True):
                p[name].requires_grad_(False)
                p[name] -= lr * g
            if state.pruned is not None:
                p["W"] = state.pruned.project(p["W"], sl)
        return nce.detach()


def make_step(kind: str, state: ReplicaState, p: dict, sl: slice, idx: range, start: int, end: int):
    """The step of ``kind`` ("fused" or "autograd", see :func:`step_kind`) for one chunk,
    for the steps ``start`` .. ``end - 1``."""
    kappas = state.hyper.kappas(start, end)[:, sl]
    return (FusedStep if kind == "fused" else AutogradStep)(state, p, sl, idx, start, kappas)
