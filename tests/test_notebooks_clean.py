"""Chapter notebooks are committed clean, so diffs stay readable and nbval has references.

Policy (implemented by scripts/strip_notebooks.py, applied with `make strip` / `make refs`):
no outputs and no execution counts, except that code cells marked `# NBVAL_CHECK_OUTPUT`
keep their text outputs (with an execution count, without which nbval would skip them) as
the reference that `pytest --nbval-lax` compares against. Every notebook has exactly one
cell tagged `parameters` (papermill).
"""

from __future__ import annotations

import nbformat
import pytest

from tests._tools import ROOT, load_script

strip_notebooks = load_script("strip_notebooks")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: The book's executable pages (setting, scorecard): committed stripped too, no parameters.
PAGES = sorted((ROOT / "book").glob("*.ipynb"))

pytestmark = pytest.mark.notebook

if NOTEBOOKS:
    params = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
else:
    params = pytest.mark.parametrize(
        "path",
        [pytest.param(None, marks=pytest.mark.skip(reason="notebooks/ has no chapter yet"))],
    )


def _read(path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=[p.name for p in NOTEBOOKS + PAGES])
def test_committed_stripped(path):
    nb = _read(path)
    stripped = strip_notebooks.strip(nb)
    dirty = [
        i
        for i, (cell, clean) in enumerate(zip(nb.cells, stripped.cells, strict=True))
        if cell != clean
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or run metadata; run `make strip`"
    assert nb.metadata == stripped.metadata, f"{path.name}: run metadata left; run `make strip`"


@params
def test_one_parameters_cell(path):
    nb = _read(path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: cells tagged 'parameters': {tagged} (need exactly 1)"
    assert nb.cells[tagged[0]].cell_type == "code"


@params
def test_check_cells_have_references(path):
    nb = _read(path)
    missing = [
        i
        for i, c in enumerate(nb.cells)
        if strip_notebooks.is_check_cell(c) and (c.execution_count is None or not c.outputs)
    ]
    assert not missing, (
        f"{path.name}: '# NBVAL_CHECK_OUTPUT' cells {missing} have no stored reference, so nbval "
        "would compare nothing; run `make refs`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=[p.name for p in NOTEBOOKS + PAGES])
def test_valid_nbformat(path):
    nbformat.validate(_read(path))
