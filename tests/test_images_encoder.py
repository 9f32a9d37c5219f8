"""The image encoder: tokens from images, representation and projection shapes."""

from __future__ import annotations

import pytest
import torch

from imbcl.images import datasets, encoder
from imbcl.images.config import SimCLRConfig

TINY = dict(d=8, m=8, proj=4, batch=16, record_every=1)


def test_to_tokens_rows_and_patches():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    rows = encoder.to_tokens(x, (1, 8))
    assert rows.shape == (2, 8, 8)
    assert torch.equal(rows[1, 5], x[1, 0, 5])
    y = torch.randn(3, 32, 32)
    patches = encoder.to_tokens(y, (4, 4))
    assert patches.shape == (64, 48)
    assert torch.equal(patches[1 * 8 + 2], y[:, 4:8, 8:12].reshape(-1))  # patch row 1, col 2
    with pytest.raises(ValueError, match="must tile"):
        encoder.to_tokens(y, (5, 4))


@pytest.mark.parametrize("dataset", datasets.DATASETS)
def test_token_shape_matches_to_tokens(dataset):
    x = torch.rand(2, *datasets.IMAGE_SHAPE[dataset])
    assert encoder.to_tokens(x, encoder.PATCH[dataset]).shape[1:] == encoder.token_shape(dataset)
    assert encoder.token_shape("digits") == (8, 8) and encoder.token_shape("cifar10") == (64, 48)


def test_represent_shapes():
    cfg = SimCLRConfig(**TINY)
    params = encoder.init_params(0, n_tokens=8, token_dim=8, cfg=cfg)
    f = encoder.represent(params, torch.rand(1, 5, 8, 8))
    assert f.shape == (1, 5, 8) and (f >= 0).all()
    z = encoder.project(params, f)
    assert z.shape == (1, 5, 4) and torch.allclose(z.norm(dim=-1), torch.ones(1, 5))
