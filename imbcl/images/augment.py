"""Image augmentations for contrastive pre-training, drawn once and applied to many replicas.

Random parameters are drawn per image slot from a generator (one per seed and step), then
applied to any number of replicas at once, so that every method trained on the same seed
sees the same augmentations (paired comparisons).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from imbcl.images.datasets import check_dataset


def _affine(scale_x, scale_y, angle, tx, ty) -> torch.Tensor:
    """(B, 2, 3) affine_grid matrices (output -> input coordinates in [-1, 1])."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    row0 = torch.stack([scale_x * cos, -scale_y * sin, tx], dim=-1)
    row1 = torch.stack([scale_x * sin, scale_y * cos, ty], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def _uniform(gen, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def sample_augment(dataset: str, batch: int, shape, gen: torch.Generator) -> dict:
    """Random augmentation parameters for ``batch`` images of ``shape`` (C, H, W), on CPU.

    digits: affine (rotation +-15 deg, scale 0.9-1.1, shift +-1 px), random erasing of a
    2-4 px rectangle with probability 0.5, Gaussian pixel noise (s.d. 0.05).
    cifar10: the SimCLR set without blur: random resized crop (area 0.2-1, aspect 3/4-4/3),
    horizontal flip (0.5), colour jitter (brightness, contrast, saturation 0.4; hue omitted)
    with probability 0.8, grayscale with probability 0.2.
    Every entry has leading axis ``batch``. An unknown ``dataset`` is a ConfigError.
    """
    check_dataset(dataset)
    c, h, w = shape
    if dataset == "digits":
        angle = _uniform(gen, batch, -math.pi / 12, math.pi / 12)
        scale = _uniform(gen, batch, 0.9, 1.1)
        shift = _uniform(gen, (batch, 2), -2.0 / w, 2.0 / w)
        theta = _affine(1 / scale, 1 / scale, angle, shift[:, 0], shift[:, 1])
        eh = torch.randint(2, 5, (batch,), generator=gen)
        ew = torch.randint(2, 5, (batch,), generator=gen)
        top = (torch.rand(batch, generator=gen) * (h - eh + 1)).long()
        left = (torch.rand(batch, generator=gen) * (w - ew + 1)).long()
        rows, cols = torch.arange(h), torch.arange(w)
        inside = (
            (rows[None, :, None] >= top[:, None, None])
            & (rows[None, :, None] < (top + eh)[:, None, None])
            & (cols[None, None, :] >= left[:, None, None])
            & (cols[None, None, :] < (left + ew)[:, None, None])
        )
        erase = inside & (torch.rand(batch, generator=gen) < 0.5)[:, None, None]
        keep = (~erase).float()[:, None]
        noise = 0.05 * torch.randn((batch, c, h, w), generator=gen)
        return {"theta": theta, "keep": keep, "noise": noise}
    area = _uniform(gen, batch, 0.2, 1.0)
    log_ratio = _uniform(gen, batch, math.log(3 / 4), math.log(4 / 3))
    sx = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    sy = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    tx = (2 * torch.rand(batch, generator=gen) - 1) * (1 - sx)
    ty = (2 * torch.rand(batch, generator=gen) - 1) * (1 - sy)
    flip = torch.where(torch.rand(batch, generator=gen) < 0.5, -1.0, 1.0)
    theta = _affine(sx * flip, sy, torch.zeros(batch), tx, ty)
    jitter = _uniform(gen, (batch, 3), 0.6, 1.4)
    jitter = torch.where((torch.rand(batch, generator=gen) < 0.8)[:, None], jitter, 1.0)
    gray = (torch.rand(batch, generator=gen) < 0.2).float()
    return {"theta": theta, "jitter": jitter, "gray": gray}


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) -> (n, 1, H, W) luma (ITU-R 601)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
    return torch.einsum("nchw,c->nhw", x, weights)[:, None]


def apply_augment(dataset: str, x: torch.Tensor, params: dict) -> torch.Tensor:
    """Augment images ``x`` (R, B, C, H, W) with parameters whose leading axes are (R, B)
    (draws of :func:`sample_augment` stacked or indexed per replica). Returns (R, B, C, H, W)
    in [0, 1] for CIFAR (digits keep their additive noise)."""
    lead, shape = x.shape[:2], x.shape[2:]
    flat = x.reshape(-1, *shape)
    p = {k: v.reshape(-1, *v.shape[2:]) for k, v in params.items()}
    padding = "zeros" if dataset == "digits" else "border"
    grid = F.affine_grid(p["theta"], list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, padding_mode=padding, align_corners=False)
    if dataset == "digits":
        out = out * p["keep"] + p["noise"]
    else:
        j = p["jitter"][:, :, None, None, None]
        out = (out * j[:, 0]).clamp(0, 1)  # brightness
        mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * j[:, 1] + mean).clamp(0, 1)  # contrast
        gray = _gray(out)
        out = ((out - gray) * j[:, 2] + gray).clamp(0, 1)  # saturation
        g = p["gray"][:, None, None, None]
        out = g * _gray(out).expand_as(out) + (1 - g) * out
    return out.reshape(*lead, *shape)
