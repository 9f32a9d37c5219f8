"""Long-tailed splits: class profiles, per-seed plans, few-shot draws, class-size bounds."""

from __future__ import annotations

import numpy as np
import pytest

from imbcl.engine.config import ConfigError
from imbcl.images import datasets, splits
from tests.test_images_datasets import write_fake_cifar


def test_longtail_counts_profile():
    counts = splits.longtail_counts(120, 10.0, 10)
    assert counts[0] == 120 and counts[-1] == 12
    assert np.all(np.diff(counts) <= 0)
    assert np.array_equal(splits.longtail_counts(50, 1.0, 4), [50, 50, 50, 50])
    with pytest.raises(ConfigError, match=r"rho must be >= 1 \(got 0.5\)"):
        splits.longtail_counts(120, 0.5, 10)


def test_balanced_counts_sum_and_spread():
    order = np.array([3, 1, 0, 2])
    counts = splits.balanced_counts(10, order)
    assert counts.sum() == 10 and counts.max() - counts.min() == 1
    assert counts[3] == 3 and counts[1] == 3 and counts[0] == 2


def _digit_split(seed=0, **kw):
    labels = datasets.load_digits().labels
    args = dict(rho=10.0, n_max=120, n_probe=100, n_test=50) | kw
    return labels, splits.make_split(labels, 10, seed=seed, **args)


def test_split_profile_balance_and_disjoint_test():
    labels, split = _digit_split(seed=3)
    per_class = np.bincount(labels[split.pretrain], minlength=10)
    assert np.array_equal(per_class[split.order], splits.longtail_counts(120, 10.0, 10))
    assert np.array_equal(per_class, split.counts)
    bal = np.bincount(labels[split.balanced], minlength=10)
    assert bal.sum() == per_class.sum() and bal.max() - bal.min() <= 1
    assert np.all(np.bincount(labels[split.probe], minlength=10) == 100)
    assert np.all(np.bincount(labels[split.test], minlength=10) == 50)
    used = np.concatenate([split.pretrain, split.balanced, split.probe])
    assert not np.intersect1d(split.test, used).size
    assert np.array_equal(split.head, split.order[:3]) and np.array_equal(
        split.tail, split.order[-3:]
    )
    assert per_class[split.head].min() > per_class[split.tail].max()


def test_split_is_a_function_of_the_seed():
    _, a = _digit_split(seed=1)
    _, b = _digit_split(seed=1)
    _, c = _digit_split(seed=2)
    assert np.array_equal(a.pretrain, b.pretrain) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.order, c.order)


def test_split_too_large_request_is_clear():
    with pytest.raises(ConfigError, match="long-tailed set needs 150 images of class"):
        _digit_split(n_max=150)


def test_few_shot_draws_are_balanced():
    labels = np.repeat(np.arange(4), 6)
    draws = splits.few_shot_draws(labels, k=2, n_draws=3, seed=0)
    assert draws.shape == (3, 8)
    for row in draws:
        assert np.array_equal(np.bincount(labels[row]), [2, 2, 2, 2])
    assert not np.array_equal(draws[0], draws[1]) or not np.array_equal(draws[1], draws[2])


def test_class_sizes_of_digits_are_checked_before_any_split():
    """Digits: the fewest images of a class is 174 (digit 8), 124 after 50 test images."""
    digits = datasets.load_digits()
    assert np.bincount(digits.labels).min() == 174
    counts = ("digits", digits.class_counts, None)
    assert np.array_equal(datasets.class_counts("digits")[0], digits.class_counts)
    splits.check_class_sizes(*counts, n_max=124, n_probe=124, n_test=50)
    for seed in range(5):  # at the bound every seed's split can be drawn
        _digit_split(seed=seed, n_max=124, n_probe=124)
    message = r"n_test must be <= 174, the fewest images of one digits class \(got 175\)"
    with pytest.raises(ConfigError, match=message):
        splits.check_class_sizes(*counts, n_max=1, n_probe=1, n_test=175)
    left = "the fewest images of one digits class left after the n_test = 50 held-out images"
    with pytest.raises(ConfigError, match=rf"^n_max must be <= 124, {left} \(got 125\)$"):
        splits.check_class_sizes(*counts, n_max=125, n_probe=100, n_test=50)
    with pytest.raises(ConfigError, match=rf"^n_probe must be <= 124, {left} \(got 130\)$"):
        splits.check_class_sizes(*counts, n_max=120, n_probe=130, n_test=50)


def test_class_sizes_of_a_set_with_its_own_test_split(tmp_path):
    write_fake_cifar(tmp_path)  # 10 training and 2 test images per class
    pool, test = datasets.load_cifar10(root=tmp_path)
    counts = ("cifar10", pool.class_counts, test.class_counts)
    splits.check_class_sizes(*counts, n_max=10, n_probe=10, n_test=2)
    in_test = r"the fewest images of one cifar10 class in its test set \(got 3\)"
    with pytest.raises(ConfigError, match=rf"^n_test must be <= 2, {in_test}$"):
        splits.check_class_sizes(*counts, n_max=4, n_probe=4, n_test=3)
    in_train = r"the fewest images of one cifar10 class in its training set \(got 11\)"
    with pytest.raises(ConfigError, match=rf"^n_max must be <= 10, {in_train}$"):
        splits.check_class_sizes(*counts, n_max=11, n_probe=4, n_test=2)


def test_cifar_class_counts_are_known_without_the_data():
    pool, test = datasets.class_counts("cifar10")
    assert pool.tolist() == [5000] * 10 and test.tolist() == [1000] * 10
    message = r"^n_max must be <= 5000, the fewest images of one cifar10 class in its training"
    with pytest.raises(ConfigError, match=message):
        splits.check_class_sizes("cifar10", pool, test, n_max=5001, n_probe=500, n_test=1000)
