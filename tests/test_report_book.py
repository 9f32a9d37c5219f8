"""The book's chapters as code: each chapter's study and report modules, and the atlas's
regimes of every synthetic chapter."""

from __future__ import annotations

import pytest

from imbcl.report import atlas, book, registry


def test_every_chapter_with_claims_has_a_report_module_that_reads_them():
    assert set(book.REPORTS) == set(registry.CHAPTERS)
    for chapter in book.REPORTS:
        assert callable(book.report_module(chapter).claims_from_results), chapter
        assert not hasattr(book.study_module(chapter), "claims_from_results"), chapter
    with pytest.raises(ValueError, match="chapter 'atlas' has no claims; valid: ch1, ch2"):
        book.report_module("atlas")


def test_every_synthetic_chapter_places_its_regimes_on_the_atlas():
    regimes = atlas.chapter_regimes("small")
    assert list(regimes.chapter.unique()) == list(atlas.SYNTHETIC)
    assert regimes.rho.notna().all() and (regimes.deviation.str.len() > 0).all()
