"""The sparse-coding generator and the masking augmentation."""

import math

import numpy as np
import torch

from imbcl import DataConfig
from imbcl.engine import data as D
from imbcl.engine.streams import Stream, generator


def test_dictionary_is_orthonormal_and_seeded():
    cfg = DataConfig()
    dic = D.make_dictionary(cfg, seed=3)
    assert dic.basis.shape == (64, 64) and dic.features.shape == (64, 16)
    assert torch.allclose(dic.basis.T @ dic.basis, torch.eye(64), atol=1e-5)
    assert dic.noise_dirs.shape == (64, cfg.n_corr)
    assert torch.equal(dic.basis, D.make_dictionary(cfg, seed=3).basis)
    assert not torch.equal(dic.basis, D.make_dictionary(cfg, seed=4).basis)


def test_feature_frequencies_match_q_and_q_over_rho():
    cfg = DataConfig(q=0.2, rho=10)
    n = 200_000
    dic = D.make_dictionary(cfg, 0)
    _, z = D.sample_batch(cfg, dic, n, generator(0, Stream.DATA))
    freq = (z != 0).float().mean(0).numpy()
    expected = np.array([0.2] * 8 + [0.02] * 8)
    # 5 binomial standard errors per feature
    tol = 5 * np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) < tol), (freq, expected)
    signs = z[z != 0].float().mean().item()
    assert abs(signs) < 5 / math.sqrt((z != 0).sum().item())


def test_tokens_shape_and_noise_scale():
    cfg = DataConfig(sigma=1.0, n_corr=0)
    dic = D.make_dictionary(cfg, 0)
    x, z = D.sample_batch(cfg, dic, 4000, generator(0, Stream.DATA), probs=torch.zeros(cfg.k))
    assert (z == 0).all()
    assert x.shape == (4000, cfg.seq_len, cfg.d)
    # pure noise: per-coordinate variance sigma^2 / d
    assert abs(x.var().item() - 1 / 64) < 0.05 / 64


def test_tokens_carry_features_with_p_token():
    cfg = DataConfig(sigma=0.0, sigma_corr=0.0, p_token=0.75)
    dic = D.make_dictionary(cfg, 0)
    only_first = torch.zeros(cfg.k)
    only_first[0] = 1.0
    x, z = D.sample_batch(cfg, dic, 20000, generator(0, Stream.DATA), probs=only_first)
    assert (z[:, 0].abs() == 1).all() and (z[:, 1:] == 0).all()
    coef = x @ dic.features  # (n, L, K)
    assert torch.allclose(coef[..., 1:], torch.zeros(()), atol=1e-5)
    assert abs((coef[..., 0].abs() > 0.5).float().mean().item() - 0.75) < 0.01


def test_noise_directions_are_dense_in_the_complement_of_the_features():
    cfg = DataConfig(n_corr=4)
    dic = D.make_dictionary(cfg, seed=3)
    u = dic.noise_dirs
    assert torch.allclose(u.T @ u, torch.eye(4), atol=1e-5)
    assert (dic.features.T @ u).abs().max() < 1e-5  # orthogonal to every feature
    # spread over the dictionary's other columns: no column carries a whole direction
    share = (dic.basis[:, cfg.k :].T @ u) ** 2  # (d - K, n_corr), each column sums to 1
    assert torch.allclose(share.sum(0), torch.ones(4), atol=1e-5)
    assert share.max() < 0.5


def test_mask_views_are_complementary_and_scaled():
    x = torch.randn(10, 4, 64)
    for granularity in ("token", "sample"):
        a, b = D.mask_views(x, generator(0, Stream.DATA), granularity)
        assert torch.allclose(a + b, 2 * x)
        assert not ((a != 0) & (b != 0)).any()
    keep = (D.mask_views(x, generator(0, Stream.DATA), "sample")[0] != 0).float()
    assert torch.equal(keep[:, :1].expand_as(keep), keep)  # one mask per sample
    keep = (D.mask_views(x, generator(0, Stream.DATA), "token")[0] != 0).float()
    assert not torch.equal(keep[:, :1].expand_as(keep), keep)  # tokens differ
    assert abs(keep.mean().item() - 0.5) < 0.02


def test_stacked_draws_give_each_replica_its_own_batch():
    cfgs = [DataConfig(rho=4), DataConfig(rho=16, sigma=2.0)]
    dics = [D.make_dictionary(c, s) for c, s in zip(cfgs, (0, 1), strict=True)]
    gens = [generator(s, Stream.DATA) for s in (0, 1)]
    stacked = D.Draws.empty(cfgs[0], (2, 64), views=True, device="cpu")
    for i, g in enumerate(gens):
        stacked.part(i).fill(g)
    features = torch.stack([d.features for d in dics])
    noise = torch.stack([d.noise_dirs for d in dics])
    x, z = D.tokens(cfgs, features, noise, stacked)
    for i, s in enumerate((0, 1)):  # the same as each replica alone
        alone, z_alone = D.sample_batch(cfgs[i], dics[i], 64, generator(s, Stream.DATA))
        assert torch.equal(z[i], z_alone)
        assert torch.allclose(x[i], alone, atol=1e-6)
