"""The replica trainer: determinism, replica independence, stop-gradient, divergence, errors."""

import numpy as np
import pytest
import torch

from imbcl import ConfigError, DataConfig, History, ModelConfig, Replicas, RunSpec, TrainConfig
from imbcl.engine.train import train

SMALL = dict(
    data=DataConfig(d=16, k_maj=2, k_min=2, n_corr=2, seq_len=3),
    model=ModelConfig(m=8, ramp_steps=10),
    train=TrainConfig(steps=12, batch=32, record_every=4),
)


def spec(seed=0, **changes):
    parts = dict(SMALL)
    for key, value in changes.items():
        group = next(
            g for g in ("data", "model", "train") if key in type(parts[g]).__dataclass_fields__
        )
        parts[group] = parts[group].replace(**{key: value})
    return RunSpec(**parts, seed=seed)


def test_history_shapes_and_record_steps():
    hist, reps = train([spec(0), spec(1)], progress=False)
    assert list(hist.steps) == [0, 4, 8, 12]
    assert hist.align.shape == (4, 2, 8, 4)
    assert hist.noise.shape == hist.bias.shape == (4, 2, 8)
    assert hist.loss.shape == (4, 2) and np.isnan(hist.loss[0]).all()
    assert np.isfinite(hist.loss[1:]).all()
    assert list(hist.minority) == [False, False, True, True]
    assert reps.step == 12
    # the recorded alignment is the weight expressed in the dictionary
    w = reps.params["W"][0]
    assert np.allclose(hist.align[-1, 0], (w @ reps.dictionaries[0].features).numpy(), atol=1e-6)


def test_same_seed_gives_identical_history():
    a, _ = train([spec(3)], progress=False)
    b, _ = train([spec(3)], progress=False)
    for name in ("align", "noise", "bias", "loss"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)


def test_replica_in_a_batch_equals_the_same_seed_alone():
    specs = [spec(0), spec(5, rho=3.0, lr=0.3), spec(9, bias="constant")]
    alone, _ = train([specs[1]], progress=False)
    for chunk in (1, 3):
        together, _ = train(specs, chunk=chunk, progress=False)
        assert np.abs(together.align[:, 1] - alone.align[:, 0]).max() < 1e-5
        assert np.abs(together.noise[:, 1] - alone.noise[:, 0]).max() < 1e-5


def test_training_in_segments_equals_one_call():
    whole, _ = train([spec(2)], progress=False)
    reps = Replicas([spec(2)])
    first = reps.run(5, progress=False)
    joined = first.concat(reps.run(7, progress=False))
    assert list(joined.steps) == [0, 4, 5, 8, 12]
    keep = np.isin(joined.steps, whole.steps)
    assert np.allclose(joined.align[keep], whole.align, atol=1e-6)


def test_copy_is_independent_and_replays_the_same_data():
    reps = Replicas([spec(1)])
    reps.run(4, progress=False)
    twin = reps.copy()
    a, b = reps.run(4, progress=False), twin.run(4, progress=False)
    assert np.array_equal(a.align, b.align)
    twin.params["W"].zero_()
    assert reps.params["W"].abs().sum() > 0


def test_frozen_attention_gets_no_update_and_trained_attention_does():
    _, frozen = train([spec(0)], progress=False)
    assert torch.equal(frozen.params["WV"][0], torch.eye(16))
    _, trained = train([spec(0, train_attention=True)], progress=False)
    assert not torch.equal(trained.params["WV"][0], torch.eye(16))


def test_bias_follows_the_ramp():
    reps = Replicas([spec(0, kappa_max=2.0, ramp_steps=10)])
    assert torch.allclose(reps.kappa(0), torch.tensor([0.0]))
    assert torch.allclose(reps.kappa(5), torch.tensor([1.0]))
    assert torch.allclose(reps.kappa(50), torch.tensor([2.0]))
    const = Replicas([spec(0, bias="constant", kappa_max=2.0)])
    assert torch.allclose(const.kappa(0), torch.tensor([2.0]))
    assert torch.allclose(Replicas([spec(0, bias="none")]).kappa(99), torch.tensor([0.0]))


def test_divergence_warns_with_advice():
    with pytest.warns(RuntimeWarning, match="lower train.lr"):
        train([spec(0, lr=1e6)], progress=False)


def test_divergence_can_fail_the_run_naming_the_seed():
    from imbcl.engine.train import DivergenceError

    reps = Replicas([spec(0), spec(7, lr=1e6)])
    with pytest.raises(DivergenceError, match=r"replicas \[1\] \(seeds \[7\]\)"):
        reps.run(progress=False, divergence="raise")
    with pytest.raises(ConfigError, match="divergence must be one of"):
        reps.run(1, divergence="ignore")


def test_history_to_arrays_round_trip():
    hist, _ = train([spec(0), spec(1)], progress=False)
    back = History.from_arrays(*hist.to_arrays())
    assert back.specs == hist.specs
    for name in History.ARRAYS:
        assert np.array_equal(getattr(back, name), getattr(hist, name), equal_nan=True)


def test_history_save_load_roundtrip(tmp_path):
    hist, _ = train([spec(0), spec(1)], progress=False)
    path = hist.save(tmp_path / "sub" / "h.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["h.npz"]  # no temp file left
    back = History.load(path)
    assert back.specs == hist.specs
    for name in ("steps", "align", "noise", "bias", "loss", "minority"):
        assert np.array_equal(getattr(back, name), getattr(hist, name), equal_nan=True)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    hist, _ = train([spec(0)], progress=False)
    path = hist.save(tmp_path / "h.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        hist.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npz"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "specs must hold at least one RunSpec"),
        (["x"], "specs[0] must be a RunSpec"),
        ([spec(0), spec(1, m=4)], "specs[1] has m = 4 but specs[0] has 8"),
        ([spec(0), spec(1, batch=16)], "specs[1] has batch = 16"),
    ],
)
def test_incompatible_specs_fail_before_compute(specs, message):
    with pytest.raises(ConfigError) as err:
        Replicas(specs)
    assert message in str(err.value)


def test_bad_steps_and_chunk_are_rejected():
    with pytest.raises(ConfigError, match="steps must be a non-negative integer"):
        Replicas([spec(0)]).run(-1)
    with pytest.raises(ConfigError, match="chunk must be a positive integer"):
        Replicas([spec(0)], chunk=0)
    with pytest.raises(ConfigError, match="specs disagree on train.steps"):
        Replicas([spec(0), spec(1, steps=3)]).run()


def test_probe_subset_equals_the_same_replicas_probed_in_full():
    from imbcl.engine import metrics

    _, reps = train([spec(0, sigma=0.3), spec(1, sigma=0.3), spec(2, sigma=0.3)], progress=False)
    full = metrics.probe_accuracy(reps, n_train=300, n_test=300)
    part = metrics.probe_accuracy(reps, n_train=300, n_test=300, replicas=[2, 0])
    assert np.array_equal(part, full[[2, 0]])
    with pytest.raises(ConfigError, match=r"replicas must be non-empty indices in \[0, 2\]"):
        reps.indices([3])
    with pytest.raises(ConfigError, match="replicas must be non-empty"):
        reps.indices([])


def test_histories_join_side_by_side():
    a, _ = train([spec(0)], progress=False)
    b, _ = train([spec(1), spec(2)], progress=False)
    both = History.join([a, b])
    assert both.n_replicas == 3 and [s.seed for s in both.specs] == [0, 1, 2]
    assert np.array_equal(both.align[:, 1:], b.align)
    later, _ = train([spec(3)], steps=3, progress=False)
    with pytest.raises(ValueError, match="same steps"):
        History.join([a, later])
