"""SimCLR / pruning / SDCLR replicas: configs, masks, paired training, probes, tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from imbcl import simclr as sc
from imbcl.engine.config import ConfigError
from imbcl.engine.streams import Stream, generator
from tests.test_images import write_fake_cifar

TINY = dict(d=8, m=8, proj=4, batch=16, record_every=1)
DIGITS = sc.ImageDataConfig(n_max=20, n_probe=10, n_test=5, k_shot=2, n_draws=2)


def _experiment(methods, steps=4, warmup=0.5, seeds=(0, 1), data=DIGITS, **kw):
    cfg = sc.SimCLRConfig(steps=steps, warmup=warmup, **(TINY | kw))
    return sc.build(data, cfg, methods, list(seeds), sc.load(data))


def test_methods_and_names():
    names = [m.name for m in sc.make_methods("0.5,0.9", "0.5", "0.9")]
    assert names == ["SimCLR", "prune 0.5", "prune 0.9", "random 0.5", "SDCLR 0.9", "balanced"]
    assert [m.name for m in sc.make_methods("0.5", "", "")] == ["SimCLR", "prune 0.5", "balanced"]
    with pytest.raises(ConfigError, match=r"^rates values must be < 1 \(got 1.0\)$"):
        sc.make_methods("0.5,1", "", "")


def test_config_errors_are_clear():
    with pytest.raises(
        ConfigError, match=r"dataset must be one of 'digits', 'cifar10' \(got 'mnist'\)"
    ):
        sc.ImageDataConfig(dataset="mnist")
    with pytest.raises(ConfigError, match=r"k_shot must be <= n_probe = 3 \(got 5\)"):
        sc.ImageDataConfig(n_probe=3, k_shot=5)
    with pytest.raises(ConfigError, match="prune must name parameters among"):
        sc.SimCLRConfig(prune="W,G1")
    with pytest.raises(ConfigError, match=r"^prune names W more than once \(got 'W, E,W'\)$"):
        sc.SimCLRConfig(prune="W, E,W")
    with pytest.raises(ConfigError, match=r"n_seeds must be >= 1 \(got 0\)"):
        sc.check_seeds(0)
    with pytest.raises(ConfigError, match=r"first_seed must be >= 0 \(got -1\)"):
        sc.check_seeds(2, -1)
    assert sc.check_seeds(3, 2) == [2, 3, 4]
    assert sc.check_seeds("2") == [0, 1]  # papermill may pass a string


def test_magnitude_masks_rank_jointly_across_tensors():
    params = {"A": torch.tensor([[[1.0, -5.0], [0.1, 3.0]]]), "B": torch.tensor([[[-0.2, 4.0]]])}
    masks = sc.magnitude_masks(params, ("A", "B"), torch.tensor([0.5]))
    assert torch.equal(masks["A"], torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    assert torch.equal(masks["B"], torch.tensor([[[0.0, 1.0]]]))
    rnd = sc.random_masks(params, ("A", "B"), torch.tensor([0.5]), [0])
    assert sum(int((m == 0).sum()) for m in rnd.values()) == 3


def test_random_streams_are_distinct_and_deterministic():
    def first_draws(seed):
        return {
            "init": sc.init_params(seed, 8, 8, sc.SimCLRConfig(**TINY))["E"].flatten()[:8],
            "mask": torch.randn(8, generator=generator(seed, Stream.IMAGE_MASK)),
            **{
                f"step {t}": torch.randn(8, generator=sc.step_generator(seed, t))
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
    masks = [sc.random_masks(params, ("W",), torch.tensor([0.5]), [s])["W"] for s in (3, 3, 4)]
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


def test_represent_shapes():
    cfg = sc.SimCLRConfig(**TINY)
    params = sc.init_params(0, n_tokens=8, token_dim=8, cfg=cfg)
    f = sc.represent(params, torch.rand(1, 5, 8, 8))
    assert f.shape == (1, 5, 8) and (f >= 0).all()
    z = sc.project(params, f)
    assert z.shape == (1, 5, 4) and torch.allclose(z.norm(dim=-1), torch.ones(1, 5))


def test_replicas_of_a_seed_are_paired_until_pruning():
    methods = sc.make_methods("0.5", "0.5", "0.5")  # SimCLR, prune, random, SDCLR, balanced
    exp = sc.train(_experiment(methods, steps=3, warmup=0.99))  # prune step 3: not reached
    w = exp.params["W"].detach()
    M = len(methods)
    for s in range(2):
        simclr = w[s * M]
        assert torch.equal(simclr, w[s * M + 1]) and torch.equal(simclr, w[s * M + 2])
        assert not torch.equal(simclr, w[s * M + 3])  # SDCLR's pruned branch changes training
        assert not torch.equal(simclr, w[s * M + 4])  # balanced data
    assert not torch.equal(w[0], w[M])  # different seeds


def test_pruning_mask_is_kept_and_training_is_deterministic():
    methods = [sc.Method("simclr"), sc.Method("magnitude", 0.75), sc.Method("random", 0.75)]
    a = sc.train(_experiment(methods, steps=4, warmup=0.5))
    b = sc.train(_experiment(methods, steps=4, warmup=0.5))
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
    w = a.params["W"].detach()
    zero = (w == 0).float().mean(dim=(1, 2))
    assert zero[0] == 0 and zero[1] == 0.75 and zero[2] == 0.75
    assert torch.equal(a.keep["W"][1] == 0, w[1] == 0)
    assert not torch.equal(a.keep["W"][1], a.keep["W"][2])
    losses = np.array(a.losses)
    assert losses.shape == (4, 6) and np.isfinite(losses).all()


def test_fit_probe_agrees_with_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 5)) * 1.5
    y = np.repeat(np.arange(3), 40)
    x = centers[y] + rng.normal(size=(120, 5))
    xt, yt = x[::2], y[::2]
    predict = sc.fit_probe(torch.tensor(x[None], dtype=torch.float32), torch.tensor(y[None]), 3)
    ours = predict(torch.tensor(xt[None], dtype=torch.float32))[0].numpy()
    mean, sd = x.mean(0), x.std(0, ddof=1)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / sd, y)
    assert (ours == ref.predict((xt - mean) / sd)).mean() >= 0.97
    assert (ours == yt).mean() > 0.8


def test_class_accuracy():
    pred = torch.tensor([[0, 1, 1, 2]])
    y = torch.tensor([[0, 1, 2, 2]])
    assert torch.allclose(sc.class_accuracy(pred, y, 3), torch.tensor([[1.0, 1.0, 0.5]]))


def _fake_results():
    rows = []
    for seed in range(3):
        for probe in ("full", "few-shot"):
            for method, shift in (("SimCLR", 0.0), ("balanced", 1.0 + seed)):
                rows.append(
                    {
                        "rho": 10.0,
                        "seed": seed,
                        "method": method,
                        "probe": probe,
                        "overall": 80 + shift,
                        "head": 85.0,
                        "tail": 75 + shift,
                        "gap": 10 - shift,
                    }  # fmt: skip
                )
    return pd.DataFrame(rows)


def test_paired_deltas_and_table():
    deltas = sc.paired_deltas(_fake_results())
    assert set(deltas.method) == {"balanced"} and len(deltas) == 6
    assert np.allclose(deltas.sort_values(["probe", "seed"])["tail"].to_numpy(), [1, 2, 3] * 2)
    table = sc.delta_table(deltas)
    assert table.loc[(10.0, "full", "balanced"), "tail"] == "+2.00 ± 1.00 (3/3)"
    assert table.loc[(10.0, "full", "balanced"), "gap"] == "-2.00 ± 1.00 (3/3)"
    assert table.loc[(10.0, "full", "balanced"), "head"] == "+0.00 ± 0.00 (0/3)"
    v = sc.delta_values(deltas, "balanced", "tail", probe="full")
    assert np.array_equal(np.sort(v), [1.0, 2.0, 3.0])
    with pytest.raises(KeyError, match="no paired deltas"):
        sc.delta_values(deltas, "prune 0.5", "tail")
    acc = sc.accuracy_table(_fake_results(), ["SimCLR", "balanced"])
    assert acc.loc[(10.0, "full", "balanced"), "tail"] == "77.0 ± 1.0"


def test_evaluate_on_digits_rows():
    methods = [sc.Method("simclr"), sc.Method("balanced")]
    exp = sc.train(_experiment(methods, steps=2, seeds=(0,)))
    res = sc.evaluate(exp)
    assert len(res) == 4 and set(res.probe) == {"full", "few-shot"}
    assert res[list(sc.METRICS[:3])].to_numpy().min() >= 0
    assert res[list(sc.METRICS[:3])].to_numpy().max() <= 100
    assert np.allclose(res["gap"], res["head"] - res["tail"])


def test_cifar_path_end_to_end_on_a_fake_folder(tmp_path):
    write_fake_cifar(tmp_path)
    data = sc.ImageDataConfig(
        dataset="cifar10", rho=2, n_max=4, n_probe=4, n_test=2, k_shot=1, n_draws=1
    )
    cfg = sc.SimCLRConfig(steps=2, **(TINY | {"batch": 8}))
    methods = [sc.Method("simclr"), sc.Method("sdclr", 0.5)]
    exp = sc.build(data, cfg, methods, [0], sc.load(data, root=tmp_path))
    assert exp.pool.shape == (100, 3, 32, 32) and exp.params["E"].shape == (2, 48, 8)
    res = sc.evaluate(sc.train(exp))
    assert len(res) == 4 and np.isfinite(res[list(sc.METRICS)].to_numpy()).all()


def test_cifar_missing_fails_with_how_to(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        sc.load(sc.ImageDataConfig(dataset="cifar10"), root=tmp_path)
