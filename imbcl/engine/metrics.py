"""Measurements on a History or on trained Replicas; majority and minority kept apart.

Conventions: ``align`` (..., m, K) is A[i, j] = <W_V^T w_i, M_j>; ``noise`` (..., m) is the
norm of the non-feature part of W_V^T w_i; ``minority`` (K,) marks minority features.
"""

from __future__ import annotations

import numpy as np
import torch

from imbcl.engine import model, probe

#: A neuron whose weight norm is below this fraction of its replica's largest is silent.
ALIVE_FRACTION = 0.05
#: A live neuron is specialised to feature j* = argmax_j |A_ij| when |A_ij*| >= MARGIN * noise_i.
MARGIN = 1.0
#: A feature's onset is the first recorded step at which some neuron has |A_ij| >= ONSET.
ONSET = 0.05


def weight_norm(align: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(..., m) ||W_V^T w_i||: the feature part and the rest are orthogonal."""
    return np.sqrt((align**2).sum(-1) + noise**2)


def alive(align: np.ndarray, noise: np.ndarray, fraction: float = ALIVE_FRACTION) -> np.ndarray:
    """(..., m) bool: the neuron's weight norm is at least ``fraction`` of the largest.

    The bias ramp silences neurons by shrinking them under the L2 penalty; counting those as
    specialised would inflate the counts.
    """
    norm = weight_norm(align, noise)
    return norm >= fraction * norm.max(axis=-1, keepdims=True)


def owners(align, noise, margin: float = MARGIN, fraction: float = ALIVE_FRACTION) -> np.ndarray:
    """(..., m) int: the feature each neuron specialises in, or -1 if none.

    Neuron i belongs to j* = argmax_j |A_ij| if it is alive and |A_ij*| >= margin * noise_i.
    """
    mag = np.abs(align)
    best = mag.argmax(-1)
    top = np.take_along_axis(mag, best[..., None], -1)[..., 0]
    ok = alive(align, noise, fraction) & (top >= margin * noise)
    return np.where(ok, best, -1)


def neurons_per_feature(owner: np.ndarray, k: int) -> np.ndarray:
    """(..., K) number of neurons specialised to each feature, from ``owners`` (..., m)."""
    return (owner[..., None] == np.arange(k)).sum(axis=-2)


def best_per_feature(values: np.ndarray, live: np.ndarray | None = None) -> np.ndarray:
    """(..., K) the best neuron's value for each feature: max over neurons i of ``values``
    (..., m, K), over the ``live`` (..., m) neurons only when given (0 if none is live).

    With ``values = |A|`` it is the best alignment max_i |A_ij| of feature j.
    """
    if live is not None:
        values = np.where(live[..., None], values, 0.0)
    return values.max(axis=-2)


def feature_noise_ratio(align: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(..., m) max_j |A_ij| / noise_i: how much of neuron i is feature rather than noise."""
    return np.abs(align).max(-1) / np.maximum(noise, 1e-12)


def coverage(counts: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(...,) bool: every feature selected by ``group`` (K,) has a specialised neuron."""
    return (counts[..., group] > 0).all(axis=-1)


def onset_steps(steps: np.ndarray, align: np.ndarray, threshold: float = ONSET) -> np.ndarray:
    """(R, K) first recorded step where max_i |A_ij| >= threshold; NaN if never.

    ``steps`` (T,), ``align`` (T, R, m, K).
    """
    reached = best_per_feature(np.abs(align)) >= threshold  # (T, R, K)
    first = reached.argmax(axis=0)
    return np.where(reached.any(axis=0), steps[first].astype(float), np.nan)


def group_mean(x: np.ndarray, minority: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over majority features and over minority features of ``x`` (..., K)."""
    return x[..., ~minority].mean(-1), x[..., minority].mean(-1)


def mean_sd(x, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) along ``axis``."""
    x = np.asarray(x, dtype=float)
    sd = x.std(axis=axis, ddof=1) if x.shape[axis] > 1 else np.zeros_like(x.mean(axis=axis))
    return x.mean(axis=axis), sd


def attention_entropy(reps, n: int = 512) -> np.ndarray:
    """(R,) mean entropy (nats) of the attention rows of each replica on ``n`` probe samples.

    Uniform mixing of L tokens has entropy log L; a row that picks one token has 0.
    """
    x, _ = reps.sample(n)
    with torch.no_grad():
        p = model.attention_weights(x, reps.params["WQ"], reps.params["WK"])
    h = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (R, n, L)
    return h.mean(dim=(1, 2)).cpu().numpy()


def probe_accuracy(
    reps,
    n_train: int = 2000,
    n_test: int = 2000,
    q: float | None = None,
    c: float = 1.0,
    replicas=None,
) -> np.ndarray:
    """(R', K) balanced accuracy of a linear probe detecting z_j in {-1, 0, +1} from f(X),
    for the selected ``replicas`` (indices; default all R).

    Probe data are drawn fresh (a fixed per-replica stream) with every feature present with
    probability ``q`` (default: the majority rate), so a minority feature has as many
    examples as a majority one: the probe measures what the representation encodes, not the
    label prior. A class-balanced multinomial logistic regression on standardised f(X) with
    inverse penalty ``c`` (:func:`imbcl.engine.probe.fit_logistic`, the objective of
    scikit-learn's ``LogisticRegression(class_weight="balanced")``; every replica and feature
    solved at once, each independently) is fit on ``n_train`` samples and scored on
    ``n_test``. Chance is 1/3.
    """
    q = reps.specs[0].data.q if q is None else q
    idx = reps.indices(replicas)
    x, z = reps.sample(n_train + n_test, probs=torch.full((reps.k,), q), replicas=idx)
    feats = reps.encode(x, replicas=idx).cpu()
    labels = (z.cpu() + 1).long()  # classes 0, 1, 2 for z = -1, 0, +1
    fit = probe.fit_logistic(
        feats[:, :n_train], labels[:, :n_train], 3, class_weight="balanced", C=c
    )
    pred = fit.predict(feats[:, n_train:])
    return probe.balanced_accuracy(pred, labels[:, n_train:], 3).numpy()
