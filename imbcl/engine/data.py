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


@dataclass
class Draws:
    """The random numbers behind one batch of n samples; leading axes (replicas) allowed.

    ``present``, ``carry`` uniform in [0, 1): (..., n, K) and (..., n, L, K); ``sign``
    (..., n, K) integers 0 or 1 (the sign of a present feature is 2 sign - 1); ``noise``
    (..., n, L, d) and ``amp`` (..., n, 1, n_corr) standard normal; ``keep`` (..., n, L, d),
    or (..., n, 1, d) for one mask per sample, 0.0 or 1.0 (the first view's mask), or None
    when no views are drawn. Drawn in this order from one generator.
    """

    present: torch.Tensor
    sign: torch.Tensor
    carry: torch.Tensor
    noise: torch.Tensor
    amp: torch.Tensor
    keep: torch.Tensor | None

    @classmethod
    def empty(cls, cfg: DataConfig, shape: tuple[int, ...], views: bool, device) -> Draws:
        """Uninitialised draws for a batch of n = shape[-1] samples with leading ``shape``."""
        k, seq, d = cfg.k, cfg.seq_len, cfg.d
        f32, i64 = {"device": device}, {"device": device, "dtype": torch.int64}
        mask = (seq if cfg.mask == "token" else 1, d)
        return cls(
            torch.empty(*shape, k, **f32),
            torch.empty(*shape, k, **i64),
            torch.empty(*shape, seq, k, **f32),
            torch.empty(*shape, seq, d, **f32),
            torch.empty(*shape, 1, cfg.n_corr, **f32),
            torch.empty(*shape, *mask, **f32) if views else None,
        )

    def fill(self, g: torch.Generator) -> Draws:
        """Draw every field in place from ``g``, in the order of the class docstring."""
        torch.rand(self.present.shape, generator=g, out=self.present)
        torch.randint(0, 2, self.sign.shape, generator=g, out=self.sign)
        torch.rand(self.carry.shape, generator=g, out=self.carry)
        torch.randn(self.noise.shape, generator=g, out=self.noise)
        torch.randn(self.amp.shape, generator=g, out=self.amp)
        if self.keep is not None:
            torch.randint(0, 2, self.keep.shape, generator=g, out=self.keep)
        return self

    def part(self, i: int) -> Draws:
        """The draws of replica ``i`` of stacked draws (views into them)."""
        keep = None if self.keep is None else self.keep[i]
        return Draws(self.present[i], self.sign[i], self.carry[i], self.noise[i], self.amp[i], keep)


def draw(cfg: DataConfig, n: int, g: torch.Generator, views: bool = False) -> Draws:
    """Fresh :class:`Draws` for n samples from ``g``."""
    return Draws.empty(cfg, (n,), views, g.device).fill(g)


def _column(cfgs, get, device, shape=(1, 1, 1)) -> torch.Tensor:
    """(R, *shape) float32 tensor of one value per config (broadcast over a batch)."""
    return torch.tensor([get(c) for c in cfgs], dtype=torch.float32, device=device).view(-1, *shape)


def tokens(
    cfgs: list[DataConfig],
    features: torch.Tensor,
    noise_dirs: torch.Tensor,
    d: Draws,
    probs: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (R, n, L, d) and codes (R, n, K) of R replicas from their stacked draws.

    ``cfgs`` one DataConfig per replica, ``features`` (R, d, K) and ``noise_dirs``
    (R, d, n_corr) their dictionaries. Feature j is present with probability ``probs[j]``
    (default: q, or q / rho for minority features) and a random sign; token l carries each
    present feature with probability ``p_token``; the noise is isotropic N(0, sigma^2 / d I)
    per token plus amplitudes N(0, sigma_corr^2) along the correlated directions, shared by
    the tokens of a sample. The tokens are written into ``out`` (R, n, L, d) when given.
    """
    device = features.device
    if probs is None:
        p = torch.stack([feature_probs(c) for c in cfgs]).to(device)[:, None]  # (R, 1, K)
    else:
        p = probs.to(device)
    z = (d.present < p) * (d.sign * 2 - 1)  # (R, n, K)
    carry = d.carry < _column(cfgs, lambda c: c.p_token, device)
    coef = z[:, :, None, :].to(torch.float32) * carry  # (R, n, L, K)
    r, n, seq, k = coef.shape
    flat = None if out is None else out.view(r, n * seq, -1)
    x = torch.bmm(coef.view(r, n * seq, k), features.transpose(1, 2), out=flat)
    x = x.view(r, n, seq, -1)
    x.addcmul_(d.noise, _column(cfgs, lambda c: c.sigma / math.sqrt(c.d), device))
    if cfgs[0].n_corr:
        amp = d.amp * _column(cfgs, lambda c: c.sigma_corr, device)  # (R, n, 1, n_corr)
        x += torch.bmm(amp.view(r, n, -1), noise_dirs.transpose(1, 2))[:, :, None]
    return x, z


def sample_batch(
    cfg: DataConfig,
    dictionary: Dictionary,
    n: int,
    g: torch.Generator,
    probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (n, L, d) and their ground-truth codes (n, K) of one replica (see :func:`tokens`)."""
    d = draw(cfg, n, g)
    stacked = Draws(*(None if v is None else v[None] for v in vars(d).values()))
    x, z = tokens([cfg], dictionary.features[None], dictionary.noise_dirs[None], stacked, probs)
    return x[0], z[0]


def views(
    x: torch.Tensor, keep: torch.Tensor, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two complementary masked views ``2 D x`` and ``2 (1 - D) x`` of tokens ``x``
    (..., n, L, d) for the first view's mask ``keep`` (..., n, L or 1, d) of 0s and 1s
    (``2 x - 2 D x`` is exactly ``2 (1 - D) x`` for such a mask). With ``out`` (..., 2n, L, d)
    the views are written into its two halves (samples :n and n:), which are returned."""
    n = x.shape[-3]
    if out is None:
        out = x.new_empty((*x.shape[:-3], 2 * n, *x.shape[-2:]))
    first, second = out[..., :n, :, :], out[..., n:, :, :]
    torch.mul(x, keep.to(x.dtype), out=first).mul_(2)
    torch.mul(x, 2, out=second).sub_(first)
    return first, second


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
    return views(x, torch.randint(0, 2, shape, generator=g, device=x.device))
