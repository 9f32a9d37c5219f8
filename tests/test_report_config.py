"""The book configuration without a build: offline MathJax, MyST display output, and the
repository links switched consistently."""

import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEXT = (ROOT / "_config.yml").read_text()
CONFIG = yaml.safe_load(CONFIG_TEXT)
OFFLINE_MATHJAX = "sphinx-mathjax-offline"


def test_mathjax_is_served_from_the_books_own_copy():
    assert OFFLINE_MATHJAX in CONFIG["sphinx"]["extra_extensions"]
    assert "mathjax_path" not in CONFIG["sphinx"].get("config", {})  # the extension sets it
    assert not re.search(r"(cdn|jsdelivr|unpkg|cdnjs|https?://)[^\n]*mathjax", CONFIG_TEXT, re.I)
    ext = importlib.import_module(OFFLINE_MATHJAX)  # what Sphinx does with the name
    app = SimpleNamespace(config=SimpleNamespace(), connect=lambda *a: None)
    ext.setup(app)
    assert "://" not in app.config.mathjax_path
    # copied to the HTML's _static/ after the build; the path is relative to it
    assert (Path(ext.__file__).parent / "static" / app.config.mathjax_path).is_file()


def test_displayed_markdown_is_parsed_as_myst():
    # the scorecard's {ref} links resolve only when cell output is MyST, not CommonMark
    assert CONFIG["sphinx"]["config"]["nb_render_markdown_format"] == "myst"


def test_repository_links_need_a_repository_url():
    url = CONFIG["repository"]["url"]
    html = CONFIG["html"]
    if html["use_repository_button"] or html["use_issues_button"]:
        assert url.startswith("https://"), "repository buttons are on but repository.url is not"
    if CONFIG.get("launch_buttons"):
        # sphinx-book-theme fails the build on launch buttons without a repository url
        assert url.startswith("https://"), "launch buttons are on but repository.url is not"
