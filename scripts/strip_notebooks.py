"""Strip chapter notebooks to the form they are committed in.

Policy (enforced by tests/test_notebooks_clean.py):

* every cell loses its outputs and its execution count, EXCEPT code cells whose source
  contains the marker ``# NBVAL_CHECK_OUTPUT``: those keep their text outputs, which are the
  reference that ``pytest --nbval-lax`` compares against. nbval skips the comparison for any
  cell whose stored execution_count is null, so a kept reference also keeps an execution
  count (normalised to 1, to keep diffs quiet);
* run-specific metadata (papermill, execution timings, widget state) is dropped.

With ``--execute`` the notebooks are first run top to bottom (run ``IMBCL_PROFILE=small`` so
the references match the profile that the test suite uses); that is how references are made
or refreshed (``make refs``). Without it, existing outputs are only stripped (``make strip``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
KEPT_MIME = ("text/plain", "text/html", "text/markdown", "text/latex")
DROP_NB_METADATA = ("papermill", "widgets", "execution")
DROP_CELL_METADATA = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")


def is_check_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and CHECK_MARKER in cell.get("source", "")


def _kept_outputs(outputs: list) -> list:
    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            kept.append(out)
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in out.get("data", {}).items() if k in KEPT_MIME}
            if data:
                new = dict(out, data=data, metadata={})
                if kind == "execute_result":
                    new["execution_count"] = 1
                kept.append(new)
        # errors and images are never kept as references
    return kept


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a stripped copy of ``nb`` following the policy above."""
    nb = copy.deepcopy(nb)
    for key in DROP_NB_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in DROP_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        outputs = _kept_outputs(cell.outputs) if is_check_cell(cell) else []
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cell.execution_count = 1 if outputs else None
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--execute", action="store_true", help="run each notebook first")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)

    paths = [p for p in args.notebooks if p.suffix == ".ipynb" and p.is_file()]
    if not paths:
        print("strip: no notebooks given")
        return 0
    for path in paths:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if args.execute:
            print(f"strip: executing {path}", flush=True)
            nb = execute(nb, path.parent.resolve(), args.timeout)
        new = strip(nb)
        if new != nb or args.execute:
            nbformat.write(new, path)
            print(f"strip: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
