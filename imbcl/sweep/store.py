"""The results store: one verified, atomically written directory per task key.

Layout under the root::

    ab/abcdef.../table.parquet      Result.table
                 arrays/<name>.npy  Result.arrays, one file each (read back as memory maps)
                 meta.json          Result.meta
                 MANIFEST.json      written last: key, task spec, size and sha256 of each file
    .tmp/<key>~<host>~<pid>~<nonce>/   entries being written
    .trash/...                      corrupt entries being removed

An entry is written into ``.tmp`` (every file fsynced, MANIFEST last) and renamed into place in
one ``os.rename``, so a reader sees a complete entry or none. Every read checks the manifest's
sizes and sha256s; an entry that fails (partial, truncated, edited) is removed and reported as
missing, so the caller recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tomllib
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from imbcl.sweep.task import Result, Task, canonical

FORMAT = 1
KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MANIFEST = "MANIFEST.json"
TABLE = "table.parquet"
META = "meta.json"
ARRAYS = "arrays"


class CorruptEntry(Exception):
    """An entry on disk that does not match its manifest (or has none)."""


def default_root() -> Path:
    """``IMBCL_STORE``; else ``<repo>/_build/store`` in a source checkout; else the user cache.

    A source checkout is a parent folder of the package that holds a ``pyproject.toml`` naming
    the project ``imbcl``.
    """
    if os.environ.get("IMBCL_STORE"):
        return Path(os.environ["IMBCL_STORE"]).expanduser()
    for parent in Path(__file__).resolve().parents[2:]:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file():
            try:
                name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
            except (OSError, tomllib.TOMLDecodeError):
                name = None
            if name == "imbcl":
                return parent / "_build" / "store"
    return Path.home() / ".cache" / "imbcl" / "store"


def file_digest(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def temp_name(stem: str) -> str:
    """``<stem>~<host>~<pid>~<nonce>``: unique, and says which process may still use it."""
    return f"{stem}~{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_entry(folder: Path, result: Result) -> dict[str, dict]:
    """Write a result's table, arrays and meta into ``folder``, fsynced; return each file's
    ``{"bytes", "sha256"}`` by relative path."""
    write_synced(
        folder / META, json.dumps(canonical(result.meta), indent=1, sort_keys=True).encode()
    )
    with open(folder / TABLE, "wb") as f:
        result.table.to_parquet(f)
        f.flush()
        os.fsync(f.fileno())
    for name, array in result.arrays.items():
        with open(folder / ARRAYS / f"{name}.npy", "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    return {
        path.relative_to(folder).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": file_digest(path),
        }
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def verified_manifest(path: Path, key: str) -> dict:
    """The entry's manifest, after checking that the files on disk are exactly those it
    lists, with their sizes and sha256s; ``CorruptEntry`` otherwise."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise CorruptEntry("no MANIFEST.json: partial entry") from None
    except (OSError, ValueError) as exc:
        raise CorruptEntry(f"unreadable MANIFEST.json: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptEntry(f"MANIFEST.json is not format {FORMAT}")
    if manifest.get("key") != key:
        raise CorruptEntry(f"MANIFEST.json names key {manifest.get('key')!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or TABLE not in listed or META not in listed:
        raise CorruptEntry("MANIFEST.json lists no table/meta")
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST}
    if on_disk != set(listed):
        raise CorruptEntry(f"files differ from MANIFEST.json: {sorted(on_disk ^ set(listed))}")
    for name, want in listed.items():
        file = path / name
        try:
            size = file.stat().st_size
            if size != want["bytes"]:
                raise CorruptEntry(f"{name}: {size} bytes, MANIFEST.json says {want['bytes']}")
            if file_digest(file) != want["sha256"]:
                raise CorruptEntry(f"{name}: sha256 differs from MANIFEST.json")
        except OSError as exc:
            raise CorruptEntry(f"{name}: {exc}") from None
    return manifest


def load_entry(path: Path, manifest: dict) -> Result:
    """The result in a verified entry; arrays as read-only memory maps."""
    try:
        arrays = {
            name.removeprefix(f"{ARRAYS}/").removesuffix(".npy"): np.load(
                path / name, mmap_mode="r", allow_pickle=False
            )
            for name in sorted(manifest["files"])
            if name.startswith(f"{ARRAYS}/")
        }
        table = pd.read_parquet(path / TABLE)
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError) as exc:
        raise CorruptEntry(f"unreadable content: {exc}") from None
    return Result(table=table, arrays=arrays, meta=meta)


class Store:
    """Task results by key under ``root`` (default :func:`default_root`), safe for concurrent
    writers on one shared filesystem."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(default_root() if root is None else root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"store root {self.root} exists and is not a directory")

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The entry directory of ``key`` (64 lowercase hex digits)."""
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ValueError(f"store key must be 64 lowercase hex digits (got {key!r})")
        return self.root / key[:2] / key

    def get(self, key: str) -> Result | None:
        """The verified result stored under ``key``; ``None`` if absent, partial or corrupt
        (a bad entry is removed, with a ``RuntimeWarning``)."""
        path = self.path(key)
        if not path.is_dir():
            return None
        try:
            manifest = verified_manifest(path, key)
            return load_entry(path, manifest)
        except CorruptEntry as exc:
            self.discard(path)
            warnings.warn(
                f"store entry {path} is corrupt ({exc}); removed, it will be recomputed",
                RuntimeWarning,
                stacklevel=2,
            )
            return None

    def put(self, key: str, result: Result, task: Task) -> bool:
        """Store ``result`` under ``key`` atomically; ``False`` if a valid entry was already
        there (then nothing is written)."""
        final = self.path(key)
        if self.get(key) is not None:
            return False
        tmp = self.root / ".tmp" / temp_name(key)
        (tmp / ARRAYS).mkdir(parents=True)
        try:
            files = write_entry(tmp, result)
            manifest = {"format": FORMAT, "key": key, "task": task.spec(), "files": files}
            write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
            fsync_dir(tmp / ARRAYS)
            fsync_dir(tmp)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                return False  # another writer won the race; its entry is the same result
            fsync_dir(final.parent)
            return True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def discard(self, path: Path) -> None:
        """Remove an entry directory: renamed out of place first, so no reader sees it half
        deleted. A concurrent removal of the same entry is not an error."""
        trash = self.root / ".trash" / temp_name(path.name)
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def remove_stale_temps(self) -> int:
        """Remove what writers on this host left in ``.tmp``/``.trash`` when killed (their
        process is gone); return how many. Entries of live processes and other hosts stay."""
        host = socket.gethostname()
        removed = 0
        for folder in (self.root / ".tmp", self.root / ".trash"):
            for path in folder.glob("*~*~*~*") if folder.is_dir() else ():
                _, path_host, pid, _ = path.name.rsplit("~", 3)
                if path_host == host and pid.isdigit() and not pid_alive(int(pid)):
                    shutil.rmtree(path, ignore_errors=True)
                    removed += 1
        return removed
