"""Long-tailed image splits, loaders (digits, CIFAR-10 pickle format) and augmentations."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest
import torch

from imbcl import images as im
from imbcl.engine.config import ConfigError

PER_BATCH = 20


def write_fake_cifar(root, per_batch: int = PER_BATCH, seed: int = 0):
    """A tiny CIFAR-10 folder in the official python-pickle format under ``root``.

    Each of data_batch_1..5 and test_batch holds ``per_batch`` random images with labels
    cycling 0..9. Returns the folder.
    """
    rng = np.random.default_rng(seed)
    folder = root / im.CIFAR_FOLDER
    folder.mkdir(parents=True)
    for name in [*im.CIFAR_TRAIN, im.CIFAR_TEST]:
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


def test_longtail_counts_profile():
    counts = im.longtail_counts(120, 10.0, 10)
    assert counts[0] == 120 and counts[-1] == 12
    assert np.all(np.diff(counts) <= 0)
    assert np.array_equal(im.longtail_counts(50, 1.0, 4), [50, 50, 50, 50])
    with pytest.raises(ConfigError, match=r"rho must be >= 1 \(got 0.5\)"):
        im.longtail_counts(120, 0.5, 10)


def test_balanced_counts_sum_and_spread():
    order = np.array([3, 1, 0, 2])
    counts = im.balanced_counts(10, order)
    assert counts.sum() == 10 and counts.max() - counts.min() == 1
    assert counts[3] == 3 and counts[1] == 3 and counts[0] == 2


def _digit_split(seed=0, **kw):
    labels = im.load_digits().labels
    args = dict(rho=10.0, n_max=120, n_probe=100, n_test=50) | kw
    return labels, im.make_split(labels, 10, seed=seed, **args)


def test_split_profile_balance_and_disjoint_test():
    labels, split = _digit_split(seed=3)
    per_class = np.bincount(labels[split.pretrain], minlength=10)
    assert np.array_equal(per_class[split.order], im.longtail_counts(120, 10.0, 10))
    assert np.array_equal(per_class, split.counts)
    bal = np.bincount(labels[split.balanced], minlength=10)
    assert bal.sum() == per_class.sum() and bal.max() - bal.min() <= 1
    assert np.all(np.bincount(labels[split.probe], minlength=10) == 100)
    assert np.all(np.bincount(labels[split.test], minlength=10) == 50)
    used = np.concatenate([split.pretrain, split.balanced, split.probe])
    assert not np.intersect1d(split.test, used).size
    assert np.array_equal(split.head, split.order[:3]) and np.array_equal(
        split.tail, split.order[-3:]
    )
    assert per_class[split.head].min() > per_class[split.tail].max()


def test_split_is_a_function_of_the_seed():
    _, a = _digit_split(seed=1)
    _, b = _digit_split(seed=1)
    _, c = _digit_split(seed=2)
    assert np.array_equal(a.pretrain, b.pretrain) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.order, c.order)


def test_split_too_large_request_is_clear():
    with pytest.raises(ConfigError, match="long-tailed set needs 150 images of class"):
        _digit_split(n_max=150)


def test_few_shot_draws_are_balanced():
    labels = np.repeat(np.arange(4), 6)
    draws = im.few_shot_draws(labels, k=2, n_draws=3, seed=0)
    assert draws.shape == (3, 8)
    for row in draws:
        assert np.array_equal(np.bincount(labels[row]), [2, 2, 2, 2])
    assert not np.array_equal(draws[0], draws[1]) or not np.array_equal(draws[1], draws[2])


def test_to_tokens_rows_and_patches():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    rows = im.to_tokens(x, (1, 8))
    assert rows.shape == (2, 8, 8)
    assert torch.equal(rows[1, 5], x[1, 0, 5])
    y = torch.randn(3, 32, 32)
    patches = im.to_tokens(y, (4, 4))
    assert patches.shape == (64, 48)
    assert torch.equal(patches[1 * 8 + 2], y[:, 4:8, 8:12].reshape(-1))  # patch row 1, col 2
    with pytest.raises(ValueError, match="must tile"):
        im.to_tokens(y, (5, 4))


@pytest.mark.parametrize("dataset, shape", [("digits", (1, 8, 8)), ("cifar10", (3, 32, 32))])
def test_augment_deterministic_and_shaped(dataset, shape):
    x = torch.rand(2, 4, *shape)
    draw = [im.sample_augment(dataset, 4, shape, torch.Generator().manual_seed(7)) for _ in "ab"]
    assert all(torch.equal(draw[0][k], draw[1][k]) for k in draw[0])
    params = {k: v.expand(2, *v.shape) for k, v in draw[0].items()}
    out = im.apply_augment(dataset, x, params)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)
    # the same draw applied to two replicas holding the same images gives the same views
    same = im.apply_augment(dataset, x[:1].expand(2, *x.shape[1:]), params)
    assert torch.equal(same[0], same[1])


def test_digit_augment_identity_parameters_keep_the_image():
    x = torch.rand(1, 3, 1, 8, 8)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(1, 3, 2, 3)
    params = {"theta": eye, "keep": torch.ones(1, 3, 1, 8, 8), "noise": torch.zeros(1, 3, 1, 8, 8)}
    assert torch.allclose(im.apply_augment("digits", x, params), x, atol=1e-5)


def test_unknown_dataset_is_a_config_error():
    message = r"dataset must be one of 'digits', 'cifar10' \(got 'mnist'\)"
    with pytest.raises(ConfigError, match=message):
        im.load_dataset("mnist")
    with pytest.raises(ConfigError, match=message):
        im.sample_augment("mnist", 4, (1, 8, 8), torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=message):
        im.token_shape("mnist")


@pytest.mark.parametrize("dataset", im.DATASETS)
def test_token_shape_matches_to_tokens(dataset):
    x = torch.rand(2, *im.IMAGE_SHAPE[dataset])
    assert im.to_tokens(x, im.PATCH[dataset]).shape[1:] == im.token_shape(dataset)
    assert im.token_shape("digits") == (8, 8) and im.token_shape("cifar10") == (64, 48)


def test_load_digits_range():
    ds = im.load_digits()
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0 and ds.n_classes == 10


def test_cifar_loader_reads_the_pickle_format(tmp_path):
    folder = write_fake_cifar(tmp_path)
    train, test = im.load_cifar10(root=tmp_path)
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and test.images.shape == (
        PER_BATCH,
        3,
        32,
        32,
    )
    assert train.classes[0] == "class0" and train.n_classes == 10
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
    pool, test = im.load_dataset("cifar10")
    assert len(pool.labels) == 5 * PER_BATCH and len(test.labels) == PER_BATCH


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        im.load_cifar10(root=tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / im.CIFAR_FOLDER) in msg
    assert im.CIFAR_URL in msg and "download=True" in msg and "IMBCL_DATA" in msg


def test_bad_cifar_batch_is_reported(tmp_path):
    folder = write_fake_cifar(tmp_path)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"must be \(N, 3072\)"):
        im.load_cifar10(root=tmp_path)


def test_download_is_atomic_from_a_local_archive(tmp_path):
    """The real download code, fed a file:// URL (no network): extracts into place, leaves
    no temporary files; a bad archive leaves no partial folder."""
    src = tmp_path / "src"
    write_fake_cifar(src)
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / im.CIFAR_FOLDER, arcname=im.CIFAR_FOLDER)
    root = tmp_path / "data"
    folder = im.download_cifar10(root, url=archive.as_uri())
    assert folder == root / im.CIFAR_FOLDER and sorted(p.name for p in root.iterdir()) == [
        im.CIFAR_FOLDER
    ]
    train, _ = im.load_cifar10(root=root)
    assert len(train.labels) == 5 * PER_BATCH

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(src / im.CIFAR_FOLDER / "batches.meta", arcname="other/batches.meta")
    root2 = tmp_path / "data2"
    with pytest.raises(FileNotFoundError):
        im.download_cifar10(root2, url=bad.as_uri())
    assert list(root2.iterdir()) == []
