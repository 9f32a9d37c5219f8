"""Paired deltas against a reference row of the same seed, and the per-group seed summary."""

import numpy as np
import pandas as pd
import pytest

from imbcl.report import paired as P
from imbcl.report.stats import bootstrap_ci


def _runs() -> pd.DataFrame:
    """Two rho x three seeds x methods A (reference), B, C; acc = 10 rho + seed + offset."""
    offset = {"A": 0.0, "B": 1.5, "C": -0.5}
    rows = [
        {"rho": rho, "seed": seed, "method": m, "acc": 10 * rho + seed + offset[m], "gap": -seed}
        for rho in (1, 10)
        for seed in (0, 1, 2)
        for m in ("B", "A", "C")
    ]
    return pd.DataFrame(rows)


def test_paired_deltas_subtract_the_reference_of_the_same_seed():
    d = P.paired_deltas(
        _runs(), by="method", reference="A", pair_on=["rho", "seed"], values=["acc"]
    )
    assert set(d.method) == {"B", "C"} and len(d) == 12
    assert np.allclose(d.loc[d.method == "B", "acc"], 1.5)
    assert np.allclose(d.loc[d.method == "C", "acc"], -0.5)
    # columns that are neither keys nor differenced are carried along unchanged
    assert np.array_equal(d.gap, _runs().query("method != 'A'").gap)


def test_paired_deltas_prefix_and_nan_propagate():
    runs = _runs()
    runs.loc[(runs.method == "A") & (runs.seed == 2) & (runs.rho == 1), "acc"] = np.nan
    d = P.paired_deltas(
        runs, by="method", reference="A", pair_on=["rho", "seed"], values=["acc"], prefix="d_"
    )
    assert "d_acc" in d.columns and "acc" not in d.columns
    assert d.d_acc.isna().sum() == 2  # B and C at (rho 1, seed 2)


def test_paired_deltas_reference_by_numeric_value():
    table = pd.DataFrame(
        {"seed": [0, 0, 0, 1, 1, 1], "rate": [0.0, 0.3, 0.6] * 2, "probe": [5, 6, 4, 7, 9, 8]}
    )
    d = P.paired_deltas(table, by="rate", reference=0.0, pair_on=["seed"], values=["probe"])
    assert d.probe.tolist() == [1.0, -1.0, 2.0, 1.0]


def test_paired_deltas_refuses_ambiguous_or_missing_references():
    runs = _runs()
    with pytest.raises(ValueError, match="share a unit"):
        P.paired_deltas(runs, by="method", reference="A", pair_on=["seed"], values=["acc"])
    orphan = runs.drop(runs.index[(runs.method == "A") & (runs.seed == 1) & (runs.rho == 10)])
    with pytest.raises(ValueError, match=r"2 row\(s\) have no reference row .* e.g. \(10, 1\)"):
        P.paired_deltas(orphan, by="method", reference="A", pair_on=["rho", "seed"], values=["acc"])
    with pytest.raises(ValueError, match="no reference rows"):
        P.paired_deltas(runs, by="method", reference="Z", pair_on=["seed"], values=["acc"])
    with pytest.raises(KeyError, match="probe"):
        P.paired_deltas(runs, by="method", reference="A", pair_on=["probe"], values=["acc"])
    with pytest.raises(ValueError, match="both in pair_on and in values"):
        P.paired_deltas(runs, by="method", reference="A", pair_on=["acc"], values=["acc"])


def test_summarise_per_group_and_metric():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "method": ["B"] * 8 + ["C"] * 8,
            "acc": np.r_[rng.normal(1.0, 0.5, 8), rng.normal(-1.0, 0.5, 8)],
            "gap": np.r_[[-0.1, -0.2, 0.1, -0.3, -0.1, -0.2, -0.4, 0.2], np.zeros(8)],
        }
    )
    s = P.summarise(frame, by=["method"], values=["acc", "gap"], smaller_is_better=["gap"])
    assert list(s.columns) == ["method", *P.SUMMARY_COLUMNS]
    assert s[["method", "metric"]].values.tolist() == [
        ["B", "acc"],
        ["B", "gap"],
        ["C", "acc"],
        ["C", "gap"],
    ]
    b_acc = s.iloc[0]
    values = frame.acc[:8].to_numpy()
    assert b_acc.n == 8 and b_acc.n_nan == 0
    assert b_acc["mean"] == pytest.approx(values.mean())
    assert b_acc.sd == pytest.approx(values.std(ddof=1))
    assert (b_acc.lo, b_acc.hi) == pytest.approx(bootstrap_ci(values))
    assert b_acc.improved == int((values > 0).sum())
    assert s.iloc[1].improved == 6  # gap: smaller is better, 6 of 8 seeds below 0
    assert s.iloc[3].improved == 0  # ties are not improvements


def test_summarise_drops_and_counts_nan_and_handles_one_seed():
    frame = pd.DataFrame({"g": ["x", "x", "x", "y"], "v": [1.0, np.nan, 3.0, 4.0]})
    s = P.summarise(frame, by=["g"], values=["v"]).set_index("g")
    assert (s.loc["x", "n"], s.loc["x", "n_nan"], s.loc["x", "mean"]) == (2, 1, 2.0)
    assert s.loc["y", "n"] == 1 and s.loc["y", "mean"] == 4.0 and np.isnan(s.loc["y", "lo"])
    assert P.cell_text(s.reset_index()).tolist()[1] == "+4.00 (n=1)"


def test_summarise_rejects_unknown_direction_column():
    with pytest.raises(ValueError, match="smaller_is_better"):
        P.summarise(_runs(), by=["method"], values=["acc"], smaller_is_better=["gap"])


def test_cell_text_format():
    s = pd.DataFrame(
        [
            {"n": 8, "mean": 0.123, "lo": -0.05, "hi": 0.301, "improved": 5},
            {"n": 0, "mean": np.nan, "lo": np.nan, "hi": np.nan, "improved": 0},
        ]
    )
    assert P.cell_text(s, digits=2).tolist() == ["+0.12 [-0.05, +0.30] 5/8", "no data"]
