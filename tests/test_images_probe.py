"""Linear probes on frozen features."""

from __future__ import annotations

import numpy as np
import torch

from imbcl.images.probe import class_accuracy, fit_probe


def test_fit_probe_agrees_with_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 5)) * 1.5
    y = np.repeat(np.arange(3), 40)
    x = centers[y] + rng.normal(size=(120, 5))
    xt, yt = x[::2], y[::2]
    predict = fit_probe(torch.tensor(x[None], dtype=torch.float32), torch.tensor(y[None]), 3)
    ours = predict(torch.tensor(xt[None], dtype=torch.float32))[0].numpy()
    mean, sd = x.mean(0), x.std(0, ddof=1)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / sd, y)
    assert (ours == ref.predict((xt - mean) / sd)).mean() >= 0.97
    assert (ours == yt).mean() > 0.8


def test_class_accuracy():
    pred = torch.tensor([[0, 1, 1, 2]])
    y = torch.tensor([[0, 1, 2, 2]])
    assert torch.allclose(class_accuracy(pred, y, 3), torch.tensor([[1.0, 1.0, 0.5]]))
