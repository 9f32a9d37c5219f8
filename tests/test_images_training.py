"""Stacked replicas of every method: random streams, pruning masks, paired training, checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from imbcl.engine.config import ConfigError
from imbcl.engine.streams import Stream, generator
from imbcl.images import analysis, training
from imbcl.images.config import ImageDataConfig, Method, SimCLRConfig, make_methods
from imbcl.images.datasets import load_cifar10, load_dataset
from imbcl.images.encoder import init_params
from tests.test_images_datasets import write_fake_cifar

#: A tiny encoder; the SDCLR branch mask is refreshed every step of these short runs.
TINY = dict(d=8, m=8, proj=4, batch=16, record_every=1, sdclr_every=1)
DIGITS = ImageDataConfig(n_max=20, n_probe=10, n_test=5, k_shot=2, n_draws=2)


def _experiment(methods, steps=4, warmup=0.5, seeds=(0, 1), data=DIGITS, **kw):
    cfg = SimCLRConfig(steps=steps, warmup=warmup, **(TINY | kw))
    return training.build(data, cfg, methods, list(seeds), load_dataset(data.dataset))


def test_magnitude_masks_rank_jointly_across_tensors():
    params = {"A": torch.tensor([[[1.0, -5.0], [0.1, 3.0]]]), "B": torch.tensor([[[-0.2, 4.0]]])}
    masks = training.magnitude_masks(params, ("A", "B"), torch.tensor([0.5]))
    assert torch.equal(masks["A"], torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    assert torch.equal(masks["B"], torch.tensor([[[0.0, 1.0]]]))
    rnd = training.random_masks(params, ("A", "B"), torch.tensor([0.5]), [0])
    assert sum(int((m == 0).sum()) for m in rnd.values()) == 3


def test_random_streams_are_distinct_and_deterministic():
    def first_draws(seed):
        return {
            "init": init_params(seed, 8, 8, SimCLRConfig(**TINY))["E"].flatten()[:8],
            "mask": torch.randn(8, generator=generator(seed, Stream.IMAGE_MASK)),
            **{
                f"step {t}": torch.randn(8, generator=training.step_generator(seed, t))
                for t in (0, 1, 3, 11)
            },
        }

    for seed in (0, 1, 7):
        draws = first_draws(seed)
        assert all(torch.equal(v, first_draws(seed)[k]) for k, v in draws.items())
        unit = {k: v / v.norm() for k, v in draws.items()}  # init is scaled N(0, 1)
        for a, b in itertools.combinations(unit, 2):
            assert not torch.allclose(unit[a], unit[b], atol=1e-3), (seed, a, b)
    # the random masks come from Stream.IMAGE_MASK: the same draw for the same seed
    params = {"W": torch.randn(1, 4, 4)}
    masks = [
        training.random_masks(params, ("W",), torch.tensor([0.5]), [s])["W"] for s in (3, 3, 4)
    ]
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


def test_replicas_of_a_seed_are_paired_until_pruning(monkeypatch):
    """The weights just before the prune step (step 3 of 4): SimCLR, prune and random
    replicas of a seed are equal; SDCLR and balanced are not."""
    before_pruning = {}
    prune_once = training._prune_once

    def snapshot_then_prune(exp):
        before_pruning["W"] = exp.params["W"].detach().clone()
        prune_once(exp)

    monkeypatch.setattr(training, "_prune_once", snapshot_then_prune)
    methods = make_methods("0.5", "0.5", "0.5")  # SimCLR, prune, random, SDCLR, balanced
    training.train(_experiment(methods, steps=4, warmup=0.75))  # prune step 3
    w = before_pruning["W"]
    M = len(methods)
    for s in range(2):
        simclr = w[s * M]
        assert torch.equal(simclr, w[s * M + 1]) and torch.equal(simclr, w[s * M + 2])
        assert not torch.equal(simclr, w[s * M + 3])  # SDCLR's pruned branch changes training
        assert not torch.equal(simclr, w[s * M + 4])  # balanced data
    assert not torch.equal(w[0], w[M])  # different seeds


def test_pruning_mask_is_kept_and_training_is_deterministic():
    methods = [Method("simclr"), Method("magnitude", 0.75), Method("random", 0.75)]
    a = training.train(_experiment(methods, steps=4, warmup=0.5))
    b = training.train(_experiment(methods, steps=4, warmup=0.5))
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
    w = a.params["W"].detach()
    zero = (w == 0).float().mean(dim=(1, 2))
    assert zero[0] == 0 and zero[1] == 0.75 and zero[2] == 0.75
    assert torch.equal(a.keep["W"][1] == 0, w[1] == 0)
    assert not torch.equal(a.keep["W"][1], a.keep["W"][2])
    losses = np.array(a.losses)
    assert losses.shape == (4, 6) and np.isfinite(losses).all()


def test_build_checks_settings_against_methods_and_images():
    with pytest.raises(ConfigError, match=r"^warmup must put the prune step inside training"):
        _experiment([Method("simclr"), Method("random", 0.5)], steps=3, warmup=0.99)
    with pytest.raises(ConfigError, match=r"^sdclr_every must be < steps = 3"):
        _experiment([Method("simclr"), Method("sdclr", 0.5)], steps=3, sdclr_every=3)
    too_many = DIGITS.replace(n_max=125, n_test=50)
    with pytest.raises(ConfigError, match=r"^n_max must be <= 124, the fewest images of one"):
        _experiment([Method("simclr")], data=too_many)
    cifar = DIGITS.replace(dataset="cifar10")
    with pytest.raises(ConfigError, match=r"^sets must hold 'cifar10' images \(got 'digits'\)$"):
        training.build(cifar, SimCLRConfig(**TINY), [Method("simclr")], [0], load_dataset("digits"))


def test_cifar_path_end_to_end_on_a_fake_folder(tmp_path):
    write_fake_cifar(tmp_path)
    data = ImageDataConfig(
        dataset="cifar10", rho=2, n_max=4, n_probe=4, n_test=2, k_shot=1, n_draws=1
    )
    cfg = SimCLRConfig(steps=2, **(TINY | {"batch": 8}))
    methods = [Method("simclr"), Method("sdclr", 0.5)]
    exp = training.build(data, cfg, methods, [0], load_cifar10(root=tmp_path))
    assert exp.pool.shape == (100, 3, 32, 32) and exp.params["E"].shape == (2, 48, 8)
    res = analysis.evaluate(training.train(exp))
    assert len(res) == 4 and np.isfinite(res[list(analysis.METRICS)].to_numpy()).all()
