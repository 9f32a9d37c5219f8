"""Image sets: digits offline, the CIFAR-10 pickle format, its download and the data root."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest
import torch

from imbcl.engine.config import ConfigError
from imbcl.images import datasets
from imbcl.images.augment import sample_augment
from imbcl.images.encoder import token_shape

PER_BATCH = 20


def write_fake_cifar(root, per_batch: int = PER_BATCH, seed: int = 0):
    """A tiny CIFAR-10 folder in the official python-pickle format under ``root``.

    Each of data_batch_1..5 and test_batch holds ``per_batch`` random images with labels
    cycling 0..9. Returns the folder.
    """
    rng = np.random.default_rng(seed)
    folder = root / datasets.CIFAR_FOLDER
    folder.mkdir(parents=True)
    for name in [*datasets.CIFAR_TRAIN, datasets.CIFAR_TEST]:
        batch = {
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(per_batch)],
            b"batch_label": name.encode(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return folder


def test_unknown_dataset_is_a_config_error():
    message = r"dataset must be one of 'digits', 'cifar10' \(got 'mnist'\)"
    with pytest.raises(ConfigError, match=message):
        datasets.load_dataset("mnist")
    with pytest.raises(ConfigError, match=message):
        sample_augment("mnist", 4, (1, 8, 8), torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=message):
        token_shape("mnist")


def test_load_digits_range():
    ds = datasets.load_digits()
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0 and ds.n_classes == 10
    assert ds.n_classes == datasets.N_CLASSES["digits"]
    assert ds.images.shape[1:] == datasets.IMAGE_SHAPE["digits"]


def test_cifar_loader_reads_the_pickle_format(tmp_path):
    folder = write_fake_cifar(tmp_path)
    train, test = datasets.load_cifar10(root=tmp_path)
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and test.images.shape == (
        PER_BATCH,
        3,
        32,
        32,
    )
    assert train.classes[0] == "class0" and train.n_classes == 10
    assert train.n_classes == datasets.N_CLASSES["cifar10"]
    with open(folder / "data_batch_2", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # row-major layout: the first 1024 bytes of a row are the red channel
    first = train.images[PER_BATCH]
    assert np.allclose(first[0].reshape(-1), raw[b"data"][0, :1024] / 255.0)
    assert np.allclose(first[2, 31, 31], raw[b"data"][0, -1] / 255.0)
    assert np.array_equal(test.labels, np.arange(PER_BATCH) % 10)


def test_cifar_root_from_environment(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path)
    monkeypatch.setenv("IMBCL_DATA", str(tmp_path))
    pool, test = datasets.load_dataset("cifar10")
    assert len(pool.labels) == 5 * PER_BATCH and len(test.labels) == PER_BATCH


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_cifar10(root=tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / datasets.CIFAR_FOLDER) in msg
    assert datasets.CIFAR_URL in msg and "download=True" in msg and "IMBCL_DATA" in msg
    assert "imbcl.images.datasets.load_cifar10" in msg  # a function that exists
    assert callable(datasets.load_cifar10)


def test_cifar_missing_fails_with_how_to(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        datasets.load_dataset("cifar10", root=tmp_path)


def test_bad_cifar_batch_is_reported(tmp_path):
    folder = write_fake_cifar(tmp_path)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"must be \(N, 3072\)"):
        datasets.load_cifar10(root=tmp_path)


def test_download_is_atomic_from_a_local_archive(tmp_path):
    """The real download code, fed a file:// URL (no network): extracts into place, leaves
    no temporary files; a bad archive leaves no partial folder."""
    src = tmp_path / "src"
    write_fake_cifar(src)
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / datasets.CIFAR_FOLDER, arcname=datasets.CIFAR_FOLDER)
    root = tmp_path / "data"
    folder = datasets.download_cifar10(root, url=archive.as_uri())
    assert folder == root / datasets.CIFAR_FOLDER and sorted(p.name for p in root.iterdir()) == [
        datasets.CIFAR_FOLDER
    ]
    train, _ = datasets.load_cifar10(root=root)
    assert len(train.labels) == 5 * PER_BATCH

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(src / datasets.CIFAR_FOLDER / "batches.meta", arcname="other/batches.meta")
    root2 = tmp_path / "data2"
    with pytest.raises(FileNotFoundError):
        datasets.download_cifar10(root2, url=bad.as_uri())
    assert list(root2.iterdir()) == []
