"""``imbcl.sweep.run`` in this process: caching, recomputation of corrupt entries, failures,
progress. (Dask: tests/test_sweep_dask.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbcl.sweep import Store, SweepError, Task, cluster, run
from tests.sweep_tasks import FAILING, check_failure_report, simulate, simulate_tasks


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.arrays.keys() == b.arrays.keys()
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    assert a.meta == b.meta


def entries(store: Store) -> list:
    return sorted(p for p in store.root.glob("??/*") if p.is_dir())


def test_results_come_back_in_task_order_and_a_rerun_is_all_cached(tmp_path):
    tasks = simulate_tasks(range(4), log=str(tmp_path / "log"))
    store = Store(tmp_path / "store")
    first = run(tasks, store=store, scheduler="inprocess", progress=False)
    assert first.status == ["computed"] * 4 and first.failures.empty
    for seed, result in enumerate(first):
        expected = simulate(seed=seed)
        expected.meta = {"seed": seed, "shape": [32, 32]}  # as it reads back (JSON)
        assert_same(result, expected)
    again = run(tasks, store=store, scheduler="inprocess", progress=False)
    assert again.status == ["cached"] * 4
    assert (tmp_path / "log").read_text().count("\n") == 4  # computed once each
    for a, b in zip(first, again, strict=True):
        assert_same(a, b)


def test_identical_tasks_are_computed_once(tmp_path):
    tasks = simulate_tasks([7, 7], log=str(tmp_path / "log"))
    out = run(tasks, store=tmp_path / "s", scheduler="inprocess", progress=False)
    assert out[0] is out[1] and out.status == ["computed", "computed"]
    assert (tmp_path / "log").read_text() == "seed=7\n"


def test_corrupt_entry_is_recomputed_the_others_are_read(tmp_path):
    tasks = simulate_tasks(range(3), log=str(tmp_path / "log"))
    store = Store(tmp_path / "store")
    first = run(tasks, store=store, scheduler="inprocess", progress=False)
    found = entries(store)
    assert len(found) == 3
    table = found[0] / "table.parquet"
    table.write_bytes(table.read_bytes()[:100])  # truncated
    (found[1] / "MANIFEST.json").unlink()  # partial entry
    with pytest.warns(RuntimeWarning, match="corrupt"):
        again = run(tasks, store=store, scheduler="inprocess", progress=False)
    assert sorted(again.status) == ["cached", "computed", "computed"]
    assert (tmp_path / "log").read_text().count("\n") == 5
    for a, b in zip(first, again, strict=True):
        assert_same(a, b)


def test_raising_task_is_reported_with_its_spec_and_the_others_finish(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(SweepError) as info:
        run(FAILING, store=store, scheduler="inprocess", progress=False, name="demo")
    check_failure_report(str(info.value))
    assert list(info.value.failures["label"]) == ["bad cell m=7", "diverging cell lr=9"]
    assert len(entries(store)) == 2  # the two good tasks are stored
    out = run(FAILING, store=store, scheduler="inprocess", progress=False, errors="collect")
    assert out.status == ["cached", "failed", "failed", "cached"]
    assert out[1] is None and out[2] is None
    assert list(out.failures["error"]) == ["ValueError", "DivergenceError"]
    assert "raise ValueError(message)" in out.failures["traceback"][0]


def test_retries_attempt_a_raising_task_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("tests.sweep_tasks.fail", lambda message: calls.append(message) or 1 / 0)
    out = run(
        FAILING[1:2],
        store=tmp_path,
        scheduler="inprocess",
        progress=False,
        retries=2,
        errors="collect",
    )
    assert len(calls) == 3 and out.failures["error"][0] == "ZeroDivisionError"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tasks": ["x"]}, r"tasks\[0\] is a str, expected Task"),
        ({"errors": "ignore"}, "errors must be one of"),
        ({"retries": -1}, "retries must be an int >= 0"),
        ({"name": ""}, "name must be a non-empty str"),
        ({"tasks": [Task("tests.sweep_tasks:nothing", {}, "x")]}, "has no function 'nothing'"),
        ({"scheduler": "localhost"}, "scheduler must be"),
        ({"scheduler": 3}, "scheduler must be"),
    ],
)
def test_invalid_arguments_fail_before_any_compute(tmp_path, kwargs, match):
    args = {"tasks": simulate_tasks(range(1), log=str(tmp_path / "log")), **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        run(args.pop("tasks"), store=tmp_path / "s", progress=False, **args)
    assert not (tmp_path / "log").exists()


def test_progress_bar_and_log(tmp_path, monkeypatch, capsys):
    log = tmp_path / "progress.log"
    monkeypatch.setenv("IMBCL_PROGRESS_LOG", str(log))
    tasks = simulate_tasks(range(3))
    run(tasks[:1], store=tmp_path / "s", scheduler="inprocess", name="ch2")
    run(tasks, store=tmp_path / "s", scheduler="inprocess", name="ch2")
    err = capsys.readouterr().err
    assert "ch2" in err and "2 done, 1 cached, 0 failed" in err
    lines = log.read_text().splitlines()
    assert lines[0] == "[ch2] 0/1 tasks: 0 cached, 0 failed, 1 to compute"
    assert lines[2] == "[ch2] 1/3 tasks: 1 cached, 0 failed, 2 to compute"
    assert lines[3].startswith("[ch2] 3/3 tasks: 1 cached, 0 failed, finished in ")
    monkeypatch.setenv("IMBCL_PROGRESS", "0")
    run(tasks, store=tmp_path / "t", scheduler="inprocess", name="ch2")
    assert "ch2" not in capsys.readouterr().err


def test_a_fully_cached_default_run_starts_no_cluster(tmp_path, monkeypatch):
    """Keys computed in process match the default local cluster's (same machine, source and
    thread count), so a notebook whose tasks are all stored renders without starting Dask."""
    tasks = simulate_tasks(range(2))
    monkeypatch.setenv("IMBCL_SCHEDULER", "inprocess")
    assert run(tasks, store=tmp_path, progress=False).status == ["computed"] * 2
    monkeypatch.delenv("IMBCL_SCHEDULER")
    assert run(tasks, store=tmp_path, progress=False).status == ["cached"] * 2
    assert not cluster._default
