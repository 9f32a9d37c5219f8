"""The claims table that ends every chapter: statistic, threshold, PASS/FAIL, asserted."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Claim:
    """One checked statement: ``statistic op threshold`` must hold."""

    name: str
    statistic: float
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)} (got {self.op!r})")

    @property
    def passed(self) -> bool:
        stat = float(self.statistic)
        return bool(np.isfinite(stat) and _OPS[self.op](stat, float(self.threshold)))


def table(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim: claim, statistic, threshold (with its operator), verdict."""
    return pd.DataFrame(
        {
            "claim": [c.name for c in claims],
            "statistic": [float(c.statistic) for c in claims],
            "threshold": [f"{c.op} {c.threshold:g}" for c in claims],
            "verdict": ["PASS" if c.passed else "FAIL" for c in claims],
        }
    )


def check(claims: list[Claim]) -> pd.DataFrame:
    """Print the claims table, then assert that every claim passed (naming those that failed)."""
    df = table(claims)
    with pd.option_context("display.max_colwidth", 90, "display.width", 160):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    failed = df.loc[df.verdict == "FAIL", "claim"].tolist()
    assert not failed, f"{len(failed)} claim(s) failed: {failed}"
    return df


def verdicts(claims: list[Claim]) -> str:
    """Claim names and verdicts only: stable text for a ``# NBVAL_CHECK_OUTPUT`` cell."""
    return "\n".join(f"{'PASS' if c.passed else 'FAIL'}  {c.name}" for c in claims)
