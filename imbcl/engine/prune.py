"""One-shot pruning masks for the neuron weights, in a chosen basis.

A neuron's weight w (a row of W) is written in a basis B (d, d, columns b_k) as w = B c, so
the coefficient rows are C = W B^{-T}. Pruning zeroes a fraction of C and maps back:
W <- (C * mask) B^T. The coordinate basis is B = I. The bases (:func:`pruning_basis`) differ in
what they know of the data model: ``coordinate`` nothing; ``feature`` the dictionary (the
features and the dictionary's own complement columns, which single out no noise direction);
``feature_random`` the features, completed by a random orthonormal complement (a control:
it should do what ``feature`` does); ``feature_noise`` the features and the correlated-noise
directions, completed at random (an oracle that also knows the noise); ``estimated`` whatever
a basis estimated from unlabelled data recovers (:func:`estimate_basis`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from imbcl.engine.config import ConfigError
from imbcl.engine.data import Dictionary
from imbcl.engine.streams import Stream, generator


def n_pruned(numel: int, rate: float) -> int:
    """How many of ``numel`` coefficients a rate zeroes (rounded to nearest)."""
    return int(round(rate * numel))


def _mask_from_order(order: torch.Tensor, rate: float) -> torch.Tensor:
    """1 everywhere except the first ``round(rate * n)`` positions of ``order`` (..., n)."""
    k = n_pruned(order.shape[-1], rate)
    mask = torch.ones(order.shape, dtype=torch.float32, device=order.device)
    mask.scatter_(-1, order[..., :k], 0.0)
    return mask


def _flatten_scope(coef: torch.Tensor, scope: str) -> torch.Tensor:
    """(R, m, d) -> (R, m*d) for ``global`` scope, (R, m, d) unchanged for ``neuron``."""
    if scope == "global":
        return coef.flatten(1)
    if scope == "neuron":
        return coef
    raise ValueError(f"scope must be 'global' or 'neuron' (got {scope!r})")


def magnitude_mask(coef: torch.Tensor, rate: float, scope: str = "global") -> torch.Tensor:
    """(R, m, d) float mask zeroing the smallest-|coef| fraction ``rate`` of each replica
    (``global``) or of each neuron's row (``neuron``). Exactly round(rate * n) zeros; ties
    broken by position."""
    flat = _flatten_scope(coef.abs(), scope)
    order = torch.sort(flat, dim=-1, stable=True).indices
    return _mask_from_order(order, rate).reshape(coef.shape)


def random_mask(
    shape: tuple[int, ...], rate: float, scope: str, g: torch.Generator
) -> torch.Tensor:
    """(R, m, d) float mask zeroing a uniformly random fraction ``rate``, same counts as
    :func:`magnitude_mask` (the control that tests whether magnitude matters)."""
    flat = _flatten_scope(torch.empty(shape, device=g.device), scope)
    order = torch.rand(flat.shape, generator=g, device=g.device).argsort(dim=-1)
    return _mask_from_order(order, rate).reshape(shape)


def to_coefficients(w: torch.Tensor, basis_inv_t: torch.Tensor | None) -> torch.Tensor:
    """C = W B^{-T}; ``basis_inv_t`` (R, d, d) is B^{-T}, None for the coordinate basis."""
    return w if basis_inv_t is None else w @ basis_inv_t


def from_coefficients(coef: torch.Tensor, basis_t: torch.Tensor | None) -> torch.Tensor:
    """W = C B^T; ``basis_t`` (R, d, d) is B^T, None for the coordinate basis."""
    return coef if basis_t is None else coef @ basis_t


def completed_basis(columns: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(d, d) float64: the orthonormal ``columns`` (d, k), then a uniformly random orthonormal
    basis of their orthogonal complement (d - k columns) drawn from ``g``."""
    d, k = columns.shape
    cols = columns.to(torch.float64)
    gauss = torch.randn(d, d - k, generator=g, dtype=torch.float64)
    gauss -= cols @ (cols.T @ gauss)
    q, r = torch.linalg.qr(gauss)
    return torch.cat([cols, q * torch.sign(torch.diagonal(r))], dim=1)


def pruning_basis(
    kind: str,
    dictionaries: Sequence[Dictionary],
    seeds: Sequence[int],
    estimated=None,
    device: torch.device | str = "cpu",
) -> torch.Tensor | None:
    """(R, d, d) float32 basis B per replica for pruning basis ``kind`` (None: coordinates).

    ``dictionaries`` and ``seeds`` are the replicas'; random completions come from stream
    COMPLEMENT of each seed. ``estimated`` (R, d, d) is required for ``kind="estimated"``.
    """
    if kind == "coordinate":
        return None
    r, d = len(dictionaries), dictionaries[0].basis.shape[0]
    if kind == "estimated":
        if estimated is None:
            raise ConfigError("basis must be given (R, d, d) when the pruning basis is 'estimated'")
        b = torch.as_tensor(estimated, dtype=torch.float32, device=device)
        if b.shape != (r, d, d):
            raise ConfigError(f"basis must have shape {(r, d, d)} (got {tuple(b.shape)})")
        return b
    if kind == "feature":
        return torch.stack([dc.basis for dc in dictionaries]).to(device)
    if kind not in ("feature_random", "feature_noise"):
        raise ConfigError(f"unknown pruning basis {kind!r}")
    out = []
    for dc, seed in zip(dictionaries, seeds, strict=True):
        cols = (
            dc.features if kind == "feature_random" else torch.cat([dc.features, dc.noise_dirs], 1)
        )
        out.append(completed_basis(cols.cpu(), generator(seed, Stream.COMPLEMENT)))
    return torch.stack(out).to(device=device, dtype=torch.float32)


def estimate_basis(tokens: np.ndarray, seed: int, max_iter: int = 400) -> np.ndarray:
    """(d, d) a basis estimated from unlabelled tokens (n, d) by FastICA, no dictionary used.

    The columns are ICA's mixing directions scaled to unit norm: sparse features are
    independent non-Gaussian sources, so ICA can recover their directions from data alone.
    This is the practitioner's option; the feature basis is the oracle. The d - K - n_corr
    isotropic-noise directions are Gaussian, which ICA cannot separate, so FastICA often stops
    at ``max_iter``; its convergence warning is silenced because the feature directions, the
    part that matters, are recovered (Chapter 4 measures how well).
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    tokens = np.asarray(tokens, dtype=np.float64)
    if tokens.ndim != 2 or tokens.shape[0] < tokens.shape[1]:
        raise ValueError(f"tokens must be (n, d) with n >= d (got shape {tokens.shape})")
    ica = FastICA(whiten="unit-variance", random_state=seed, max_iter=max_iter, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica.fit(tokens)
    mixing = ica.mixing_
    return mixing / np.linalg.norm(mixing, axis=0, keepdims=True)
