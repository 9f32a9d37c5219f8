"""The book's chapters as code: each chapter's study and report modules."""

from __future__ import annotations

import pytest

from imbcl.report import book, registry


def test_every_chapter_with_claims_has_a_report_module_that_reads_them():
    assert set(book.REPORTS) == set(registry.CHAPTERS)
    for chapter in book.REPORTS:
        assert callable(book.report_module(chapter).claims_from_results), chapter
        assert not hasattr(book.study_module(chapter), "claims_from_results"), chapter
    with pytest.raises(ValueError, match="chapter 'atlas' has no claims; valid: ch1, ch2"):
        book.report_module("atlas")
