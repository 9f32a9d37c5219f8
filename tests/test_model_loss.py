"""BReLU, the encoder's shapes, InfoNCE against an independent formulation, stop-gradient."""

import torch
from torch.nn import functional as F

from imbcl.engine import loss as L
from imbcl.engine import model as M


def test_brelu_values():
    s = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    out = M.brelu(s, torch.tensor(1.0))
    assert torch.equal(out, torch.tensor([-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]))


def test_brelu_gradient_is_one_outside_the_dead_zone():
    s = torch.tensor([-3.0, -0.5, 0.5, 3.0], requires_grad=True)
    M.brelu(s, torch.tensor(1.0)).sum().backward()
    assert torch.equal(s.grad, torch.tensor([1.0, 0.0, 0.0, 1.0]))


def test_encoder_shapes():
    R, n, Lt, d, m = 3, 5, 4, 8, 6
    x = torch.randn(R, n, Lt, d)
    eye = torch.eye(d).expand(R, d, d)
    params = {"W": torch.randn(R, m, d), "WQ": eye, "WK": eye, "WV": eye}
    f = M.encode(x, params, torch.zeros(R, m))
    assert f.shape == (R, n, m)
    h = M.attention(x, eye, eye, eye)
    assert h.shape == x.shape
    # attention outputs are convex combinations of the value vectors
    assert torch.allclose(
        M.attention(torch.ones(1, 1, Lt, d), eye[:1], eye[:1], eye[:1]), torch.ones(1, 1, Lt, d)
    )


def test_bias_formula():
    w = torch.tensor([[[3.0, 4.0]]])  # (1, 1, 2), norm 5
    b = M.bias(torch.tensor([2.0]), w, torch.eye(2)[None], torch.tensor([1.5]), d=2)
    assert torch.allclose(b, torch.tensor([[2.0 * 5.0 * 1.5 * (2 / 2) ** 0.5]]))


def test_info_nce_matches_cross_entropy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 7, 5, generator=g), torch.randn(2, 7, 5, generator=g)
    tau = torch.tensor([0.5, 2.0])
    got = L.info_nce(a, b, tau)
    for r in range(2):
        want = F.cross_entropy(a[r] @ b[r].T / tau[r], torch.arange(7))
        assert torch.allclose(got[r], want, atol=1e-6)
    sym = L.symmetric_info_nce(a, b, tau)
    assert torch.allclose(sym, 0.5 * (L.info_nce(a, b, tau) + L.info_nce(b, a, tau)))


def test_stop_gradient_blocks_the_target_branch():
    a = torch.randn(6, 4, requires_grad=True)
    b = torch.randn(6, 4, requires_grad=True)
    L.info_nce(a, b, 1.0).backward()
    assert b.grad is None
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_l2_penalty_per_replica():
    params = {"W": torch.ones(2, 3, 4), "V": torch.ones(2, 2)}
    assert torch.allclose(L.l2_penalty(params, 0.1), torch.tensor([0.05 * 14, 0.05 * 14]))
