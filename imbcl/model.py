"""The Transformer-MLP encoder, written for R stacked replicas.

Parameters are tensors with a leading replica axis: ``W`` (R, m, d) neuron weights and
``WQ``, ``WK``, ``WV`` (R, d, d) attention matrices. Inputs are (R, n, L, d); the encoder
output f(X) is (R, n, m).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def brelu(s: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bilateral ReLU: ReLU(s - b) - ReLU(-s - b), zero on [-b, b] (b >= 0)."""
    return F.relu(s - b) - F.relu(-s - b)


def attention(x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor):
    """Single-head softmax self-attention, (R, n, L, d) -> (R, n, L, d).

    h_l = sum_l' softmax_l'(<W_Q x_l, W_K x_l'>) W_V x_l'; matrices are (R, d, d).
    """
    q = torch.einsum("rnld,red->rnle", x, wq)
    k = torch.einsum("rnld,red->rnle", x, wk)
    v = torch.einsum("rnld,red->rnle", x, wv)
    scores = q @ k.transpose(-1, -2)
    return torch.softmax(scores, dim=-1) @ v


def effective_weights(w: torch.Tensor, wv: torch.Tensor) -> torch.Tensor:
    """(R, m, d) rows v_i = W_V^T w_i: neuron i's weight on the raw tokens."""
    return w @ wv


def bias(kappa: torch.Tensor, w: torch.Tensor, wv: torch.Tensor, sigma: torch.Tensor, d: int):
    """(R, m) bias b_i = kappa * ||W_V^T w_i|| * sqrt(2) * sigma / sqrt(d), not differentiated.

    ``kappa`` and ``sigma`` are (R,). The bias sits at kappa noise standard deviations of a
    token's noise projected on the neuron, so larger kappa silences noise-driven activations.
    """
    with torch.no_grad():
        norm = effective_weights(w, wv).norm(dim=-1)
        return (kappa * sigma * math.sqrt(2.0 / d))[:, None] * norm


def neurons(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """f(X) (R, n, m) = sum over tokens of BReLU_b(<w_i, h_l>); h (R, n, L, d), b (R, m)."""
    pre = torch.einsum("rnld,rmd->rnlm", h, w)
    return brelu(pre, b[:, None, None, :]).sum(dim=2)


def encode(x: torch.Tensor, params: dict[str, torch.Tensor], b: torch.Tensor) -> torch.Tensor:
    """Full encoder f(X): attention then BReLU neurons summed over tokens, (R, n, m)."""
    h = attention(x, params["WQ"], params["WK"], params["WV"])
    return neurons(h, params["W"], b)
