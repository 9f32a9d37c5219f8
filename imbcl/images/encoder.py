"""The image encoder: tokens, a one-layer Transformer with ReLU neurons, a projection head.

An image becomes L tokens of t values (:func:`to_tokens`: rows of a digit, 4x4 patches of a
CIFAR image), embedded (E: t -> d, plus a learned position table), passed through one
single-head softmax attention layer with a residual connection, then m ReLU neurons; f(X)
(m,) is their mean over tokens and is the representation that the linear probes read. A
two-layer projection head (m -> m -> p) feeds the InfoNCE loss on L2-normalised outputs.

Parameters carry a leading replica axis R (as in :mod:`imbcl.engine.model`), so one call
encodes every replica on its own images.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from imbcl.engine.streams import Stream, generator
from imbcl.images.config import SimCLRConfig
from imbcl.images.datasets import IMAGE_SHAPE, check_dataset

#: Token shape (rows, columns of pixels) per data set: digit rows, CIFAR 4x4 patches.
PATCH = {"digits": (1, 8), "cifar10": (4, 4)}


def token_shape(dataset: str) -> tuple[int, int]:
    """(L, t): the number of tokens per image of ``dataset`` and the values per token (see
    :func:`to_tokens`); digits: (8, 8) rows, cifar10: (64, 48) patches of 4x4x3 pixels."""
    c, h, w = IMAGE_SHAPE[check_dataset(dataset)]
    ph, pw = PATCH[dataset]
    return (h // ph) * (w // pw), c * ph * pw


def to_tokens(x: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """(..., C, H, W) images -> (..., L, C*ph*pw) tokens, patches in row-major order.

    ``patch=(1, W)`` makes each image row a token (8x8 digits -> 8 tokens of 8 pixels).
    """
    ph, pw = patch
    *lead, c, h, w = x.shape
    if h % ph or w % pw:
        raise ValueError(f"patch {patch} must tile the {h}x{w} image")
    n = len(lead)
    x = x.reshape(*lead, c, h // ph, ph, w // pw, pw)
    x = x.permute(*range(n), n + 1, n + 3, n, n + 2, n + 4)  # (..., H/ph, W/pw, C, ph, pw)
    return x.reshape(*lead, (h // ph) * (w // pw), c * ph * pw)


def init_params(seed: int, n_tokens: int, token_dim: int, cfg: SimCLRConfig) -> dict:
    """One replica's initial parameters (leading axis 1), a function of ``seed`` only.

    E (1, t, d), P (1, L, d), WQ/WK/WV (1, d, d), W (1, m, d), b (1, m), G1 (1, m, m),
    G2 (1, p, m); matrices are N(0, 1/fan_in), the position table N(0, 0.1^2), b = 0.
    """
    g = generator(int(seed), Stream.IMAGE_INIT)
    d, m, p = cfg.d, cfg.m, cfg.proj

    def normal(*shape, std):
        return std * torch.randn((1, *shape), generator=g)

    return {
        "E": normal(token_dim, d, std=1 / math.sqrt(token_dim)),
        "P": normal(n_tokens, d, std=0.1),
        "WQ": normal(d, d, std=1 / math.sqrt(d)),
        "WK": normal(d, d, std=1 / math.sqrt(d)),
        "WV": normal(d, d, std=1 / math.sqrt(d)),
        "W": normal(m, d, std=1 / math.sqrt(d)),
        "b": torch.zeros(1, m),
        "G1": normal(m, m, std=1 / math.sqrt(m)),
        "G2": normal(p, m, std=1 / math.sqrt(m)),
    }


def represent(params: dict, tokens: torch.Tensor) -> torch.Tensor:
    """f(X) (R, n, m): tokens (R, n, L, t) -> embedding + attention (residual) -> ReLU
    neurons -> mean over the L tokens."""
    z = tokens @ params["E"][:, None] + params["P"][:, None]
    q, k, v = (torch.einsum("rnld,red->rnle", z, params[w]) for w in ("WQ", "WK", "WV"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(z.shape[-1])
    h = z + torch.softmax(scores, dim=-1) @ v
    s = F.relu(torch.einsum("rnld,rmd->rnlm", h, params["W"]) + params["b"][:, None, None])
    return s.mean(dim=2)


def project(params: dict, f: torch.Tensor) -> torch.Tensor:
    """Unit-norm projection g(f) (R, n, p) = normalise(G2 relu(G1 f))."""
    hidden = F.relu(torch.einsum("rnm,rkm->rnk", f, params["G1"]))
    return F.normalize(torch.einsum("rnk,rpk->rnp", hidden, params["G2"]), dim=-1)


def step_flops(cfg: SimCLRConfig, n_tokens: int, token_dim: int) -> float:
    """Approximate floating-point operations of one training step of one replica whose images
    are ``n_tokens`` tokens of ``token_dim`` values (see :func:`token_shape`).

    Counts the matrix products of the encoder and head (embedding, Q/K/V, attention scores
    and mixing, neurons, two head layers) for two views, times 3 for forward + backward, times
    2 operations per multiply-add; element-wise work, augmentation and the loss are ignored.
    """
    b, n, t, d, m, p = cfg.batch, n_tokens, token_dim, cfg.d, cfg.m, cfg.proj
    macs = b * n * (t * d + 3 * d * d + 2 * n * d + d * m) + b * (m * m + m * p)
    return 2.0 * 3 * 2 * macs
