"""One-shot pruning masks for the neuron weights, in a chosen basis.

A neuron's weight w (a row of W) is written in a basis B (d, d, columns b_k) as w = B c, so
the coefficient rows are C = W B^{-T}. Pruning zeroes a fraction of C and maps back:
W <- (C * mask) B^T. The coordinate basis is B = I.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


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
