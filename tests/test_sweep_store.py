"""The results store: round trip, verification, atomic writes, default location."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbcl.sweep import Store, Task
from imbcl.sweep.store import default_root
from tests.sweep_tasks import simulate

KEY = "ab" + "0" * 62
TASK = Task("tests.sweep_tasks:simulate", {"seed": 1}, "sim seed=1")


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.arrays.keys() == b.arrays.keys()
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    assert all(a.arrays[k].dtype == b.arrays[k].dtype for k in a.arrays)


@pytest.fixture
def stored(tmp_path):
    store = Store(tmp_path / "store")
    result = simulate(seed=1)
    assert store.put(KEY, result, TASK)
    return store, result


def test_round_trip_is_exact_with_lazy_arrays(stored):
    store, result = stored
    back = store.get(KEY)
    assert_same(back, result)
    assert back.meta == {"seed": 1, "shape": [32, 32]}
    assert isinstance(back.arrays["w"], np.memmap) and not back.arrays["w"].flags.writeable
    entry = store.path(KEY)
    assert entry == store.root / "ab" / KEY
    manifest = json.loads((entry / "MANIFEST.json").read_text())
    assert manifest["task"] == {"fn": TASK.fn, "kwargs": {"seed": 1}, "label": "sim seed=1"}
    assert set(manifest["files"]) == {
        "table.parquet",
        "meta.json",
        "arrays/w.npy",
        "arrays/noise.npy",
    }
    assert not list((store.root / ".tmp").iterdir())  # nothing left behind


def test_absent_key_is_none_and_bad_key_is_refused(tmp_path):
    store = Store(tmp_path)
    assert store.get("cd" + "1" * 62) is None
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        store.get("../etc")


def test_second_put_keeps_the_first_entry(stored):
    store, result = stored
    before = (store.path(KEY) / "MANIFEST.json").stat().st_mtime_ns
    assert not store.put(KEY, simulate(seed=2), TASK)
    assert (store.path(KEY) / "MANIFEST.json").stat().st_mtime_ns == before
    assert_same(store.get(KEY), result)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda e: truncate(e / "table.parquet"), "bytes, MANIFEST.json says"),
        (lambda e: flip_byte(e / "arrays" / "w.npy"), "sha256 differs"),
        (lambda e: (e / "MANIFEST.json").unlink(), "no MANIFEST.json"),
        (lambda e: (e / "MANIFEST.json").write_text("{"), "unreadable MANIFEST.json"),
        (lambda e: (e / "arrays" / "noise.npy").unlink(), "files differ"),
        (lambda e: (e / "arrays" / "extra.npy").write_bytes(b""), "files differ"),
    ],
)
def test_corrupt_entry_is_removed_and_reported_missing(stored, damage, reason):
    store, result = stored
    damage(store.path(KEY))
    with pytest.warns(RuntimeWarning, match=reason):
        assert store.get(KEY) is None
    assert not store.path(KEY).exists()
    assert store.put(KEY, result, TASK)  # the recomputed result takes its place
    assert_same(store.get(KEY), result)


def test_partial_write_is_never_read(tmp_path):
    """A writer killed before its rename leaves a temp dir that no reader looks at; the stale
    temp is removed once its process is gone, a live writer's temp stays."""
    store = Store(tmp_path)
    assert store.put(KEY, simulate(seed=1), TASK)
    host = socket.gethostname()
    dead = store.root / ".tmp" / f"{'cd' + '2' * 62}~{host}~999999999~x"
    live = store.root / ".tmp" / f"{'cd' + '3' * 62}~{host}~{os.getpid()}~x"
    shutil.copytree(store.path(KEY), dead)
    live.mkdir()
    assert store.get("cd" + "2" * 62) is None
    assert store.remove_stale_temps() == 1
    assert not dead.exists() and live.exists()


def test_rename_race_keeps_one_entry(stored, monkeypatch):
    """Two writers of one key: the second finds the final dir taken at rename and discards its
    temp dir."""
    store, result = stored
    monkeypatch.setattr(store, "get", lambda key: None)  # pretend the entry was not there yet
    assert not store.put(KEY, simulate(seed=1), TASK)
    assert not list((store.root / ".tmp").iterdir())
    monkeypatch.undo()
    assert_same(store.get(KEY), result)


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("IMBCL_STORE", str(tmp_path / "s"))
    assert default_root() == tmp_path / "s"
    monkeypatch.delenv("IMBCL_STORE")
    root = Path(__file__).resolve().parents[1]
    assert default_root() == root / "_build" / "store"


def test_root_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        Store(tmp_path / "f")
