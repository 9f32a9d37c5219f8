"""The numeric environment: everything besides a task's arguments that changes its result's bits.

A result is reused only where it would be recomputed bit for bit: the same CPU kernels (torch's
CPU capability, e.g. AVX2 vs AVX512), thread count, device type, library versions and imbcl
source. All of it goes into every task's key (:meth:`imbcl.sweep.task.Task.key`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from imbcl.engine.runtime import default_device

PACKAGE_DIR = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "pandas")
#: The code a task can run: the layers up to the studies and the image pipeline. The report
#: layer and the command line are left out: a task's function lives in a study (or the image
#: pipeline), which by the layering rule (tests/test_layers.py) imports neither, so editing
#: them cannot change a stored result.
TASK_LAYERS = ("engine", "sweep", "studies", "images")


def task_source_files() -> list[Path]:
    """``imbcl/__init__.py`` and every module of :data:`TASK_LAYERS`, sorted."""
    files = [PACKAGE_DIR / "__init__.py"]
    for layer in TASK_LAYERS:
        files += (PACKAGE_DIR / layer).rglob("*.py")
    return sorted(files, key=lambda p: p.relative_to(PACKAGE_DIR))


def code_text(source: str) -> str:
    """The code of a module without its comments and docstrings (the dump of its syntax tree
    with every docstring removed): what can change a result."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:]
    return ast.dump(tree)


@functools.cache
def source_hash() -> str:
    """sha256 over the code a task can run (:func:`task_source_files`: relative paths and
    :func:`code_text`, so editing a comment or a docstring keeps stored results).

    Computed once per process, so that a long-lived worker keeps reporting the source it
    loaded, and a client that sees other files on disk is told to restart the workers.
    """
    digest = hashlib.sha256()
    for path in task_source_files():
        content = hashlib.sha256(code_text(path.read_text()).encode()).hexdigest()
        digest.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


@functools.cache
def library_versions() -> tuple[tuple[str, str], ...]:
    """``(distribution, version)`` of the libraries whose version can change numeric results."""
    return tuple((name, metadata.version(name)) for name in LIBRARIES)


@dataclass(frozen=True)
class NumericEnv:
    """Where a task computes: part of every task key.

    ``cpu_capability``: ``torch.backends.cpu.get_cpu_capability()`` (e.g. ``"AVX2"``);
    ``threads``: torch's intra-op thread count; ``device``: device type (``"cpu"``,
    ``"cuda"``); ``versions``: ``(distribution, version)`` pairs; ``source``: sha256 of imbcl's
    source.
    """

    cpu_capability: str
    threads: int
    device: str
    versions: tuple[tuple[str, str], ...]
    source: str

    @classmethod
    def local(cls, threads: int | None = None) -> NumericEnv:
        """This process's environment; ``threads`` overrides torch's current thread count."""
        return cls(
            cpu_capability=torch.backends.cpu.get_cpu_capability(),
            threads=torch.get_num_threads() if threads is None else threads,
            device=default_device().type,
            versions=library_versions(),
            source=source_hash(),
        )

    def to_dict(self) -> dict:
        """Plain JSON data (versions as a dict)."""
        return {
            "cpu_capability": self.cpu_capability,
            "threads": self.threads,
            "device": self.device,
            "versions": dict(self.versions),
            "source": self.source,
        }

    def differences(self, other: NumericEnv) -> str:
        """``"name: self-value != other-value"`` for every field that differs, ``; ``-joined."""
        mine, theirs = self.to_dict(), other.to_dict()
        return "; ".join(f"{k}: {mine[k]} != {theirs[k]}" for k in mine if mine[k] != theirs[k])
