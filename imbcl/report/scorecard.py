"""The scorecard: every claim of the book on one page, with its status and this build's verdict.

One row per registry claim: the statement we test, the paper's statement, the status, the
mean over seeds with its 95 % CI against the threshold, the seeds on the claimed side, the
outcome, and a link to the chapter section that computes it. :func:`to_markdown` renders the
table as MyST for the book page: each link is a ``{ref}`` to the section's label, so Sphinx
resolves it and a missing label fails the build (``nb_render_markdown_format: myst`` in
``_config.yml``). :func:`to_json` exports the same rows, with the links as paths relative to the
HTML root, for readers and for comparing builds; :func:`read_json` reads them back.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import yaml

from imbcl.report.registry import ClaimSpec
from imbcl.report.verdicts import (
    LEVEL,
    Verdict,
    estimate_text,
    require_same_ids,
    seeds_text,
    threshold_text,
)

#: Markdown table header: (column of :func:`scorecard`, heading on the page).
PAGE_COLUMNS = (
    ("claim", "Claim"),
    ("paper", "The paper"),
    ("regime", "Regime"),
    ("status", "Status"),
    ("mask", "Depends on masking"),
    ("estimate", "Mean [95 % CI]"),
    ("seeds", "Seeds"),
    ("outcome", "This build"),
    ("section", "Computed in"),
)


def _toc_files(node) -> list[str]:
    """Every 'root' and 'file' entry of a parsed _toc.yml, in order."""
    if isinstance(node, dict):
        return [
            f for k, v in node.items() for f in ([v] if k in ("root", "file") else _toc_files(v))
        ]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def chapter_pages(toc: str | Path) -> dict[str, str]:
    """{chapter: page} from a Jupyter Book ``_toc.yml``: the files named '<chapter>_...', e.g.
    {"ch1": "notebooks/ch1_stages"}. Raises ValueError if a chapter has two pages."""
    pages: dict[str, str] = {}
    for entry in _toc_files(yaml.safe_load(Path(toc).read_text())):
        match = re.match(r"(ch\d+)_", Path(entry).name)
        if match is None:
            continue
        chapter = match.group(1)
        if chapter in pages:
            raise ValueError(f"{toc}: two pages for {chapter}: {pages[chapter]}, {entry}")
        pages[chapter] = str(Path(entry).with_suffix(""))
    return pages


def href(spec: ClaimSpec, pages: Mapping[str, str]) -> str:
    """The claim's section as a path relative to the HTML root: '<page>.html#<anchor>'."""
    if spec.chapter not in pages:
        raise KeyError(f"{spec.id}: no page for {spec.chapter} (pages: {dict(pages)})")
    return f"{pages[spec.chapter]}.html#{spec.anchor}"


def scorecard(
    specs: Iterable[ClaimSpec], verdicts: Mapping[str, Verdict], pages: Mapping[str, str]
) -> pd.DataFrame:
    """One row per claim, in registry order: id, chapter, claim (the statement tested),
    paper, status, regime, mask_dependent, statistic, estimate ('mean [lo, hi]'), threshold, seeds ('k/n' on the
    claimed side), outcome, anchor and href (see :func:`href`). ``verdicts`` maps each id to
    its Verdict and must cover exactly ``specs``."""
    specs = tuple(specs)
    require_same_ids(specs, verdicts, "verdicts")
    return pd.DataFrame(
        [
            {
                "id": s.id,
                "chapter": s.chapter,
                "claim": s.tested,
                "paper": s.paper,
                "status": s.status,
                "regime": s.regime,
                "mask_dependent": s.mask_dependent,
                "statistic": s.statistic,
                "estimate": estimate_text(verdicts[s.id]),
                "threshold": threshold_text(s),
                "seeds": seeds_text(verdicts[s.id]),
                "outcome": verdicts[s.id].outcome,
                "anchor": s.anchor,
                "href": href(s, pages),
            }
            for s in specs
        ]
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", r"\|")


def _page_cells(row: pd.Series) -> dict[str, str]:
    chapter = row["chapter"].removeprefix("ch")
    return {
        "claim": f"`{row['id']}`: {row['claim']}",
        "paper": row["paper"],
        "regime": row["regime"],
        "status": row["status"],
        "mask": {True: "yes", False: "no"}.get(row["mask_dependent"], "–"),
        "estimate": f"{row['estimate']}, needs {row['threshold']} ({row['statistic']})",
        "seeds": row["seeds"],
        "outcome": row["outcome"],
        "section": f"{{ref}}`Chapter {chapter} <{row['anchor']}>`",
    }


def to_markdown(table: pd.DataFrame) -> str:
    """The :func:`scorecard` table as a MyST Markdown table, one row per claim; the last
    column links to the section that computes the claim (a ``{ref}`` to its label)."""
    lines = [
        "| " + " | ".join(head for _, head in PAGE_COLUMNS) + " |",
        "|" + "---|" * len(PAGE_COLUMNS),
    ]
    for _, row in table.iterrows():
        cells = _page_cells(row)
        lines.append("| " + " | ".join(_cell(cells[col]) for col, _ in PAGE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def to_json(
    path: str | Path,
    specs: Iterable[ClaimSpec],
    verdicts: Mapping[str, Verdict],
    pages: Mapping[str, str],
) -> Path:
    """Write the scorecard to ``path`` as strict JSON, atomically (a temporary file in the same
    folder, then a rename): {"level": 0.95, "claims": [claim fields..., "href", "verdict":
    {...}]}. An unbounded CI side is written as null. Returns the path."""
    specs, path = tuple(specs), Path(path)
    table = scorecard(specs, verdicts, pages)
    claims = []
    for s, link in zip(specs, table["href"], strict=True):
        verdict = asdict(verdicts[s.id])
        verdict["lo"], verdict["hi"] = map(_finite_or_none, (verdict["lo"], verdict["hi"]))
        claims.append(asdict(s) | {"href": link, "verdict": verdict})
    text = json.dumps({"level": LEVEL, "claims": claims}, indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | Path) -> tuple[tuple[ClaimSpec, ...], dict[str, Verdict]]:
    """The claims and verdicts of a scorecard written by :func:`to_json`."""
    data = json.loads(Path(path).read_text())
    spec_fields = {f.name for f in fields(ClaimSpec)}
    specs, verdicts = [], {}
    for record in data["claims"]:
        specs.append(ClaimSpec(**{k: v for k, v in record.items() if k in spec_fields}))
        v = dict(record["verdict"])
        v["lo"] = -math.inf if v["lo"] is None else v["lo"]
        v["hi"] = math.inf if v["hi"] is None else v["hi"]
        verdicts[v["id"]] = Verdict(**v)
    return tuple(specs), verdicts
