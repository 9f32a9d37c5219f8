"""Long-tailed splits of an image set: which images pre-train, probe and test, per seed.

A :class:`Split` fixes, per seed, which images pre-train the encoder (long-tailed, class
order permuted by the seed; and a balanced reference of the same size), which labelled images
train the linear probes (balanced) and which are held out for testing (balanced). Every
split is a function of the seed only (stream ``Stream.IMAGE_SPLIT``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imbcl.engine.config import ConfigError
from imbcl.engine.streams import Stream, numpy_rng


def longtail_counts(n_max: int, rho: float, n_classes: int) -> np.ndarray:
    """(C,) images per class rank c: n_c = floor(n_max * rho^(-c / (C - 1))), at least 1."""
    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2 (got {n_classes})")
    if rho < 1:
        raise ConfigError(f"rho must be >= 1 (got {rho})")
    if n_max < 1:
        raise ConfigError(f"n_max must be >= 1 (got {n_max})")
    c = np.arange(n_classes)
    return np.maximum(1, np.floor(n_max * rho ** (-c / (n_classes - 1)) + 1e-9)).astype(int)


def balanced_counts(total: int, order: np.ndarray) -> np.ndarray:
    """(C,) a balanced split of ``total`` images, indexed by class; the ``total mod C`` extra
    images go to the first classes of ``order``."""
    n_classes = len(order)
    counts = np.full(n_classes, total // n_classes)
    counts[order[: total % n_classes]] += 1
    return counts


def check_class_sizes(
    name: str,
    pool_counts: np.ndarray,
    test_counts: np.ndarray | None,
    n_max: int,
    n_probe: int,
    n_test: int,
) -> None:
    """ConfigError unless every seed's split of data set ``name`` can be drawn.

    ``pool_counts`` (C,) are the images per class of the pool, ``test_counts`` (C,) those of
    the data set's own test set (None: the test split comes from the pool), e.g. from
    :func:`imbcl.images.datasets.class_counts`. The held-out split takes ``n_test`` images of
    every class; what is left of the pool must hold ``n_max`` images of any class (the most
    frequent class is the seed's choice) and ``n_probe`` of every class. Checked on the
    smallest class, so that no seed fails halfway through an experiment.
    """
    source = pool_counts if test_counts is None else test_counts
    fewest = int(np.min(source))
    where = f"one {name} class" + ("" if test_counts is None else " in its test set")
    if n_test > fewest:
        raise ConfigError(
            f"n_test must be <= {fewest}, the fewest images of {where} (got {n_test})"
        )
    fewest_left = int(np.min(pool_counts)) - (n_test if test_counts is None else 0)
    where = f"one {name} class " + (
        f"left after the n_test = {n_test} held-out images"
        if test_counts is None
        else "in its training set"
    )
    for param, value in (("n_max", n_max), ("n_probe", n_probe)):
        if value > fewest_left:
            raise ConfigError(
                f"{param} must be <= {fewest_left}, the fewest images of {where} (got {value})"
            )


@dataclass(frozen=True)
class Split:
    """One seed's data plan. Index arrays point into the pool (``test`` into the test set,
    or into the pool when the data set has none).

    ``order`` (C,) lists classes from most to least frequent in the long-tailed pre-training
    set; ``head`` / ``tail`` are its first / last ``group`` classes.
    """

    seed: int
    order: np.ndarray
    counts: np.ndarray
    pretrain: np.ndarray
    balanced: np.ndarray
    probe: np.ndarray
    test: np.ndarray
    head: np.ndarray
    tail: np.ndarray


def _take_per_class(rng, labels, candidates, counts, what: str) -> np.ndarray:
    """Indices drawn without replacement from ``candidates``: counts[c] of class c."""
    chosen = []
    for c, k in enumerate(counts):
        pool = candidates[labels[candidates] == c]
        if k > len(pool):
            raise ConfigError(
                f"{what} needs {k} images of class {c} but only {len(pool)} are available; "
                f"lower n_max / n_probe / n_test"
            )
        chosen.append(rng.choice(pool, size=int(k), replace=False))
    return np.sort(np.concatenate(chosen))


def make_split(
    labels: np.ndarray,
    n_classes: int,
    rho: float,
    n_max: int,
    n_probe: int,
    n_test: int,
    seed: int,
    test_labels: np.ndarray | None = None,
    group: int | None = None,
) -> Split:
    """The long-tailed plan for one seed.

    ``labels`` (N,) are the pool's labels. ``n_test`` images per class are held out (from
    ``test_labels`` if given, else from the pool); of the rest, class ``order[c]`` gives
    ``longtail_counts(n_max, rho, C)[c]`` images to pre-training, a balanced reference of the
    same total is drawn independently, and ``n_probe`` per class form the probe set.
    ``group`` (default C // 3) classes form the head and the tail.

    The test images are disjoint from all the others. The pre-training, balanced and probe
    sets are each drawn from all the remaining images, so they may overlap: the linear probe
    may be trained on images the encoder saw (unlabelled) during pre-training, as in the usual
    linear evaluation of self-supervised encoders. (On digits they must overlap: a class has
    about 130 images after the test split, fewer than n_max + n_probe.)
    """
    group = n_classes // 3 if group is None else group
    if not 1 <= group <= n_classes // 2:
        raise ConfigError(f"group must be in [1, {n_classes // 2}] (got {group})")
    rng = numpy_rng(seed, Stream.IMAGE_SPLIT)
    order = rng.permutation(n_classes)
    all_idx = np.arange(len(labels))
    full = np.full(n_classes, n_test)
    if test_labels is None:
        test = _take_per_class(rng, labels, all_idx, full, "the test split")
        rest = np.setdiff1d(all_idx, test)
    else:
        test = _take_per_class(
            rng, test_labels, np.arange(len(test_labels)), full, "the test split"
        )
        rest = all_idx
    counts = np.zeros(n_classes, dtype=int)
    counts[order] = longtail_counts(n_max, rho, n_classes)
    pretrain = _take_per_class(rng, labels, rest, counts, "the long-tailed set")
    balanced = _take_per_class(
        rng, labels, rest, balanced_counts(int(counts.sum()), order), "the balanced set"
    )
    probe = _take_per_class(rng, labels, rest, np.full(n_classes, n_probe), "the probe set")
    return Split(
        seed, order, counts, pretrain, balanced, probe, test, order[:group], order[-group:]
    )


def few_shot_draws(labels: np.ndarray, k: int, n_draws: int, seed: int) -> np.ndarray:
    """(n_draws, C*k) positions into ``labels`` (the probe set's labels): k per class each."""
    rng = numpy_rng(seed, Stream.FEW_SHOT)
    n_classes = int(labels.max()) + 1
    everything = np.arange(len(labels))
    return np.stack(
        [
            _take_per_class(rng, labels, everything, np.full(n_classes, k), "the few-shot probe")
            for _ in range(n_draws)
        ]
    )
