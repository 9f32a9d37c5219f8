"""The sparse-coding data model and the masking augmentation.

Shapes: ``n`` samples, ``L`` tokens per sample, ``d`` dimensions, ``K = k_maj + k_min``
features (majority first). All randomness comes from explicit ``torch.Generator`` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from imbcl.engine.config import MASKS, DataConfig
from imbcl.engine.streams import Stream, generator


@dataclass(frozen=True)
class Dictionary:
    """An orthonormal basis ``basis`` (d, d) whose first K columns are the features, and the
    correlated-noise directions ``noise_dirs`` (d, n_corr), orthonormal and orthogonal to every
    feature.

    ``features`` (d, K): columns M_j, majority first. The noise directions are random
    orthonormal combinations of the basis's other d - K columns, so they are dense in them: no
    column of ``basis`` beyond the features singles out a noise direction.
    """

    basis: torch.Tensor
    noise_dirs: torch.Tensor
    k: int

    @property
    def features(self) -> torch.Tensor:
        return self.basis[:, : self.k]


def random_orthonormal(rows: int, cols: int, g: torch.Generator) -> torch.Tensor:
    """(rows, cols) float64 orthonormal columns, uniformly random (QR of a Gaussian matrix with
    the signs of R's diagonal fixed); ``cols <= rows``."""
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def make_dictionary(cfg: DataConfig, seed: int, device: torch.device | str = "cpu") -> Dictionary:
    """A random orthogonal basis and noise directions from run ``seed`` (stream DICTIONARY).

    The features are dense in coordinates, as coordinate masking requires; the noise
    directions are dense in the complement of the features (see :class:`Dictionary`).
    """
    g = generator(seed, Stream.DICTIONARY)
    basis = random_orthonormal(cfg.d, cfg.d, g)
    mix = random_orthonormal(cfg.d - cfg.k, cfg.n_corr, g)  # (d - K, n_corr)
    noise_dirs = basis[:, cfg.k :] @ mix
    f32 = {"device": device, "dtype": torch.float32}
    return Dictionary(basis.to(**f32), noise_dirs.to(**f32), cfg.k)


def feature_probs(cfg: DataConfig) -> torch.Tensor:
    """(K,) presence probability of each feature: q for majority, q / rho for minority."""
    return torch.tensor([cfg.q] * cfg.k_maj + [cfg.q / cfg.rho] * cfg.k_min)


def minority_mask(cfg: DataConfig) -> np.ndarray:
    """(K,) bool: True for minority features."""
    return np.array([False] * cfg.k_maj + [True] * cfg.k_min)


def sample_codes(
    cfg: DataConfig, n: int, g: torch.Generator, probs: torch.Tensor | None = None
) -> torch.Tensor:
    """(n, K) codes z in {-1, 0, +1}: feature j present with ``probs[j]``, random sign."""
    device = g.device
    probs = (feature_probs(cfg) if probs is None else probs).to(device)
    present = torch.rand(n, cfg.k, generator=g, device=device) < probs
    sign = torch.randint(0, 2, (n, cfg.k), generator=g, device=device) * 2 - 1
    return present * sign


def sample_tokens(
    cfg: DataConfig, dictionary: Dictionary, z: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    """(n, L, d) tokens for codes ``z`` (n, K).

    Token l carries each present feature with probability ``p_token``; noise is isotropic
    N(0, sigma^2/d I) per token plus amplitudes N(0, sigma_corr^2) along the fixed correlated
    directions, shared by the tokens of a sample.
    """
    n, device = z.shape[0], z.device
    carry = torch.rand(n, cfg.seq_len, cfg.k, generator=g, device=device) < cfg.p_token
    coef = z[:, None, :].to(torch.float32) * carry
    x = coef @ dictionary.features.T
    x += torch.randn(n, cfg.seq_len, cfg.d, generator=g, device=device) * (
        cfg.sigma / math.sqrt(cfg.d)
    )
    if cfg.n_corr:
        amp = torch.randn(n, 1, cfg.n_corr, generator=g, device=device) * cfg.sigma_corr
        x += amp @ dictionary.noise_dirs.T
    return x


def sample_batch(
    cfg: DataConfig,
    dictionary: Dictionary,
    n: int,
    g: torch.Generator,
    probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (n, L, d) and their ground-truth codes (n, K)."""
    z = sample_codes(cfg, n, g, probs)
    return sample_tokens(cfg, dictionary, z, g), z


def mask_views(
    x: torch.Tensor, g: torch.Generator, granularity: str = "token"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two complementary coordinate-masked views ``2 D x`` and ``2 (1 - D) x``.

    ``x`` is (..., n, L, d); ``D`` is a Bernoulli(1/2) mask over coordinates: with
    ``granularity="token"`` every entry of the sample's L x d array is kept independently (the
    mask of Wen & Li, 2021, applied to the whole sequence as one data vector); with
    ``"sample"`` one mask over the d coordinates is shared by the sample's L tokens. The
    factor 2 keeps each view unbiased for x.
    """
    if granularity not in MASKS:
        raise ValueError(f"granularity must be one of {MASKS} (got {granularity!r})")
    shape = x.shape if granularity == "token" else (*x.shape[:-2], 1, x.shape[-1])
    keep = torch.randint(0, 2, shape, generator=g, device=x.device).to(x.dtype)
    return 2 * keep * x, 2 * (1 - keep) * x
