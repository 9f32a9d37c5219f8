"""The real image sets of Chapter 5: what they hold, where they live, how to load them.

Images are float32 arrays (N, C, H, W) with values in [0, 1] and integer labels (N,).
Two sets are supported:

* ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, 10 classes, offline);
* ``cifar10``: CIFAR-10 in its python-pickle format (folder ``cifar-10-batches-py``), read
  from a data root (argument, else env ``IMBCL_DATA``, else ``~/.cache/imbcl``) and
  downloaded there only when asked (``download=True``).

How a set is made long-tailed is :mod:`imbcl.images.splits`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbcl.engine.config import ConfigError

DATASETS = ("digits", "cifar10")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
#: Image shape (C, H, W) per data set.
IMAGE_SHAPE = {"digits": (1, 8, 8), "cifar10": (3, 32, 32)}
#: Number of classes per data set (known before loading, so settings can be checked early).
N_CLASSES = {"digits": 10, "cifar10": 10}
#: CIFAR-10's images per class in its training and test sets (the official split).
CIFAR_COUNTS = (5000, 1000)


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

    @property
    def class_counts(self) -> np.ndarray:
        """(C,) images per class."""
        return np.bincount(self.labels, minlength=self.n_classes)


def check_dataset(name: str) -> str:
    """``name`` if it is a supported data set, else a ConfigError listing the choices."""
    if name not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(map(repr, DATASETS))} (got {name!r})")
    return name


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
        f"imbcl.images.datasets.load_cifar10(download=True) (or the chapter parameter download=True), "
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


def class_counts(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(pool (C,), test (C,) or None): images per class of data set ``name``, without loading
    it when they are known (CIFAR-10's official split); digits (cached, offline) is counted."""
    check_dataset(name)
    if name == "digits":
        return load_digits().class_counts, None
    train, test = CIFAR_COUNTS
    return np.full(N_CLASSES[name], train), np.full(N_CLASSES[name], test)


def load_dataset(
    name: str, root: str | os.PathLike | None = None, download: bool = False
) -> tuple[ImageSet, ImageSet | None]:
    """(pool, test) for ``name``: digits has no official test set (None: carve one from the
    pool), CIFAR-10 has one."""
    check_dataset(name)
    if name == "digits":
        return load_digits(), None
    return load_cifar10(root, download)
