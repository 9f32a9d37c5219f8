"""Metrics on hand-built alignments, and the linear probe on a trained model."""

import numpy as np

from imbcl.engine import metrics as mt
from imbcl.engine.train import train
from tests.test_train import spec


def test_owners_counts_and_coverage():
    align = np.array([[0.9, 0.0, 0.1], [0.0, -0.5, 0.0], [0.2, 0.0, 0.3], [1e-4, 0, 0]])
    noise = np.array([0.1, 0.1, 0.5, 1e-4])
    owner = mt.owners(align, noise)
    # neuron 2 is noise-dominated, neuron 3 is silent (below 5 % of the largest norm)
    assert list(owner) == [0, 1, -1, -1]
    counts = mt.neurons_per_feature(owner, 3)
    assert list(counts) == [1, 1, 0]
    minority = np.array([False, True, True])
    assert not mt.coverage(counts, minority)
    assert mt.coverage(counts, ~minority)
    assert np.allclose(mt.feature_noise_ratio(align, noise)[:2], [9.0, 5.0])


def test_onset_steps_first_crossing_or_nan():
    steps = np.array([0, 10, 20])
    align = np.zeros((3, 1, 2, 2))
    align[1, 0, 1, 0] = 0.06
    align[2, 0, 0, 0] = -0.2
    onset = mt.onset_steps(steps, align, threshold=0.05)
    assert onset[0, 0] == 10 and np.isnan(onset[0, 1])


def test_mean_sd_handles_one_seed():
    mean, sd = mt.mean_sd(np.array([[1.0, 2.0]]))
    assert list(mean) == [1.0, 2.0] and list(sd) == [0.0, 0.0]


def test_probe_beats_chance_after_training_and_is_deterministic():
    _, reps = train([spec(0, steps=30, batch=128, rho=1.0, sigma=0.3)], progress=False)
    acc = mt.probe_accuracy(reps, n_train=600, n_test=600)
    assert acc.shape == (1, 4)
    assert acc.min() > 0.6  # chance is 1/3
    assert np.array_equal(acc, mt.probe_accuracy(reps, n_train=600, n_test=600))


def test_best_per_feature_skips_silent_neurons():
    values = np.array([[[0.2, 0.9], [0.5, 0.1], [3.0, 3.0]]])  # (1, m=3, K=2)
    assert np.array_equal(mt.best_per_feature(values), [[3.0, 3.0]])
    live = np.array([[True, True, False]])
    assert np.array_equal(mt.best_per_feature(values, live), [[0.5, 0.9]])
    assert np.array_equal(mt.best_per_feature(values, np.zeros((1, 3), bool)), [[0.0, 0.0]])


def test_attention_entropy_is_near_uniform_by_default_and_drops_with_sharper_attention():
    from imbcl import DataConfig, ModelConfig, Replicas, RunSpec

    def entropy(scale):
        spec = RunSpec(DataConfig(d=16, k_maj=2, k_min=2, n_corr=2), ModelConfig(attn_scale=scale))
        return mt.attention_entropy(Replicas([spec]), n=256)[0]

    uniform = np.log(4)  # L = 4 tokens
    assert uniform - 0.01 < entropy(0.1) <= uniform + 1e-6
    assert entropy(3.0) < uniform - 0.3
