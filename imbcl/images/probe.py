"""Linear probes on frozen features: many multinomial logistic regressions fit at once."""

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


def fit_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, max_iter: int = 200):
    """Multinomial logistic regressions fit independently on P problems at once.

    x (P, n, m) features, y (P, n) labels. Inputs are standardised with each problem's
    training mean and s.d.; the objective is mean cross-entropy + ||W||^2 / (2 n), which is
    scikit-learn's LogisticRegression default (C = 1). Solved by L-BFGS on the (separable)
    sum over problems. Returns a function mapping (P, n', m) features to (P, n') predictions.

    The P problems share L-BFGS's curvature history, line search and stopping rule, so a
    problem's fitted weights can differ slightly with the problems fit beside it: the same
    replicas must be probed together for results to repeat exactly.
    """
    mean, sd = x.mean(dim=1, keepdim=True), x.std(dim=1, keepdim=True) + 1e-6
    xs = (x - mean) / sd
    n_problems, n, m = x.shape
    weight = torch.zeros(n_problems, m, n_classes, device=x.device, requires_grad=True)
    bias = torch.zeros(n_problems, 1, n_classes, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )
    target = F.one_hot(y, n_classes).to(x.dtype)

    def closure():
        opt.zero_grad()
        logits = xs @ weight + bias
        ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean(-1)
        loss = (ce + weight.pow(2).sum(dim=(1, 2)) / (2 * n)).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w, b = weight.detach(), bias.detach()
    return lambda z: (((z - mean) / sd) @ w + b).argmax(dim=-1)


def class_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(P, C) per-class accuracy of predictions (P, n) against labels (P, n)."""
    hits = (pred == y).float()
    onehot = F.one_hot(y, n_classes).float()  # (P, n, C)
    return torch.einsum("pn,pnc->pc", hits, onehot) / onehot.sum(1)
