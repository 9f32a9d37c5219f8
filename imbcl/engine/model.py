"""The Transformer-MLP encoder, written for R stacked replicas.

Parameters are tensors with a leading replica axis: ``W`` (R, m, d) neuron weights and
``WQ``, ``WK``, ``WV`` (R, d, d) attention matrices. Inputs are (R, n, L, d); the encoder
output f(X) is (R, n, m).

With frozen attention the trainer uses an exact regrouping of the same math (see
:func:`token_mix`, :func:`neurons_with_mask`, :func:`neuron_weight_grad`): the attention
output is h = P X W_V^T with P = softmax(X A X^T), A = W_Q^T W_K, so the pre-activations are
(P X) V^T with the effective weights V = W W_V. That skips the three projections and lets the
W-gradient be written by hand, without autograd.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def brelu(s: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bilateral ReLU: ReLU(s - b) - ReLU(-s - b), zero on [-b, b] (b >= 0)."""
    return F.relu(s - b) - F.relu(-s - b)


def attention_weights(x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """(R, n, L, L) softmax_l'(<W_Q x_l, W_K x_l'>): row l is how token l mixes the tokens
    of its sequence; ``x`` (R, n, L, d), matrices (R, d, d)."""
    q = torch.einsum("rnld,red->rnle", x, wq)
    k = torch.einsum("rnld,red->rnle", x, wk)
    return torch.softmax(q @ k.transpose(-1, -2), dim=-1)


def attention(x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor):
    """Single-head softmax self-attention, (R, n, L, d) -> (R, n, L, d).

    h_l = sum_l' softmax_l'(<W_Q x_l, W_K x_l'>) W_V x_l'; matrices are (R, d, d).
    """
    v = torch.einsum("rnld,red->rnle", x, wv)
    return attention_weights(x, wq, wk) @ v


def effective_weights(w: torch.Tensor, wv: torch.Tensor) -> torch.Tensor:
    """(R, m, d) rows v_i = W_V^T w_i: neuron i's weight on the raw tokens."""
    return w @ wv


def bias(kappa: torch.Tensor, w: torch.Tensor, wv: torch.Tensor, sigma: torch.Tensor, d: int):
    """(R, m) bias b_i = kappa * ||W_V^T w_i|| * sqrt(2) * sigma / sqrt(d), not differentiated.

    ``kappa`` and ``sigma`` are (R,). The bias sits at kappa noise standard deviations of a
    token's noise projected on the neuron, so larger kappa silences noise-driven activations.
    """
    with torch.no_grad():
        return bias_from_effective(kappa, effective_weights(w, wv), sigma, d)


def bias_from_effective(kappa: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, d: int):
    """(R, m) the bias of :func:`bias` from the effective weights ``v`` (R, m, d)."""
    return (kappa * sigma * math.sqrt(2.0 / d))[:, None] * v.norm(dim=-1)


def neurons(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """f(X) (R, n, m) = sum over tokens of BReLU_b(<w_i, h_l>); h (R, n, L, d), b (R, m)."""
    pre = torch.einsum("rnld,rmd->rnlm", h, w)
    return brelu(pre, b[:, None, None, :]).sum(dim=2)


def encode(x: torch.Tensor, params: dict[str, torch.Tensor], b: torch.Tensor) -> torch.Tensor:
    """Full encoder f(X): attention then BReLU neurons summed over tokens, (R, n, m)."""
    h = attention(x, params["WQ"], params["WK"], params["WV"])
    return neurons(h, params["W"], b)


def attention_form(wq: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """(R, d, d) A = W_Q^T W_K: the attention scores are <W_Q x_l, W_K x_l'> = x_l A x_l'^T."""
    return wq.transpose(1, 2) @ wk


def scalar_form(a: torch.Tensor) -> torch.Tensor | None:
    """(R,) c if every A[r] equals c[r] times the identity (the default W_Q = W_K = s I), else None."""
    c = a.diagonal(dim1=1, dim2=2)[:, :1]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return c[:, 0] if torch.equal(a, c[:, :, None] * eye) else None


class Workspace:
    """Scratch tensors reused from step to step by the frozen-attention path.

    Allocating and freeing megabyte-sized tensors every step made the C allocator hand the
    memory back to the system and fault it in again, which cost as much as the matmuls.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor ``name`` of ``shape``, with the dtype and device of ``like``."""
        buf = self._bufs.get(name)
        if (
            buf is None
            or buf.shape != shape
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = self._bufs[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf


def _scratch(ws: Workspace | None, name: str, shape: tuple[int, ...], like: torch.Tensor):
    if ws is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    return ws.get(name, shape, like)


def token_mix(
    x: torch.Tensor, a: torch.Tensor, c: torch.Tensor | None = None, ws: Workspace | None = None
) -> torch.Tensor:
    """(R, n, L, d) P X with P = softmax_l'(x_l A x_l'^T): attention before W_V.

    ``a`` (R, d, d) is :func:`attention_form`; ``c`` (R,) from :func:`scalar_form`, when given,
    replaces the product X A by the cheaper c X X^T. ``attention(x, wq, wk, wv)`` equals
    ``token_mix(x, attention_form(wq, wk)) @ wv^T`` up to float rounding. The result lives in
    ``ws`` when one is given (valid until its next use).
    """
    r, n, seq, d = x.shape
    xs = x.reshape(r * n, seq, d)
    scores = _scratch(ws, "scores", (r * n, seq, seq), x)
    if c is None:
        q = torch.matmul(x.reshape(r, n * seq, d), a, out=_scratch(ws, "q", (r, n * seq, d), x))
        torch.bmm(q.view(r * n, seq, d), xs.transpose(1, 2), out=scores)
    else:
        torch.bmm(xs, xs.transpose(1, 2), out=scores)
        scores.view(r, n * seq, seq).mul_(c[:, None, None])
    # softmax over the last axis, written out: torch.softmax is slow on rows of length L ~ 8
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
    scores.div_(scores.sum(dim=-1, keepdim=True))
    mixed = torch.bmm(scores, xs, out=_scratch(ws, "mixed", (r * n, seq, d), x))
    return mixed.view(r, n, seq, d)


def neurons_with_mask(
    hx: torch.Tensor, v: torch.Tensor, b: torch.Tensor, ws: Workspace | None = None
):
    """f(X) (R, n, m) from mixed tokens ``hx`` (R, n, L, d), effective weights ``v`` (R, m, d).

    Returns f and the float mask (R, n, L, m) of BReLU's derivative, 1 where |s| > b. BReLU
    is computed as s - clamp(s, -b, b), which equals ReLU(s - b) - ReLU(-s - b) exactly.
    """
    r, n, seq, d = hx.shape
    m = v.shape[1]
    pre = torch.bmm(
        hx.reshape(r, n * seq, d), v.transpose(1, 2), out=_scratch(ws, "pre", (r, n * seq, m), hx)
    )
    bb = b[:, None, :]
    out = torch.clamp(pre, -bb, bb, out=_scratch(ws, "brelu", pre.shape, hx))
    out = torch.sub(pre, out, out=out)
    active = torch.gt(pre.abs_(), bb, out=_scratch(ws, "active", pre.shape, hx))
    return out.view(r, n, seq, m).sum(dim=2), active.view(r, n, seq, m)


def neuron_weight_grad(hx: torch.Tensor, active: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """(R, m, d) dLoss/dV from d f (R, n, m), given ``hx`` and ``active`` of neurons_with_mask.

    ``active`` is overwritten (it becomes dLoss/ds).
    """
    r, n, seq, d = hx.shape
    ds = active.mul_(df[:, :, None, :]).view(r, n * seq, -1)
    return ds.transpose(1, 2) @ hx.reshape(r, n * seq, d)
