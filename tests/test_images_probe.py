"""Linear probes on frozen features."""

from __future__ import annotations

import torch

from imbcl.images.probe import class_accuracy


def test_class_accuracy():
    pred = torch.tensor([[0, 1, 1, 2]])
    y = torch.tensor([[0, 1, 2, 2]])
    assert torch.allclose(class_accuracy(pred, y, 3), torch.tensor([[1.0, 1.0, 0.5]]))
