"""Command line: ``python -m imbcl sweep <chapter> [-p NAME VALUE ...]`` fills the results store;
``python -m imbcl robustness`` runs the perturbation suite.

A chapter's study module exposes ``Settings.from_params(profile, **overrides)`` (a dataclass
that validates every value) and ``plan(settings) -> list[Task]``; its notebook runs the same
plan, so once a sweep has filled the store the notebook renders from it in seconds::

    python -m imbcl sweep ch2 -p n_seeds 50 --scheduler tcp://host:8786
    papermill notebooks/ch2_capacity.ipynb out.ipynb -p n_seeds 50
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time

from imbcl.report.book import CHAPTERS, study_module
from imbcl.sweep import Store, Task, run

PROFILES = ("full", "small")


def parse_value(text: str) -> object:
    """A ``-p`` value as papermill reads it: a number, a bool or None if it is one, else the
    string itself (so a grid such as ``1,2,4`` stays the string the settings parse)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, int | float | bool | type(None)) else text


def profile(chosen: str | None) -> str:
    """``--profile`` if given, else env ``IMBCL_PROFILE``, else ``full``; checked either way."""
    name = chosen or os.environ.get("IMBCL_PROFILE") or "full"
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)} (got {name!r})")
    return name


def overrides(params: list[tuple[str, str]]) -> dict[str, object]:
    """``-p NAME VALUE`` pairs as keyword overrides (unknown names are refused by the study's
    ``Settings.from_params``); ``ValueError`` if a name is given twice."""
    names = [name for name, _ in params]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"parameter(s) given more than once: {', '.join(repeated)}")
    return {name: parse_value(value) for name, value in params}


def sweep(chapter: str, tasks: list[Task], store: Store, scheduler: str | None) -> int:
    """Run a chapter's tasks through :func:`imbcl.sweep.run`; print a summary. Exit status 1
    if a task failed (each listed on stderr with its spec and error)."""
    start = time.monotonic()
    results = run(tasks, store=store, scheduler=scheduler, name=chapter, errors="collect")
    wall = time.monotonic() - start
    counts = {s: results.status.count(s) for s in ("cached", "computed", "failed")}
    print(
        f"{chapter}: {len(tasks)} tasks, {counts['cached']} cached, "
        f"{counts['computed']} computed, {counts['failed']} failed in {wall:.1f} s "
        f"(store {store.root})"
    )
    for row in results.failures.itertuples():
        print(f"FAILED {row.label}: {row.fn}(**{row.kwargs})", file=sys.stderr)
        print(f"  {row.error}: {row.message}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def scheduler_arg(text: str) -> str:
    """``--scheduler``: ``inprocess`` or an address with a protocol (``tcp://host:8786``)."""
    if text != "inprocess" and "://" not in text:
        raise argparse.ArgumentTypeError(
            f"expected 'inprocess' or an address such as tcp://host:8786 (got {text!r})"
        )
    return text


def parser() -> argparse.ArgumentParser:
    """``python -m imbcl``'s argument parser."""
    top = argparse.ArgumentParser(prog="python -m imbcl", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("robustness", help="the perturbation suite (see --help there)")
    cmd = commands.add_parser("sweep", help="fill the results store with a chapter's tasks")
    cmd.add_argument("chapter", help=f"one of {', '.join(CHAPTERS)}, or a study module path")
    cmd.add_argument(
        "-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a setting"
    )
    cmd.add_argument(
        "--profile",
        choices=PROFILES,
        help="settings profile (default: env IMBCL_PROFILE, else full)",
    )
    cmd.add_argument(
        "--scheduler",
        type=scheduler_arg,
        help="'inprocess', or a Dask scheduler address such as tcp://host:8786 "
        "(default: env IMBCL_SCHEDULER, else a local cluster, one worker per core)",
    )
    cmd.add_argument(
        "--store",
        help="results store folder (default: env IMBCL_STORE, else "
        "_build/store in a source checkout)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, build the chapter's plan and run it. Invalid input (chapter, parameter
    names and values, store) exits with status 2 before any compute. ``robustness`` runs the
    perturbation suite (:mod:`imbcl.report.robustness`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["robustness"]:
        from imbcl.report import robustness

        return robustness.main(argv[1:])
    top = parser()
    args = top.parse_args(argv)
    try:
        module = study_module(args.chapter)
        settings = module.Settings.from_params(profile(args.profile), **overrides(args.p or []))
        tasks = module.plan(settings)
        store = Store(args.store)
    except (ValueError, TypeError, OSError) as exc:
        top.error(str(exc))
    return sweep(args.chapter, tasks, store, args.scheduler)


if __name__ == "__main__":
    sys.exit(main())
