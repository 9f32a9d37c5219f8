"""Tests of the project's own tooling: sanitizer, notebook stripping, book configuration."""

from __future__ import annotations

import re

import nbformat
import pytest
import yaml
from nbval.plugin import get_sanitize_patterns

from tests._tools import ROOT, load_script

strip_notebooks = load_script("strip_notebooks")
preexecute = load_script("preexecute")


def sanitize(text: str) -> str:
    cfg = (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    for regex, replace in get_sanitize_patterns(cfg):
        text = re.sub(regex, replace, text)
    return text


def test_every_sanitizer_regex_has_a_replace_line():
    cfg = (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    n_regex = len(re.findall(r"(?m)^regex: ", cfg))
    assert n_regex == len(get_sanitize_patterns(cfg)) > 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("loss 0.4312 after 3.2 s", "loss 0.4399 after 12.75 s"),
        ("<Figure at 0x7f3a2c1d>", "<Figure at 0x55aa01>"),
        ("tensor([1.], device='cuda:0')", "tensor([1.], device='cpu')"),
        ("100%|██████████| 50/50 [00:03<00:00, 15.2it/s]", "100%|███| 50/50 [00:01<00:00, 40it/s]"),
        ("Wall time: 1.2 s", "Wall time: 830 ms"),
        ("lr=1e-05", "lr=3e-04"),
        ("\x1b[32mPASS\x1b[0m", "PASS"),
    ],
)
def test_sanitizer_makes_runs_comparable(a, b):
    assert sanitize(a) == sanitize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("claim 1: PASS", "claim 1: FAIL"),
        ("8 of 8 neurons", "7 of 8 neurons"),
        ("holds: True", "holds: False"),
    ],
)
def test_sanitizer_keeps_verdicts(a, b):
    assert sanitize(a) != sanitize(b)


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    params = nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]})
    plot = nbformat.v4.new_code_cell("print(0.123)")
    check = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('claim 1: PASS')")
    for i, cell in enumerate((params, plot, check), start=3):
        cell.execution_count = i
        cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    plot.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="0.123\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<F>"}),
    ]
    check.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="claim 1: PASS\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<F>"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), params, plot, check]
    return nb


def test_strip_keeps_only_check_outputs():
    out = strip_notebooks.strip(_notebook())
    _, params, plot, check = out.cells
    assert "papermill" not in out.metadata
    assert params.outputs == [] and params.execution_count is None
    assert plot.outputs == [] and plot.execution_count is None
    assert check.execution_count == 1  # nbval skips cells whose stored count is null
    assert [o.output_type for o in check.outputs] == ["stream", "display_data"]
    assert check.outputs[1].data == {"text/plain": "<F>"}  # images are never references
    assert all("execution" not in c.metadata for c in out.cells)
    assert params.metadata["tags"] == ["parameters"]
    nbformat.validate(out)


def test_strip_is_idempotent():
    once = strip_notebooks.strip(_notebook())
    assert strip_notebooks.strip(once) == once


def test_toc_files_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part.get("chapters", [])]
    missing = [
        f for f in files if not any((ROOT / f).with_suffix(s).is_file() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_toc_notebooks_are_the_chapters_and_the_pages():
    listed = set(preexecute.toc_notebooks(ROOT / "_toc.yml"))
    known = set((ROOT / "notebooks").glob("*.ipynb")) | set((ROOT / "book").glob("*.ipynb"))
    assert listed == known, "every notebook is in _toc.yml and every toc entry exists"


def test_book_builds_offline():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"]["intersphinx_mapping"] == {}
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["timeout"] > 0
