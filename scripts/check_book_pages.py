"""Look at the built book the way a reader would (dev tool, not part of `make test`).

For every HTML page under _build/html that the book generated (Sphinx's search/genindex
pages excluded), this script

* scans the HTML for execution problems: traceback outputs, stderr output blocks, error
  admonitions and Sphinx "problematic" nodes, unresolved references and math errors;
* checks that every local <img> points at an existing, non-empty file;
* takes a screenshot with headless Chromium (Debian package `chromium`) into _screenshots/.

It exits non-zero if any page has a problem. Usage:

    .venv/bin/python scripts/check_book_pages.py [--html _build/html] [--out _screenshots]
                                                 [--no-screenshots]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
# sphinx-external-toc writes index.html as a bare meta-refresh redirect: nothing to look at.
REDIRECT = re.compile(r'http-equiv="refresh"', re.IGNORECASE)
SKIP_PAGES = {"search.html", "genindex.html", "prf-prf.html", "py-modindex.html"}

# (description, regex) searched in the raw HTML of each page.
PROBLEMS = [
    ("traceback output", re.compile(r'class="[^"]*\b(?:output traceback|traceback)\b')),
    ("Python traceback text", re.compile(r"Traceback \(most recent call last\)")),
    ("stderr output block", re.compile(r'class="[^"]*\boutput stderr\b')),
    ("error admonition", re.compile(r'class="[^"]*\badmonition error\b')),
    ("docutils system message", re.compile(r'class="[^"]*\bsystem-message\b')),
    ("problematic node", re.compile(r'class="[^"]*\bproblematic\b')),
    ("cell execution error", re.compile(r"CellExecutionError|An error occurred while executing")),
    ("unresolved citation", re.compile(r"\[\?\?\]|\?\?\?|citation not found", re.IGNORECASE)),
]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,2000",
]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def page_problems(page: Path) -> list[str]:
    html = page.read_text(encoding="utf-8", errors="replace")
    found = [f"{what} ({len(rx.findall(html))}x)" for what, rx in PROBLEMS if rx.search(html)]
    parser = _Images()
    parser.feed(html)
    for src in parser.sources:
        if not src:
            found.append("<img> without src")
            continue
        url = urlparse(src)
        if url.scheme in ("http", "https", "data"):
            continue
        target = (page.parent / unquote(url.path)).resolve()
        if not target.is_file() or target.stat().st_size == 0:
            found.append(f"broken image {src}")
    return found


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(chromium: str, page: Path, png: Path) -> str | None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return "chromium timed out"
    if not png.is_file() or png.stat().st_size == 0:
        return f"no screenshot (chromium exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_screenshots")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()

    pages = sorted(
        p
        for p in args.html.rglob("*.html")
        if p.name not in SKIP_PAGES
        and not any(part.startswith(("_", ".")) for part in p.relative_to(args.html).parts)
        and not REDIRECT.search(p.read_text(encoding="utf-8", errors="replace")[:2000])
    )
    if not pages:
        print(f"check: no HTML pages under {args.html}; run `make book` first", file=sys.stderr)
        return 1

    chromium = None if args.no_screenshots else find_chromium()
    if not args.no_screenshots and chromium is None:
        print("check: chromium not found (apt-get install chromium); skipping screenshots")

    failures = 0
    for page in pages:
        rel = page.relative_to(args.html)
        problems = page_problems(page)
        if chromium:
            png = args.out / rel.with_suffix(".png")
            err = screenshot(chromium, page, png)
            if err:
                problems.append(err)
        status = "ok" if not problems else "PROBLEM: " + "; ".join(problems)
        print(f"{rel}: {status}")
        failures += bool(problems)
    print(f"check: {len(pages)} page(s), {failures} with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
