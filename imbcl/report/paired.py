"""Paired deltas against a reference run of the same seed, and per-group seed summaries.

A chapter's results are a long table: key columns (rho, seed, method, ...) and value columns.
:func:`paired_deltas` subtracts from each row the reference row of the same unit (same seed,
same rho, ...), so that seed-to-seed variation common to both cancels; :func:`summarise`
reduces any long table, paired or not, to one row per group and value: mean, 95 % bootstrap
CI, n and "k of n seeds improved"; :func:`cell_text` formats those rows for a printed table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imbcl.report.stats import seed_summary

SUMMARY_COLUMNS = ("metric", "n", "n_nan", "mean", "sd", "lo", "hi", "improved")


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{role} column(s) {missing} not in the table (has {list(frame.columns)})")


def _require_disjoint(**groups: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for role, columns in groups.items():
        for c in columns:
            if c in seen:
                raise ValueError(f"column {c!r} is both in {seen[c]} and in {role}")
            seen[c] = role


def paired_deltas(
    table: pd.DataFrame,
    by: str,
    reference,
    pair_on: Sequence[str],
    values: Sequence[str],
    prefix: str = "",
) -> pd.DataFrame:
    """Each row's ``values`` minus those of the reference row of the same unit.

    ``table``: long, one row per (condition, unit). ``by``: the column naming the condition
    (e.g. "method", "rate", "group"); rows with ``table[by] == reference`` are the reference.
    ``pair_on``: the columns that identify a unit, shared by a row and its reference (e.g.
    ["rho", "seed", "probe"]). ``values``: the columns to difference.

    Returns the non-reference rows, in their order, with every other column kept and each
    value column replaced by row - reference (renamed ``prefix + name``); NaN propagates.
    Raises ValueError when a unit has more than one reference row or a row has none.
    """
    pair_on, values = list(pair_on), list(values)
    _require_columns(table, [by, *pair_on, *values], "key or value")
    _require_disjoint(by=[by], pair_on=pair_on, values=values)
    is_ref = table[by] == reference
    if not is_ref.any():
        raise ValueError(f"no reference rows ({by} == {reference!r})")
    ref = table.loc[is_ref, pair_on + values]
    dup = ref.duplicated(pair_on, keep=False)
    if dup.any():
        first = tuple(ref.loc[dup, pair_on].iloc[0])
        raise ValueError(
            f"{int(dup.sum())} reference rows ({by} == {reference!r}) share a unit "
            f"{tuple(pair_on)}, e.g. {first}"
        )
    others = table.loc[~is_ref].reset_index(drop=True)
    merged = others[pair_on].merge(ref, on=pair_on, how="left", indicator=True)
    orphan = (merged["_merge"] != "both").to_numpy()
    if orphan.any():
        first = tuple(others.loc[orphan, pair_on].iloc[0])
        raise ValueError(
            f"{int(orphan.sum())} row(s) have no reference row ({by} == {reference!r}) with "
            f"the same {tuple(pair_on)}, e.g. {first}"
        )
    out = others.copy()
    for name in values:
        out[name] = others[name].to_numpy(float) - merged[name].to_numpy(float)
    return out.rename(columns={name: prefix + name for name in values})


def _group_row(v: np.ndarray, smaller_is_better: bool, null: float) -> dict:
    """Summary of one group's values (n,) over seeds; NaN dropped and counted."""
    finite = v[np.isfinite(v)]
    n = len(finite)
    improved = int((finite < null).sum() if smaller_is_better else (finite > null).sum())
    row = {"n": n, "n_nan": len(v) - n, "improved": improved}
    if n >= 2:
        s = seed_summary(finite, null=null)
        return row | {"mean": s.mean, "sd": s.sd, "lo": s.lo, "hi": s.hi}
    mean = float(finite[0]) if n else np.nan
    return row | {"mean": mean, "sd": np.nan, "lo": np.nan, "hi": np.nan}


def summarise(
    frame: pd.DataFrame,
    by: Sequence[str],
    values: Sequence[str],
    smaller_is_better: Sequence[str] = (),
    null: float = 0.0,
) -> pd.DataFrame:
    """One row per group of ``by`` and per value column: seeds as the unit.

    Columns: the ``by`` columns, then metric (the value column's name), n (finite values),
    n_nan (values left out because not finite), mean, sd (ddof=1), lo and hi (95 %
    studentized bootstrap CI of the mean, see :func:`imbcl.report.stats.bootstrap_ci`), and
    improved: the number of seeds on the better side of ``null`` (above it, or below it for
    the columns in ``smaller_is_better``, e.g. a gap). sd, lo and hi are NaN below 2 finite
    values. Groups keep their order of first appearance; metrics follow ``values``.
    """
    by, values = list(by), list(values)
    _require_columns(frame, by + values, "group or value")
    _require_disjoint(by=by, values=values)
    unknown = sorted(set(smaller_is_better) - set(values))
    if unknown:
        raise ValueError(f"smaller_is_better names columns not in values: {unknown}")
    rows = []
    for key, grp in frame.groupby(by, sort=False, dropna=False):
        for name in values:
            v = grp[name].to_numpy(float)
            stats = _group_row(v, name in smaller_is_better, null)
            rows.append(dict(zip(by, key, strict=True)) | {"metric": name} | stats)
    return pd.DataFrame(rows, columns=by + list(SUMMARY_COLUMNS))


def cell_text(summary: pd.DataFrame, digits: int = 2) -> pd.Series:
    """'mean [lo, hi] k/n' per row of a :func:`summarise` table, signed, ``digits`` decimals
    (e.g. '+0.12 [-0.05, +0.30] 5/8'); rows without a CI show 'mean (n=1)' or 'no data'."""

    def fmt(n, mean, lo, hi, improved) -> str:
        if n == 0:
            return "no data"
        if np.isnan(lo):
            return f"{mean:+.{digits}f} (n={n})"
        return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}] {improved}/{n}"

    columns = [summary[c] for c in ("n", "mean", "lo", "hi", "improved")]
    cells = [fmt(*row) for row in zip(*columns, strict=True)]
    return pd.Series(cells, index=summary.index, name="cell")
