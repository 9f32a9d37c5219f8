"""Pruning masks: exact fractions, scopes, bases, and masks held during training."""

import numpy as np
import pytest
import torch

from imbcl import ConfigError, DataConfig, PruneConfig, Replicas
from imbcl.engine import data as D
from imbcl.engine import prune as P
from tests.test_train import spec


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.97])
@pytest.mark.parametrize("scope", ["global", "neuron"])
def test_magnitude_mask_zeroes_exactly_the_smallest(rate, scope):
    coef = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    mask = P.magnitude_mask(coef, rate, scope)
    per = 16 if scope == "neuron" else 5 * 16
    zeros = (mask == 0).reshape(2, -1, per).sum(-1)
    assert (zeros == P.n_pruned(per, rate)).all()
    # every dropped coefficient is no larger than every kept one in the same ranking group
    mag = coef.abs().reshape(2, -1, per)
    flat = mask.reshape(2, -1, per)
    dropped = torch.where(flat == 0, mag, -torch.inf).amax(-1)
    kept = torch.where(flat == 1, mag, torch.inf).amin(-1)
    assert (dropped <= kept).all()


def test_random_mask_counts_match_and_depend_on_the_generator():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    a = P.random_mask((1, 4, 10), 0.5, "neuron", g1)
    b = P.random_mask((1, 4, 10), 0.5, "neuron", g2)
    assert ((a == 0).sum(-1) == 5).all()
    assert not torch.equal(a, b)


@pytest.mark.parametrize("basis", ["coordinate", "feature"])
@pytest.mark.parametrize("mode", ["magnitude", "random"])
def test_pruned_coefficients_stay_zero_during_training(basis, mode):
    reps = Replicas([spec(0), spec(1)])
    reps.run(6, progress=False)
    mask = reps.prune(PruneConfig(rate=0.5, basis=basis, mode=mode))
    assert (mask == 0).float().mean().item() == pytest.approx(0.5)
    reps.run(6, progress=False)
    coef = reps.params["W"]
    if basis == "feature":
        coef = torch.stack([w @ dc.basis for w, dc in zip(coef, reps.dictionaries, strict=True)])
    assert coef[mask == 0].abs().max().item() < 1e-6
    assert coef[mask == 1].abs().min().item() > 0


def test_without_keep_mask_pruned_weights_regrow():
    reps = Replicas([spec(0)])
    reps.run(6, progress=False)
    mask = reps.prune(PruneConfig(rate=0.5, keep_mask=False))
    assert reps.mask is None
    reps.run(3, progress=False)
    assert reps.params["W"][mask == 0].abs().max() > 0


def test_estimated_basis_needs_a_basis_of_the_right_shape():
    reps = Replicas([spec(0)])
    with pytest.raises(ConfigError, match="basis must be given"):
        reps.prune(PruneConfig(basis="estimated"))
    with pytest.raises(ConfigError, match=r"basis must have shape \(1, 16, 16\)"):
        reps.prune(PruneConfig(basis="estimated"), basis=torch.eye(16))


def test_estimate_basis_recovers_sparse_directions():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    sources = rng.laplace(size=(4000, 8))
    basis = P.estimate_basis(sources @ q.T, seed=0)
    assert basis.shape == (8, 8)
    assert np.allclose(np.linalg.norm(basis, axis=0), 1)
    # every true direction is matched by some estimated column
    assert np.abs(q.T @ basis).max(axis=1).min() > 0.95
    with pytest.raises(ValueError, match="tokens must be"):
        P.estimate_basis(np.zeros((3, 8)), seed=0)


def test_pruning_bases_know_what_they_should():
    from imbcl.engine.prune import pruning_basis

    cfg = DataConfig(d=16, k_maj=2, k_min=2, n_corr=3)
    dics = [D.make_dictionary(cfg, s) for s in (0, 1)]
    for kind in ("feature", "feature_random", "feature_noise"):
        b = pruning_basis(kind, dics, [0, 1])
        assert b.shape == (2, 16, 16)
        assert torch.allclose(b[0].T @ b[0], torch.eye(16), atol=1e-5)
        assert torch.allclose(b[0][:, :4], dics[0].features, atol=1e-6)  # features first
    noise = pruning_basis("feature_noise", dics, [0, 1])
    assert torch.allclose(noise[1][:, 4:7], dics[1].noise_dirs, atol=1e-6)
    rand = pruning_basis("feature_random", dics, [0, 1])
    assert not torch.allclose(rand[0][:, 4:], dics[0].basis[:, 4:], atol=1e-2)
    assert pruning_basis("coordinate", dics, [0, 1]) is None
    with pytest.raises(ConfigError, match="basis must be given"):
        pruning_basis("estimated", dics, [0, 1])


def test_branches_continue_their_run_on_its_batches():
    base = Replicas([spec(0), spec(1)])
    base.run(4, progress=False)
    alone = base.copy()
    alone.run(6, progress=False)
    br = base.branches(3)
    assert br.n_replicas == 6 and br.chunk % 3 == 0 and br.data_leader == [0, 0, 0, 3, 3, 3]
    assert br.data_gens[0] is br.data_gens[2] and br.data_gens[0] is not br.data_gens[3]
    twin = br.copy()  # a copy keeps the branches' shared streams
    assert twin.data_gens[1] is twin.data_gens[0] and twin.data_gens[0] is not br.data_gens[0]
    br.run(6, progress=False)
    for r in range(2):
        for j in range(3):
            assert torch.allclose(br.params["W"][3 * r + j], alone.params["W"][r], atol=1e-6)


def test_pruning_some_branches_leaves_the_others_untouched():
    br = Replicas([spec(0)]).branches(3)
    br.run(4, progress=False)
    mask = br.prune(PruneConfig(rate=0.5, basis="feature"), replicas=[1])
    assert mask.shape == (1, *br.params["W"].shape[1:])
    br.prune(PruneConfig(rate=0.3, mode="random"), replicas=[2])  # coordinates
    br.run(5, progress=False)
    w = br.params["W"]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    coef = w[1] @ br.pruned.basis_inv_t[1]  # held in the feature basis
    assert coef[mask[0] == 0].abs().max() < 1e-6
    assert (br.pruned.mask[0] == 1).all() and (w[2][br.pruned.mask[2] == 0] == 0).all()
    unpruned = Replicas([spec(0)])
    unpruned.run(9, progress=False)
    assert torch.allclose(w[0], unpruned.params["W"][0], atol=1e-6)  # branch 0: never pruned
