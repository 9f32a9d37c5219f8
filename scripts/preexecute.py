"""Execute the book's notebooks into the jupyter cache in parallel, before Sphinx runs.

MyST-NB (execute_notebooks: cache) executes notebooks one after another inside the Sphinx
build. To use both cores on a cold build, this script adds every notebook listed in _toc.yml
to the same jupyter-cache project that MyST-NB reads, and runs the ones without a valid cache
entry with jupyter-cache's ``local-parallel`` executor (one process per core, notebooks run in
their own folder, as MyST-NB does with run_in_temp: false). Sphinx then finds them cached.

A notebook that fails here fails the build at once, with its traceback, instead of being
executed a second time by Sphinx. Each notebook's start and end is printed as it happens
(jupyter-cache's pool reports them through multiprocessing's logger at its REPORT level).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Notebooks that read every chapter's runs from the results store: executed after the others.
LAST = ("book/scorecard.ipynb",)


def toc_notebooks(toc: Path) -> list[Path]:
    """Notebooks (``.ipynb``) referenced by ``file:`` entries of a Jupyter Book toc."""
    found: list[Path] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    path = ROOT / value
                    if path.suffix == "":
                        path = path.with_suffix(".ipynb")
                    if path.suffix == ".ipynb" and path.is_file():
                        found.append(path)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text()))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="_build/.jupyter_cache")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    parser.add_argument("--toc", default="_toc.yml", help="table of contents to read")
    args = parser.parse_args()

    toc = ROOT / args.toc
    notebooks = toc_notebooks(toc)
    if not notebooks:
        print(f"preexecute: no notebooks in {toc.name} yet")
        return 0

    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(str(ROOT / args.cache))
    for nb in notebooks:
        cache.add_nb_to_project(str(nb))
    print(
        f"preexecute: {len(notebooks)} notebook(s) in {toc.name}; running the uncached ones",
        flush=True,
    )
    # The executor only runs project notebooks that have no valid cache entry. A logger at INFO
    # makes its pool print "Executing: <notebook>" and "Execution Successful: <notebook>".
    logger = logging.getLogger("preexecute")
    logger.setLevel(logging.INFO)
    start = time.monotonic()
    executor = load_executor("local-parallel", cache, logger=logger)
    last = {ROOT / name for name in LAST}
    executed, failed = 0, []
    for batch in (
        [nb for nb in notebooks if nb not in last],
        [nb for nb in notebooks if nb in last],
    ):
        if not batch:
            continue
        result = executor.run_and_cache(filter_uris=[str(nb) for nb in batch], timeout=args.timeout)
        # Two notebooks with identical code cells share one cache entry; run in parallel, the
        # second insert of that entry errors although the notebook ran. Count it as a success.
        errors = result.excepted + result.errored
        failed += [u for u in errors if cache.get_cached_project_nb(u) is None]
        executed += len(result.all())
        if failed:
            break
    for uri in failed:
        record = cache.get_project_record(uri)
        print(f"\npreexecute: FAILED {uri}\n{record.traceback or ''}", file=sys.stderr)
    print(
        f"preexecute: {executed - len(failed)} executed, {len(failed)} failed "
        f"in {time.monotonic() - start:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
