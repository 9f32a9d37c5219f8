"""InfoNCE with a stop-gradient target branch, and the L2 penalty.

Representations are (..., n, m) with any leading batch axes (replicas); row i of the two
views is a positive pair and the other n - 1 rows of the target view are negatives.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def info_nce(online: torch.Tensor, target: torch.Tensor, tau: torch.Tensor | float):
    """(...,) mean over i of -log softmax_k(<f_i, sg g_k> / tau)[i].

    sim(X, Y) = <f(X), stopgrad f(Y)> / tau; ``tau`` is a float or broadcasts to the leading
    axes. No gradient reaches ``target``.
    """
    tau = torch.as_tensor(tau, dtype=online.dtype, device=online.device)
    logits = online @ target.detach().transpose(-1, -2) / tau[..., None, None]
    return -torch.diagonal(F.log_softmax(logits, dim=-1), dim1=-2, dim2=-1).mean(dim=-1)


def symmetric_info_nce(fa: torch.Tensor, fb: torch.Tensor, tau: torch.Tensor | float):
    """(...,) the average of InfoNCE with each view as the online branch once."""
    return 0.5 * (info_nce(fa, fb, tau) + info_nce(fb, fa, tau))


def l2_penalty(params: dict[str, torch.Tensor], weight_decay: torch.Tensor | float):
    """(R,) lambda/2 * sum of squared trainable parameters, per replica (leading axis)."""
    total = sum(p.pow(2).flatten(1).sum(dim=1) for p in params.values())
    return 0.5 * torch.as_tensor(weight_decay) * total


def info_nce_grads(fa: torch.Tensor, fb: torch.Tensor, tau: torch.Tensor):
    """Symmetric stop-gradient InfoNCE (R,) and its gradients wrt each online branch.

    ``fa``, ``fb`` (R, n, m), ``tau`` (R,). The loss is that of :func:`symmetric_info_nce`;
    with S = fa fb^T / tau, the term with ``fa`` online has dL/dfa = (softmax_rows(S) - I) fb
    / (2 n tau), and the term with ``fb`` online has dL/dfb = (softmax_cols(S) - I)^T fa
    / (2 n tau); the target branches get no gradient.
    """
    n = fa.shape[1]
    s = fa @ fb.transpose(1, 2) / tau[:, None, None]
    rows = torch.log_softmax(s, dim=-1)
    cols = torch.log_softmax(s, dim=-2)
    nce = -0.5 * (rows.diagonal(dim1=1, dim2=2).mean(-1) + cols.diagonal(dim1=1, dim2=2).mean(-1))
    scale = (0.5 / n / tau)[:, None, None]
    ga, gb = rows.exp_(), cols.exp_()
    ga.diagonal(dim1=1, dim2=2).sub_(1.0)
    gb.diagonal(dim1=1, dim2=2).sub_(1.0)
    return nce, (ga.mul_(scale)) @ fb, (gb.mul_(scale)).transpose(1, 2) @ fa
