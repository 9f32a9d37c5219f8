"""Chapter 5's probe inputs and scores: frozen features of each replica, per-class accuracy
(the probes themselves are :func:`imbcl.engine.probe.fit_logistic`)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from imbcl.images.encoder import represent, to_tokens
from imbcl.images.training import Experiment


@torch.no_grad()
def features(exp: Experiment, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """f(X) (R, n, m) of each replica on its own images (R, n, C, H, W), in chunks of n."""
    out = [
        represent(exp.params, to_tokens(images[:, i : i + chunk], exp.patch))
        for i in range(0, images.shape[1], chunk)
    ]
    return torch.cat(out, dim=1)


def class_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(P, C) per-class accuracy of predictions (P, n) against labels (P, n)."""
    hits = (pred == y).float()
    onehot = F.one_hot(y, n_classes).float()  # (P, n, C)
    return torch.einsum("pn,pnc->pc", hits, onehot) / onehot.sum(1)
