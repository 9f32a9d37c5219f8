"""Chapter 5's claims, tables and figures (imbcl.report.ch5): per-seed claims, paired deltas,
summaries, CI bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from imbcl.report import ch5, figures  # noqa: E402

ORDER = ["SimCLR", "balanced", "untrained"]


def _results(n_seeds: int = 6) -> pd.DataFrame:
    """Balanced beats SimCLR on the tail by 1 + seed points; the untrained encoder trails by 20."""
    rows = []
    for seed in range(n_seeds):
        for probe in ("full", "few-shot"):
            for method, tail in (("SimCLR", 70.0), ("balanced", 71.0 + seed), ("untrained", 50.0)):
                rows.append(
                    {"rho": 50.0, "seed": seed, "method": method, "probe": probe,
                     "overall": tail + 10, "head": 85.0, "tail": tail, "gap": 85.0 - tail}
                )  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ one statistic per seed
def _fake_table(seeds=(0, 1, 2)) -> pd.DataFrame:
    """Rows whose accuracies encode method and seed: overall = 10 * method index + seed."""
    methods = ["untrained", "SimCLR", "prune 0.5", "prune 0.9", "SDCLR 0.5", "balanced"]
    rows = [
        {"rho": 50.0, "seed": s, "method": m, "probe": p,
         "overall": 10.0 * i + s, "head": 0.0, "tail": 5.0 * i - s, "gap": 0.0}
        for s in seeds for p in ("full", "few-shot") for i, m in enumerate(methods)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_claim_values_are_paired_differences_in_seed_order():
    table = _fake_table().sample(frac=1.0, random_state=0)  # any row order
    values = ch5.claim_values(table, [2, 0, 1])
    assert values["ch5.pretraining-helps"].tolist() == [10.0, 10.0, 10.0]
    assert values["ch5.imbalance-costs-tail"].tolist() == [20.0, 20.0, 20.0]
    assert values["ch5.heavy-prune-hurts"].tolist() == [20.0, 20.0, 20.0]
    with pytest.raises(KeyError, match=r"no rows for seed\(s\) \[7\]"):
        ch5.claim_values(table, [0, 7])
    with pytest.raises(KeyError, match="no paired rows for 'SDCLR 0.5' and 'SimCLR'"):
        ch5.claim_values(table[table.method != "SDCLR 0.5"], [0, 1, 2])
    seed_dependent = table.assign(tail=np.where(table.method == "balanced", table.seed, 0.0))
    assert ch5.claim_values(seed_dependent, [2, 0, 1])["ch5.imbalance-costs-tail"].tolist() == [
        2.0, 0.0, 1.0
    ]  # fmt: skip


def test_contrast_is_the_paired_delta_of_any_two_methods():
    table = _fake_table()
    found = ch5.contrast(table, "prune 0.9", "prune 0.5", "full", "overall", 50.0)
    assert list(found.index) == [0, 1, 2] and found.tolist() == [10.0, 10.0, 10.0]
    nan = table.assign(overall=np.where(table.method == "prune 0.9", np.nan, table.overall))
    with pytest.raises(KeyError, match="no paired rows for 'prune 0.9' and 'prune 0.5'"):
        ch5.contrast(nan, "prune 0.9", "prune 0.5", "full", "overall", 50.0)
    lost = table[~((table.method == "prune 0.5") & (table.seed == 1))]
    with pytest.raises(KeyError, match="no paired rows for 'prune 0.9' and 'prune 0.5'"):
        ch5.contrast(lost, "prune 0.9", "prune 0.5", "full", "overall", 50.0)


# ------------------------------------------------------------------ tables and figures
def test_deltas_subtract_simclr_of_the_same_seed_and_probe():
    paired = ch5.deltas(_results())
    assert set(paired.method) == {"balanced", "untrained"} and len(paired) == 24
    bal = paired[(paired.method == "balanced") & (paired.probe == "full")].sort_values("seed")
    assert bal["tail"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert np.allclose(bal["gap"], -bal["tail"]) and (bal["head"] == 0).all()


def test_tables_are_ordered_and_formatted():
    paired = ch5.deltas(_results())
    table = ch5.delta_table(paired, ORDER)
    assert list(table.columns) == ["overall", "head", "tail", "gap"]
    assert [k[1:] for k in table.index] == [
        ("few-shot", "balanced"), ("few-shot", "untrained"),
        ("full", "balanced"), ("full", "untrained"),
    ]  # fmt: skip
    cell = table.loc[(50.0, "full", "balanced"), "tail"]
    assert cell.startswith("+3.50 [") and cell.endswith("] 6/6")
    assert table.loc[(50.0, "full", "balanced"), "gap"].endswith("] 6/6")  # a smaller gap
    assert table.loc[(50.0, "full", "untrained"), "tail"].endswith("] 0/6")
    acc = ch5.accuracy_table(_results(), ORDER)
    assert [k[2] for k in acc.index[:3]] == ORDER
    assert acc.loc[(50.0, "full", "SimCLR"), "tail"] == "70.0 [70.0, 70.0]"  # tied seeds
    assert acc.loc[(50.0, "full", "balanced"), "tail"].startswith("73.5 [")


def test_plot_paired_draws_seeds_and_the_bootstrap_ci():
    paired = ch5.deltas(_results())
    fig, ax = plt.subplots()
    ch5.plot_paired(ax, paired, "tail", ORDER, probe="full", rho=50.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["balanced", "untrained"]
    dots = [c for c in ax.collections if c.get_offsets().shape[0] == 6]
    assert len(dots) == 2
    assert sorted(dots[0].get_offsets()[:, 1]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    mean, lo, hi = (float(a) for a in figures.mean_ci(np.arange(1.0, 7.0)))
    marker = ax.lines[0]  # the mean of the first method
    assert marker.get_ydata()[0] == pytest.approx(mean)
    bar = ax.containers[0].lines[2][0].get_segments()[0]
    assert bar[:, 1] == pytest.approx([lo, hi])
    plt.close(fig)


def test_figures_have_labelled_axes():
    paired = ch5.deltas(_results())
    fig = ch5.paired_figure(paired, [50.0], ORDER, "tail")
    assert fig.axes[0].get_ylabel() == "Δ tail accuracy (points)"
    plt.close(fig)
    curves = {50.0: (np.arange(5), np.random.default_rng(0).normal(4, 0.1, (6, 5, 2)))}
    fig = ch5.loss_figure(curves, ["SimCLR", "prune 0.9"], ["SimCLR", "prune 0.9"], 2)
    assert fig.axes[0].get_ylabel() == "InfoNCE loss (nats)"
    assert fig.axes[0].get_xlabel() == "training step"
    plt.close(fig)


def test_glue_numbers_are_plain_python():
    numbers = ch5.seed_numbers("k", [1.0, 2.0, -1.0, 4.0, 5.0, 6.0, np.nan])
    assert numbers["k-n"] == 6 and numbers["k-k"] == 5 and numbers["k-mean"] == 2.83
    assert all(type(v) in (int, float) for v in numbers.values())


def test_cost_table_scales_the_measured_rate_to_the_other_settings():
    from types import SimpleNamespace

    from imbcl.images import study

    ours = study.Settings.from_params("small")
    cifar = study.Settings.from_params("full", **study.CIFAR_LT)
    flops = study.training_flops(ours)
    results = [
        SimpleNamespace(meta={"cpu_seconds": 2.0}),
        SimpleNamespace(meta={"cpu_seconds": 3.0}),
    ]
    cost = ch5.cost_table(ours, cifar, results)["estimate"]
    assert cost["achieved by these runs (GFLOP/s, training and probes)"] == round(
        flops / 5 / 1e9, 2
    )
    days = study.training_flops(cifar) / (flops / 5) / 86400
    assert cost["CIFAR-10-LT at the rate above (days)"] == round(days, 2)
    line = ch5.papermill_line({"dataset": "cifar10", "n_seeds": 3})
    assert line.endswith("out.ipynb -p dataset cifar10 -p n_seeds 3")
