"""Tests for imbcl.params: notebook grids, counts, numbers and choices, with exact messages."""

from __future__ import annotations

import re

import pytest

from imbcl.engine.config import ConfigError
from imbcl.engine.params import check_count, check_number, parse_choices, parse_grid


def raises(message: str):
    """pytest.raises for a ConfigError whose message is exactly ``message``."""
    return pytest.raises(ConfigError, match=f"^{re.escape(message)}$")


# ------------------------------------------------------------------ parse_grid
def test_parse_grid_reads_strings_numbers_and_sequences():
    assert parse_grid("0.3, 0.5", "rates") == (0.3, 0.5)  # papermill string
    assert parse_grid("8,16", "m_grid", kind=int, lo=1) == (8, 16)
    assert parse_grid("8.0", "m_grid", kind=int) == (8,)
    assert parse_grid(3, "rho_grid") == (3.0,)
    assert parse_grid([1, 2], "rho_grid") == (1.0, 2.0)
    assert parse_grid("4,1", "rho_grid") == (4.0, 1.0)  # order kept unless increasing=True


def test_parse_grid_empty_is_rejected_unless_allowed():
    with raises("rates must list at least one value (got '')"):
        parse_grid("", "rates")
    with raises("rates must list at least one value (got ' , ')"):
        parse_grid(" , ", "rates")
    assert parse_grid("", "rates", allow_empty=True) == ()


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("1,0.5", dict(lo=1), "rho_grid values must be >= 1 (got 0.5)"),
        ("0", dict(lo=0, lo_open=True), "rho_grid values must be > 0 (got 0.0)"),
        ("0.3,1.5", dict(lo=0, hi=1, hi_open=True), "rho_grid values must be < 1 (got 1.5)"),
        ("0.5,1", dict(lo=0, hi=1, hi_open=True), "rho_grid values must be < 1 (got 1.0)"),
        ("2", dict(hi=1), "rho_grid values must be <= 1 (got 2.0)"),
        ("1,x", {}, "rho_grid values must be a number (got 'x')"),
        ("8,12.5", dict(kind=int), "rho_grid values must be an integer (got 12.5)"),
        ([1, True], {}, "rho_grid values must be a number, not a boolean (got True)"),
        ("1,nan", {}, "rho_grid values must be finite (got nan)"),
        ("1,inf", dict(lo=1), "rho_grid values must be finite (got inf)"),
        ("2,2", {}, "rho_grid must not repeat a value (got '2,2')"),
        ("4,2", dict(increasing=True), "rho_grid must be in increasing order (got '4,2')"),
    ],
)
def test_parse_grid_rejects_bad_values(text, kwargs, message):
    with raises(message):
        parse_grid(text, "rho_grid", **kwargs)


def test_parse_grid_accepts_an_increasing_grid():
    assert parse_grid("1,4,8", "rho_grid", lo=1, increasing=True) == (1.0, 4.0, 8.0)


# ------------------------------------------------------------------ parse_choices
def test_parse_choices():
    assert parse_choices("feature, random", "x", ("feature", "random")) == ("feature", "random")
    with raises("bases values must be among coordinate, feature (got 'pca')"):
        parse_choices("feature,pca", "bases", ("coordinate", "feature"))
    with raises("bases must list at least one of coordinate, feature (got '')"):
        parse_choices("", "bases", ("coordinate", "feature"))


# ------------------------------------------------------------------ counts and numbers
def test_check_count_coerces_papermill_values():
    assert check_count("5", "n_seeds") == 5
    assert check_count(2.0, "n_seeds", lo=2) == 2
    assert check_count(0, "heatmap_seed", lo=0) == 0


@pytest.mark.parametrize(
    ("value", "lo", "message"),
    [
        (1, 2, "n_seeds must be >= 2 (got 1)"),
        (0, 1, "n_seeds must be >= 1 (got 0)"),
        (2.5, 1, "n_seeds must be an integer (got 2.5)"),
        ("x", 1, "n_seeds must be a number (got 'x')"),
        (True, 1, "n_seeds must be a number, not a boolean (got True)"),
        (None, 1, "n_seeds must be a number (got None)"),
        (float("nan"), 1, "n_seeds must be finite (got nan)"),
    ],
)
def test_check_count_rejects_bad_values(value, lo, message):
    with raises(message):
        check_count(value, "n_seeds", lo=lo)


def test_check_number():
    assert check_number("0.2", "stall", lo=0, hi=1, lo_open=True, hi_open=True) == 0.2
    with raises("stall must be < 1 (got 1.5)"):
        check_number(1.5, "stall", lo=0, hi=1, lo_open=True, hi_open=True)
    with raises("stall must be > 0 (got 0.0)"):
        check_number(0, "stall", lo=0, hi=1, lo_open=True, hi_open=True)
    with raises("stall must be finite (got inf)"):
        check_number("inf", "stall")
