"""The scorecard rendered from a small fake registry: every claim once, with its status and
its link; the JSON export round-trips and is strict JSON."""

import json
import math
import re
from pathlib import Path

import pytest

from imbcl.report import scorecard as SC
from imbcl.report.registry import ClaimSpec
from imbcl.report.verdicts import Verdict

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"ch1": "notebooks/ch1_stages", "ch2": "notebooks/ch2_capacity"}


def _claim(id, chapter, anchor, status, tested, direction=">", threshold=0.0):
    return ClaimSpec(
        id=id,
        chapter=chapter,
        anchor=anchor,
        paper=f"Paper statement behind {id}.",
        tested=tested,
        statistic="a per-seed difference (points)",
        direction=direction,
        threshold=threshold,
        regime="rho = 10",
        status=status,
    )


SPECS = (
    _claim("ch1.onset-order", "ch1", "ch1-claims", "reproduced", "Minority onset comes later."),
    _claim("ch1.cliff", "ch1", "ch1-cliff", "inconclusive", "A cliff | between 7 and 10."),
    _claim(
        "ch2.width",
        "ch2",
        "ch2-claims",
        "reproduced in a stated regime",
        "Minority features need $m$ wider.",
        direction="within",
        threshold=0.5,
    ),
)
VERDICTS = {
    "ch1.onset-order": Verdict(
        "ch1.onset-order", 8, 0, 12.5, 8.25, 16.0, 8, 1 / 256, "holds", True
    ),
    "ch1.cliff": Verdict("ch1.cliff", 10, 2, 0.1, -math.inf, 0.4, 6, 0.38, "undecided", False),
    "ch2.width": Verdict("ch2.width", 6, 0, 0.01, -0.2, 0.3, 6, 1.0, "holds", True),
}


def _rows(markdown: str) -> list[list[str]]:
    """Body rows of a Markdown table, split on unescaped pipes."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")][2:]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_page_has_every_claim_once_with_status_and_link():
    table = SC.scorecard(SPECS, VERDICTS, PAGES)
    rows = _rows(SC.to_markdown(table))
    assert len(rows) == len(SPECS)
    assert all(len(r) == len(SC.PAGE_COLUMNS) for r in rows)
    heads = [h for _, h in SC.PAGE_COLUMNS]
    for spec in SPECS:
        (row,) = [r for r in rows if f"`{spec.id}`" in r[heads.index("Claim")]]
        assert row[heads.index("Status")] == spec.status
        assert row[heads.index("This build")] == VERDICTS[spec.id].outcome
        chapter = spec.chapter.removeprefix("ch")
        assert row[heads.index("Computed in")] == f"{{ref}}`Chapter {chapter} <{spec.anchor}>`"
    assert r"A cliff \| between" in rows[1][0]  # a pipe in a statement stays in its cell


def test_table_fields_and_links():
    table = SC.scorecard(SPECS, VERDICTS, PAGES)
    assert table.id.tolist() == [s.id for s in SPECS]
    assert table.href.tolist() == [
        "notebooks/ch1_stages.html#ch1-claims",
        "notebooks/ch1_stages.html#ch1-cliff",
        "notebooks/ch2_capacity.html#ch2-claims",
    ]
    assert table.estimate[1] == "0.1 [-inf, 0.4]" and table.seeds[1] == "6/10 (+2 not finite)"
    assert table.threshold[2] == "|mean| < 0.5"


def test_scorecard_refuses_missing_verdicts_or_pages():
    with pytest.raises(KeyError, match=r"missing \['ch2.width'\]"):
        SC.scorecard(SPECS, {k: VERDICTS[k] for k in ("ch1.onset-order", "ch1.cliff")}, PAGES)
    with pytest.raises(KeyError, match="ch2.width: no page for ch2"):
        SC.scorecard(SPECS, VERDICTS, {"ch1": PAGES["ch1"]})


def test_json_round_trips_and_is_strict(tmp_path):
    path = SC.to_json(tmp_path / "scorecard.json", SPECS, VERDICTS, PAGES)
    assert [p.name for p in tmp_path.iterdir()] == ["scorecard.json"]  # no temporary left

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["level"] == 0.95
    assert [c["href"] for c in data["claims"]] == SC.scorecard(SPECS, VERDICTS, PAGES).href.tolist()
    assert data["claims"][1]["verdict"]["lo"] is None  # unbounded side
    specs, verdicts = SC.read_json(path)
    assert specs == SPECS and verdicts == VERDICTS


def test_json_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "scorecard.json"
    path.write_text("stale")
    SC.to_json(path, SPECS[:1], {"ch1.onset-order": VERDICTS["ch1.onset-order"]}, PAGES)
    assert [c["id"] for c in json.loads(path.read_text())["claims"]] == ["ch1.onset-order"]


def test_chapter_pages_of_the_books_toc():
    pages = SC.chapter_pages(ROOT / "_toc.yml")
    assert sorted(pages) == ["ch1", "ch2", "ch3", "ch4", "ch5"]
    for page in pages.values():
        assert (ROOT / f"{page}.ipynb").is_file()


def test_chapter_pages_refuses_two_pages_for_one_chapter(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("root: intro\nchapters:\n  - file: a/ch1_x\n  - file: b/ch1_y\n")
    with pytest.raises(ValueError, match="two pages for ch1"):
        SC.chapter_pages(toc)
