"""Augmentations: drawn once per seed, applied identically to every replica."""

from __future__ import annotations

import pytest
import torch

from imbcl.images.augment import apply_augment, sample_augment


@pytest.mark.parametrize("dataset, shape", [("digits", (1, 8, 8)), ("cifar10", (3, 32, 32))])
def test_augment_deterministic_and_shaped(dataset, shape):
    x = torch.rand(2, 4, *shape)
    draw = [sample_augment(dataset, 4, shape, torch.Generator().manual_seed(7)) for _ in "ab"]
    assert all(torch.equal(draw[0][k], draw[1][k]) for k in draw[0])
    params = {k: v.expand(2, *v.shape) for k, v in draw[0].items()}
    out = apply_augment(dataset, x, params)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)
    # the same draw applied to two replicas holding the same images gives the same views
    same = apply_augment(dataset, x[:1].expand(2, *x.shape[1:]), params)
    assert torch.equal(same[0], same[1])


def test_digit_augment_identity_parameters_keep_the_image():
    x = torch.rand(1, 3, 1, 8, 8)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(1, 3, 2, 3)
    params = {"theta": eye, "keep": torch.ones(1, 3, 1, 8, 8), "noise": torch.zeros(1, 3, 1, 8, 8)}
    assert torch.allclose(apply_augment("digits", x, params), x, atol=1e-5)
