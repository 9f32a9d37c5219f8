"""The frozen-attention fast path computes the same step as the autograd path."""

import numpy as np
import pytest
import torch

from imbcl import ConfigError, DataConfig, ModelConfig, PruneConfig, Replicas, RunSpec, TrainConfig
from imbcl.engine import model as M
from imbcl.engine.loss import info_nce_grads, symmetric_info_nce


def specs(**model):
    data = DataConfig(d=16, k_maj=2, k_min=2, n_corr=2, seq_len=5)
    train = TrainConfig(steps=6, batch=32, record_every=3, lr=0.3)
    return [RunSpec(data, ModelConfig(m=8, ramp_steps=4, **model), train, seed=s) for s in (0, 1)]


def test_token_mix_regroups_attention():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 16, generator=g)
    wq, wk, wv = (torch.randn(2, 16, 16, generator=g) * 0.3 for _ in range(3))
    want = M.attention(x, wq, wk, wv)
    form = M.attention_form(wq, wk)
    assert M.scalar_form(form) is None
    got = M.token_mix(x, form) @ wv.transpose(1, 2)[:, None]
    assert torch.allclose(got, want, atol=1e-5)
    eye = torch.eye(16).expand(2, 16, 16) * torch.tensor([0.1, 0.3])[:, None, None]
    c = M.scalar_form(M.attention_form(eye, eye))
    assert torch.allclose(c, torch.tensor([0.01, 0.09]))
    scaled = M.token_mix(x, M.attention_form(eye, eye), c)
    assert torch.allclose(
        scaled, M.attention(x, eye, eye, torch.eye(16).expand(2, 16, 16)), atol=1e-5
    )


def test_info_nce_grads_match_autograd_with_stop_gradient():
    g = torch.Generator().manual_seed(1)
    fa, fb = torch.randn(2, 7, 4, generator=g), torch.randn(2, 7, 4, generator=g)
    tau = torch.tensor([1.0, 0.5])
    a, b = fa.clone().requires_grad_(), fb.clone().requires_grad_()
    loss = symmetric_info_nce(a, b, tau)
    ga, gb = torch.autograd.grad(loss.sum(), [a, b])
    nce, da, db = info_nce_grads(fa, fb, tau)
    assert torch.allclose(nce, loss.detach(), atol=1e-6)
    assert torch.allclose(da, ga, atol=1e-6) and torch.allclose(db, gb, atol=1e-6)


def twins(prepare=lambda reps: None, **model):
    """The same replicas with the fused and with the autograd step, each prepared alike."""
    out = []
    for kind in ("fused", "autograd"):
        reps = Replicas(specs(**model), step=kind)
        prepare(reps)
        out.append(reps)
    return out


def test_fused_step_equals_autograd_step():
    a, b = twins(bias="ramp")
    fast, slow = a.run(6, progress=False), b.run(6, progress=False)
    assert np.abs(fast.align - slow.align).max() < 1e-5
    assert np.nanmax(np.abs(fast.loss - slow.loss)) < 1e-5
    assert torch.allclose(a.params["W"], b.params["W"], atol=1e-6)


def test_fused_step_with_general_frozen_attention_and_a_kept_mask():
    def prepare(reps):
        g = torch.Generator().manual_seed(2)
        reps.params["WQ"] += 0.05 * torch.randn(2, 16, 16, generator=g)
        reps.run(3, progress=False)
        reps.prune(PruneConfig(rate=0.5, basis="feature"))

    a, b = twins(prepare, attn_scale=0.5)
    fast, slow = a.run(4, progress=False), b.run(4, progress=False)
    assert np.abs(fast.align - slow.align).max() < 1e-5
    assert torch.allclose(a.params["W"], b.params["W"], atol=1e-6)
    coef = a.params["W"] @ a.pruned.basis_inv_t  # the pruned coefficients stay zero
    assert coef[a.mask == 0].abs().max() < 1e-6 and (a.mask == 0).any()


def test_step_kind_is_checked():
    with pytest.raises(ConfigError, match="step must be one of"):
        Replicas(specs(), step="fast")
    with pytest.raises(ConfigError, match="needs frozen attention"):
        Replicas(specs(train_attention=True), step="fused")
    assert Replicas(specs(train_attention=True)).step_kind == "autograd"
    assert Replicas(specs()).step_kind == "fused"
