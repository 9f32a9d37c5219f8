"""The package's layers: a module imports only from its own layer or the layers below.

engine (1) < sweep (2) < studies, images (3) < report (4); ``imbcl/__init__.py`` exposes the
engine, ``imbcl/__main__.py`` (the command line) sits above everything. Within layer 3 a
study does not import another study (``studies.runs`` is their shared task), and the real-image
pipeline and the synthetic studies do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "imbcl"
LAYERS = {"engine": 1, "sweep": 2, "studies": 3, "images": 3, "report": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imbcl_imports(path: Path) -> set[str]:
    """Every imbcl module that ``path`` imports (``from imbcl import x`` counts as imbcl.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("imbcl")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imbcl"):
            if node.module == "imbcl":
                found |= {f"imbcl.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def violations(here: str, targets: set[str]) -> list[str]:
    """Why each import of ``here`` (a module name) of ``targets`` breaks the layers."""
    out, mine = [], layer(here)
    for target in sorted(targets):
        theirs = layer(target)
        if here == "imbcl.__main__" or theirs is None:
            continue
        if here == "imbcl":
            if theirs != 1:
                out.append(f"imbcl/__init__.py imports {target}: expose the engine only")
        elif mine is None:
            out.append(f"{here}: module outside the layers")
        elif theirs > mine:
            out.append(f"{here} (layer {mine}) imports {target} (layer {theirs})")
        elif mine == 3 and theirs == 3:
            if here.split(".")[1] != target.split(".")[1]:
                out.append(f"{here} imports {target}: studies and images are apart")
            elif here.startswith("imbcl.studies") and target != "imbcl.studies.runs":
                out.append(f"{here} imports another study {target}")
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down(path):
    assert violations(module_name(path), imbcl_imports(path)) == []


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from imbcl.report import figures\nfrom imbcl import sweep\n")
    assert imbcl_imports(bad) == {"imbcl.report", "imbcl.sweep"}
    assert violations("imbcl.engine.train", {"imbcl.report.figures"})
    assert violations("imbcl.studies.stages", {"imbcl.studies.capacity"})
    assert violations("imbcl.images.study", {"imbcl.studies.runs"})
    assert violations("imbcl", {"imbcl.sweep"})
    assert not violations("imbcl.report.ch1", {"imbcl.studies.stages", "imbcl.engine.train"})
