"""Real image sets made long-tailed: loaders, splits and augmentations for chapter 5.

Images are float32 arrays (N, C, H, W) with values in [0, 1] and integer labels (N,).
Two sets are supported:

* ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, 10 classes, offline);
* ``cifar10``: CIFAR-10 in its python-pickle format (folder ``cifar-10-batches-py``), read
  from a data root (argument, else env ``IMBCL_DATA``, else ``~/.cache/imbcl``) and
  downloaded there only when asked (``download=True``).

A :class:`Split` fixes, per seed, which images pre-train the encoder (long-tailed, class
order permuted by the seed; and a balanced reference of the same size), which labelled images
train the linear probes (balanced) and which are held out for testing (balanced).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from imbcl.engine.config import ConfigError
from imbcl.engine.streams import Stream, numpy_rng

DATASETS = ("digits", "cifar10")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
#: Image shape (C, H, W) per data set.
IMAGE_SHAPE = {"digits": (1, 8, 8), "cifar10": (3, 32, 32)}
#: Token shape (rows, columns of pixels) per data set: digit rows, CIFAR 4x4 patches.
PATCH = {"digits": (1, 8), "cifar10": (4, 4)}


@dataclass(frozen=True)
class ImageSet:
    """Labelled images: ``images`` (N, C, H, W) float32 in [0, 1], ``labels`` (N,) int64."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def check_dataset(name: str) -> str:
    """``name`` if it is a supported data set, else a ConfigError listing the choices."""
    if name not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(map(repr, DATASETS))} (got {name!r})")
    return name


def token_shape(dataset: str) -> tuple[int, int]:
    """(L, t): the number of tokens per image of ``dataset`` and the values per token (see
    :func:`to_tokens`); digits: (8, 8) rows, cifar10: (64, 48) patches of 4x4x3 pixels."""
    c, h, w = IMAGE_SHAPE[check_dataset(dataset)]
    ph, pw = PATCH[dataset]
    return (h // ph) * (w // pw), c * ph * pw


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else env ``IMBCL_DATA``, else ``~/.cache/imbcl``."""
    if root is None:
        root = os.environ.get("IMBCL_DATA") or Path.home() / ".cache" / "imbcl"
    return Path(root).expanduser()


@functools.cache
def load_digits() -> ImageSet:
    """scikit-learn's digits as (1797, 1, 8, 8) images in [0, 1] (raw values 0..16 / 16).

    Cached; the arrays are read-only."""
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    images = (raw.images.astype(np.float32) / 16.0)[:, None]
    labels = raw.target.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return ImageSet("digits", images, labels, tuple(map(str, range(10))))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle batch -> images (N, 3, 32, 32) float32 in [0, 1], labels (N,)."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be (N, 3072) uint8 (got shape {data.shape})")
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def _missing_cifar_message(folder: Path) -> str:
    return (
        f"CIFAR-10 not found: expected the folder {folder} with {', '.join(CIFAR_TRAIN)}, "
        f"{CIFAR_TEST} and batches.meta (the python version of CIFAR-10). Get it with "
        f"imbcl.images.load_cifar10(download=True) (or the chapter parameter download=True), "
        f"which fetches {CIFAR_URL} (~163 MB) into {folder.parent}; or download and extract "
        f"that archive there yourself. Set the folder with the root argument or env IMBCL_DATA."
    )


def load_cifar10(
    root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 (train 50000, test 10000 images of shape (3, 32, 32)) from ``root``.

    Reads ``<root>/cifar-10-batches-py``; with ``download=True`` it first fetches the official
    archive when that folder is missing. Raises FileNotFoundError saying how to get the data.
    """
    root = data_root(root)
    folder = root / CIFAR_FOLDER
    if download and not folder.is_dir():
        download_cifar10(root)
    needed = [*CIFAR_TRAIN, CIFAR_TEST, "batches.meta"]
    if not all((folder / name).is_file() for name in needed):
        raise FileNotFoundError(_missing_cifar_message(folder))
    parts = [_read_batch(folder / name) for name in CIFAR_TRAIN]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = _read_batch(folder / CIFAR_TEST)
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"])
    return (
        ImageSet("cifar10", train_x, train_y, classes),
        ImageSet("cifar10", test_x, test_y, classes),
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_cifar10(root: str | os.PathLike | None = None, url: str = CIFAR_URL) -> Path:
    """Fetch and extract CIFAR-10 into ``<root>/cifar-10-batches-py``; returns that folder.

    Atomic: the archive goes to a temporary file in ``root``, is checked against the official
    MD5, extracted into a temporary folder, and only then renamed into place; a failure
    leaves no partial data set behind.
    """
    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / CIFAR_FOLDER
    fd, tmp_name = tempfile.mkstemp(prefix=".cifar10-", suffix=".tar.gz", dir=root)
    os.close(fd)
    archive = Path(tmp_name)
    staging = Path(tempfile.mkdtemp(prefix=".cifar10-", dir=root))
    try:
        urllib.request.urlretrieve(url, archive)
        if url == CIFAR_URL and _md5(archive) != CIFAR_MD5:
            raise OSError(f"{url}: MD5 mismatch (corrupt download); try again")
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging / CIFAR_FOLDER, folder)
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_dataset(
    name: str, root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ImageSet, ImageSet | None]:
    """(pool, test) for ``name``: digits has no official test set (None: carve one from the
    pool), CIFAR-10 has one."""
    check_dataset(name)
    if name == "digits":
        return load_digits(), None
    return load_cifar10(root, download)


def longtail_counts(n_max: int, rho: float, n_classes: int) -> np.ndarray:
    """(C,) images per class rank c: n_c = floor(n_max * rho^(-c / (C - 1))), at least 1."""
    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2 (got {n_classes})")
    if rho < 1:
        raise ConfigError(f"rho must be >= 1 (got {rho})")
    if n_max < 1:
        raise ConfigError(f"n_max must be >= 1 (got {n_max})")
    c = np.arange(n_classes)
    return np.maximum(1, np.floor(n_max * rho ** (-c / (n_classes - 1)) + 1e-9)).astype(int)


def balanced_counts(total: int, order: np.ndarray) -> np.ndarray:
    """(C,) a balanced split of ``total`` images, indexed by class; the ``total mod C`` extra
    images go to the first classes of ``order``."""
    n_classes = len(order)
    counts = np.full(n_classes, total // n_classes)
    counts[order[: total % n_classes]] += 1
    return counts


@dataclass(frozen=True)
class Split:
    """One seed's data plan. Index arrays point into the pool (``test`` into the test set,
    or into the pool when the data set has none).

    ``order`` (C,) lists classes from most to least frequent in the long-tailed pre-training
    set; ``head`` / ``tail`` are its first / last ``group`` classes.
    """

    seed: int
    order: np.ndarray
    counts: np.ndarray
    pretrain: np.ndarray
    balanced: np.ndarray
    probe: np.ndarray
    test: np.ndarray
    head: np.ndarray
    tail: np.ndarray


def _take_per_class(rng, labels, candidates, counts, what: str) -> np.ndarray:
    """Indices drawn without replacement from ``candidates``: counts[c] of class c."""
    chosen = []
    for c, k in enumerate(counts):
        pool = candidates[labels[candidates] == c]
        if k > len(pool):
            raise ConfigError(
                f"{what} needs {k} images of class {c} but only {len(pool)} are available; "
                f"lower n_max / n_probe / n_test"
            )
        chosen.append(rng.choice(pool, size=int(k), replace=False))
    return np.sort(np.concatenate(chosen))


def make_split(
    labels: np.ndarray,
    n_classes: int,
    rho: float,
    n_max: int,
    n_probe: int,
    n_test: int,
    seed: int,
    test_labels: np.ndarray | None = None,
    group: int | None = None,
) -> Split:
    """The long-tailed plan for one seed.

    ``labels`` (N,) are the pool's labels. ``n_test`` images per class are held out (from
    ``test_labels`` if given, else from the pool); of the rest, class ``order[c]`` gives
    ``longtail_counts(n_max, rho, C)[c]`` images to pre-training, a balanced reference of the
    same total is drawn independently, and ``n_probe`` per class form the probe set.
    ``group`` (default C // 3) classes form the head and the tail.

    The test images are disjoint from all the others. The pre-training, balanced and probe
    sets are each drawn from all the remaining images, so they may overlap: the linear probe
    may be trained on images the encoder saw (unlabelled) during pre-training, as in the usual
    linear evaluation of self-supervised encoders. (On digits they must overlap: a class has
    about 130 images after the test split, fewer than n_max + n_probe.)
    """
    group = n_classes // 3 if group is None else group
    if not 1 <= group <= n_classes // 2:
        raise ConfigError(f"group must be in [1, {n_classes // 2}] (got {group})")
    rng = numpy_rng(seed, Stream.IMAGE_SPLIT)
    order = rng.permutation(n_classes)
    all_idx = np.arange(len(labels))
    full = np.full(n_classes, n_test)
    if test_labels is None:
        test = _take_per_class(rng, labels, all_idx, full, "the test split")
        rest = np.setdiff1d(all_idx, test)
    else:
        test = _take_per_class(
            rng, test_labels, np.arange(len(test_labels)), full, "the test split"
        )
        rest = all_idx
    counts = np.zeros(n_classes, dtype=int)
    counts[order] = longtail_counts(n_max, rho, n_classes)
    pretrain = _take_per_class(rng, labels, rest, counts, "the long-tailed set")
    balanced = _take_per_class(
        rng, labels, rest, balanced_counts(int(counts.sum()), order), "the balanced set"
    )
    probe = _take_per_class(rng, labels, rest, np.full(n_classes, n_probe), "the probe set")
    return Split(
        seed, order, counts, pretrain, balanced, probe, test, order[:group], order[-group:]
    )


def few_shot_draws(labels: np.ndarray, k: int, n_draws: int, seed: int) -> np.ndarray:
    """(n_draws, C*k) positions into ``labels`` (the probe set's labels): k per class each."""
    rng = numpy_rng(seed, Stream.FEW_SHOT)
    n_classes = int(labels.max()) + 1
    everything = np.arange(len(labels))
    return np.stack(
        [
            _take_per_class(rng, labels, everything, np.full(n_classes, k), "the few-shot probe")
            for _ in range(n_draws)
        ]
    )


def to_tokens(x: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """(..., C, H, W) images -> (..., L, C*ph*pw) tokens, patches in row-major order.

    ``patch=(1, W)`` makes each image row a token (8x8 digits -> 8 tokens of 8 pixels).
    """
    ph, pw = patch
    *lead, c, h, w = x.shape
    if h % ph or w % pw:
        raise ValueError(f"patch {patch} must tile the {h}x{w} image")
    n = len(lead)
    x = x.reshape(*lead, c, h // ph, ph, w // pw, pw)
    x = x.permute(*range(n), n + 1, n + 3, n, n + 2, n + 4)  # (..., H/ph, W/pw, C, ph, pw)
    return x.reshape(*lead, (h // ph) * (w // pw), c * ph * pw)


# ---------------------------------------------------------------------------------------------
# Augmentations. Random parameters are drawn per image slot from a generator (one per seed),
# then applied to any number of replicas at once, so that every method trained on the same
# seed sees the same augmentations (paired comparisons).
# ---------------------------------------------------------------------------------------------


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
