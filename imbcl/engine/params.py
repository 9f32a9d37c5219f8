"""Validation of notebook parameters that are not config fields: grids, counts, choices.

Papermill passes values as strings or numbers. These helpers coerce them and fail before any
compute with the same kind of message as :mod:`imbcl.config`: the parameter's name, the
allowed range and the value received, e.g. ``rho_grid values must be >= 1 (got 0.5)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from imbcl.engine.config import ConfigError, check_range, coerce


def _rule(lo=None, hi=None, lo_open=False, hi_open=False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": None}


def _items(text) -> list:
    """The entries of ``"1, 2,4"``, of a single number, or of a sequence."""
    if isinstance(text, str):
        return [t.strip() for t in text.split(",") if t.strip()]
    if isinstance(text, int | float):
        return [text]
    return list(text)


def parse_grid(
    text,
    name: str,
    kind: type = float,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_empty: bool = False,
    increasing: bool = False,
) -> tuple:
    """A tuple of ``kind`` values from ``"1,2,4"`` (or a number or a sequence), each in range.

    Rejects, with a ConfigError naming ``name``: an empty grid (unless ``allow_empty``), a
    non-number, a value out of [lo, hi] (bounds strict with ``lo_open``/``hi_open``), a
    non-integer where ``kind`` is int, a repeated value, and, with ``increasing``, values that
    are not in increasing order.
    """
    items = _items(text)
    if not items and not allow_empty:
        raise ConfigError(f"{name} must list at least one value (got {text!r})")
    label = f"{name} values"
    values = tuple(coerce(label, item, kind) for item in items)
    for v in values:
        check_range(label, v, _rule(lo, hi, lo_open, hi_open))
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} must not repeat a value (got {text!r})")
    if increasing and list(values) != sorted(values):
        raise ConfigError(f"{name} must be in increasing order (got {text!r})")
    return values


def parse_choices(text, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """A tuple of names from ``"a, b"``, each one of ``allowed``."""
    items = tuple(str(t) for t in _items(text))
    if not items:
        raise ConfigError(f"{name} must list at least one of {', '.join(allowed)} (got {text!r})")
    for item in items:
        if item not in allowed:
            raise ConfigError(f"{name} values must be among {', '.join(allowed)} (got {item!r})")
    return items


def check_count(value, name: str, lo: int = 1) -> int:
    """``value`` as an int >= ``lo`` (a seed count, a step count, a window)."""
    count = coerce(name, value, int)
    check_range(name, count, _rule(lo))
    return count


def check_number(value, name: str, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """``value`` as a float in [lo, hi] (bounds strict with ``lo_open``/``hi_open``)."""
    number = coerce(name, value, float)
    check_range(name, number, _rule(lo, hi, lo_open, hi_open))
    return number
