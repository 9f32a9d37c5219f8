"""Evaluation rows and one experiment per call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.images import analysis, training
from imbcl.images.config import ImageDataConfig, Method, SimCLRConfig
from imbcl.images.datasets import load_dataset

TINY = dict(d=8, m=8, proj=4, batch=16, record_every=1, sdclr_every=1)
DIGITS = ImageDataConfig(n_max=20, n_probe=10, n_test=5, k_shot=2, n_draws=2)


def test_evaluate_on_digits_rows():
    cfg = SimCLRConfig(steps=2, warmup=0.5, **TINY)
    methods = [Method("simclr"), Method("balanced")]
    exp = training.train(training.build(DIGITS, cfg, methods, [0], load_dataset("digits")))
    res = analysis.evaluate(exp)
    assert len(res) == 4 and set(res.probe) == {"full", "few-shot"}
    assert res[list(analysis.METRICS[:3])].to_numpy().min() >= 0
    assert res[list(analysis.METRICS[:3])].to_numpy().max() <= 100
    assert np.allclose(res["gap"], res["head"] - res["tail"])


def test_run_experiment_is_build_evaluate_train_evaluate():
    """One call gives the rows of the untrained encoder, then of the trained methods, equal
    to the steps done by hand."""
    cfg = SimCLRConfig(steps=3, warmup=0.5, **TINY)
    methods = [Method("simclr"), Method("magnitude", 0.5), Method("balanced")]
    sets = load_dataset("digits")
    rows, exp = analysis.run_experiment(DIGITS, cfg, methods, [0, 1], sets)
    untrained = training.build(DIGITS, cfg, methods[:1], [0, 1], sets)
    trained = training.train(training.build(DIGITS, cfg, methods, [0, 1], sets))
    expected = pd.concat(
        [analysis.evaluate(untrained).assign(method="untrained"), analysis.evaluate(trained)],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(rows, expected)
    assert list(rows.method.unique()) == ["untrained", "SimCLR", "prune 0.5", "balanced"]
    assert exp.step == 3 and len(exp.losses) == 3
