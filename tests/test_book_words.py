"""The book speaks only to its readers: no words about how it was made.

The scanner reads what a reader reads: the pages in book/, the markdown and code cells of
the notebooks (not their outputs), the READMEs, and the docstrings and comments of the
package. Each pattern below names one way a text can talk about its own making.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: (pattern, what it talks about, a sentence it must catch). Case-insensitive, per line.
PATTERNS = [
    # drafts that came before the book: cite a cell, a figure or a reference instead
    (r"\bprototypes?(?:'s)?\b", "an earlier draft", "A prototype of ours saw the same."),
    # the request that started a piece of work
    (r"\bthe issue\b", "the work request", "The issue that set up this chapter asks three things."),
    # a tracker number
    (r"\bissues? #?\d+\b", "a tracker reference", 'the "0.25" of issue 8'),
    # the sitting in which a text was written
    (r"\bthis session\b", "the writing session", "In this session we moved the probe."),
    # 'the core' as a name for our package (which is imbcl); a CPU core is fine
    (
        r"\b(?:with|by|from|using) the core\b|\bthe core's\b",
        "'the core' for the package",
        "By the core's speed figures, the grid is too large.",
    ),
    # the history of our code rather than of the results
    (
        r"\bearlier version of (?:our|the|this)\b",
        "history of our code",
        "An earlier version of our trainer differed in rounding.",
    ),
    # who or what wrote the text
    (
        r"\bthe machine that (?:wrote|ran|built)\b",
        "the machine that wrote it",
        "The machine that wrote this chapter has no GPU.",
    ),
    # a result no cell computes: every number in the book comes from a cell the reader sees
    (
        r"\ba check at \d+ seeds?\b",
        "a check no cell shows",
        "A check at 2 seeds showed the same.",
    ),
    # the tooling around the writing
    (
        r"\bthe brief\b|\bworktrees?\b|\bthis (?:PR|pull request)\b",
        "the tooling",
        "As the brief says, the test is strict.",
    ),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), why) for p, why, _ in PATTERNS]


@dataclass(frozen=True)
class Hit:
    """One match: where (file, or file#cell), line within it, the words, what they talk about."""

    where: str
    line: int
    words: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.words!r} ({self.why})"


def find_words(text: str) -> list[tuple[int, str, str]]:
    """(line number from 1, matched words, what they talk about) for every match in ``text``."""
    return [
        (number, match.group(0), why)
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern, why in _COMPILED
        for match in pattern.finditer(line)
    ]


def _python_prose(source: str) -> list[tuple[int, str]]:
    """(first line, text) of every docstring and comment of a Python module."""
    chunks = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    chunks.append((body[0].lineno, body[0].value.value))
    return chunks


def reader_text(path: Path, root: Path) -> list[tuple[str, int, str]]:
    """(where, first line, text) of what a reader reads in ``path``."""
    rel = path.relative_to(root).as_posix()
    if path.suffix == ".py":
        return [(rel, line, text) for line, text in _python_prose(path.read_text())]
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return [
            (f"{rel}#cell{i}", 1, "".join(cell["source"]))
            for i, cell in enumerate(cells)
            if cell["cell_type"] in ("markdown", "code")
        ]
    return [(rel, 1, path.read_text())]


def book_sources(root: Path) -> list[Path]:
    """The files the scan reads, in a fixed order."""
    patterns = ["book/*.md", "notebooks/*.ipynb", "README.md", "benchmarks/README.md"]
    files = [p for pattern in patterns for p in sorted(root.glob(pattern))]
    return files + sorted(root.glob("imbcl/**/*.py"))


def scan(root: Path) -> list[Hit]:
    """Every match of :data:`PATTERNS` in the book's sources under ``root``."""
    return [
        Hit(where, first + number - 1, words, why)
        for path in book_sources(root)
        for where, first, text in reader_text(path, root)
        for number, words, why in find_words(text)
    ]


@pytest.mark.parametrize("pattern, why, example", PATTERNS, ids=[p[1] for p in PATTERNS])
def test_each_pattern_catches_its_planted_sentence(pattern, why, example):
    assert why in [w for _, _, w in find_words(f"Clean line.\n{example}\n")]
    assert find_words(f"Clean line.\n{example}")[0][0] == 2


def test_clean_text_passes():
    clean = (
        "The core of the argument is a ratio. Each CPU core runs one worker.\n"
        "A prototypical example: the tissue 3 sample; issues of scale are discussed in\n"
        "Section 2. The session variable is set in the first cell (see the cell above).\n"
    )
    assert find_words(clean) == []


def test_scan_reads_docstrings_comments_and_cells_but_not_code_or_outputs(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "page.md").write_text("# Page\n\nA prototype found it.\n")
    pkg = tmp_path / "imbcl" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(
        '"""Module.\n\nAs the brief says."""\n\n'
        "x = 1  # from this session\n"
        'MESSAGE = "the issue in a plain string is code, not prose"\n\n\n'
        "def f():\n"
        '    """See issue 12."""\n'
    )
    (tmp_path / "notebooks").mkdir()
    cells = [
        {"cell_type": "markdown", "source": ["Intro.\n", "A check at 3 seeds agreed."]},
        {
            "cell_type": "code",
            "source": ["# with the core\n", "y = 2"],
            "outputs": [{"output_type": "stream", "text": ["the prototype in an output\n"]}],
        },
    ]
    (tmp_path / "notebooks" / "ch9_x.ipynb").write_text(json.dumps({"cells": cells}))
    found = {(h.where, h.line, h.why) for h in scan(tmp_path)}
    assert found == {
        ("book/page.md", 3, "an earlier draft"),
        ("imbcl/sub/mod.py", 3, "the tooling"),
        ("imbcl/sub/mod.py", 5, "the writing session"),
        ("imbcl/sub/mod.py", 10, "a tracker reference"),
        ("notebooks/ch9_x.ipynb#cell0", 2, "a check no cell shows"),
        ("notebooks/ch9_x.ipynb#cell1", 1, "'the core' for the package"),
    }


def test_book_sources_speak_only_to_readers():
    hits = scan(ROOT)
    assert not hits, f"{len(hits)} passage(s) about how the book was made:\n" + "\n".join(
        map(str, hits)
    )
