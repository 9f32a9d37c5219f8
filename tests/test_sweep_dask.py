"""``imbcl.sweep.run`` on Dask: a 2-worker LocalCluster, a real ``dask scheduler`` + ``dask
worker`` pair, and a client killed with SIGKILL mid-sweep then resumed."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

from imbcl.sweep import NumericEnv, Store, SweepError, Task, close, run
from imbcl.sweep.cluster import default_client, workers_env
from imbcl.sweep.worker import WorkerEnvError, execute
from tests.sweep_study import Settings, plan
from tests.sweep_tasks import FAILING, HERE, check_failure_report, simulate, simulate_tasks

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 180  # generous: two cores shared with other work


def assert_same_results(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.table, y.table)
        assert x.arrays.keys() == y.arrays.keys()
        assert all(np.array_equal(x.arrays[k], y.arrays[k]) for k in x.arrays)
        assert x.meta == y.meta


def entry_names(store: Store) -> set[str]:
    return {p.name for p in store.root.glob("??/*") if p.is_dir()}


@pytest.fixture(scope="module")
def cluster():
    """This process's default LocalCluster (``scheduler=None``), with 2 workers, started from
    an environment without OMP_WAIT_POLICY and IMBCL_THREADS (so the workers' thread policy
    comes from the sweep layer); closed at the end."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OMP_WAIT_POLICY", raising=False)
        mp.delenv("IMBCL_THREADS", raising=False)
        mp.delenv("IMBCL_SCHEDULER", raising=False)
        mp.setenv("IMBCL_WORKERS", "2")
        client = default_client()
    yield client.cluster
    close()
    assert client.status == "closed" and client.cluster.status.name == "closed"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Six simulate tasks computed in this process, and their results."""
    tasks = simulate_tasks(range(6))
    store = Store(tmp_path_factory.mktemp("reference"))
    return tasks, store, run(tasks, store=store, scheduler="inprocess", progress=False)


def test_local_cluster_gives_results_identical_to_in_process(
    cluster, reference, tmp_path, monkeypatch
):
    tasks, ref_store, ref = reference
    store = Store(tmp_path)
    monkeypatch.delenv("IMBCL_SCHEDULER", raising=False)
    out = run(tasks, store=store, progress=False)  # the default: this process's LocalCluster
    assert len(cluster.workers) == 2
    assert out.status == ["computed"] * 6
    assert entry_names(store) == entry_names(ref_store)  # same keys
    assert_same_results(out, ref)
    # a cluster object (as dask-jobqueue's) is accepted too
    assert run(tasks, store=store, scheduler=cluster, progress=False).status == ["cached"] * 6


def test_workers_get_the_thread_policy(cluster, tmp_path):
    (out,) = run([Task(f"{HERE}:thread_policy", {}, "policy")], store=tmp_path, scheduler=cluster)
    assert out.meta["torch_threads"] == 1
    assert out.meta["omp_wait_policy"] == "PASSIVE"
    assert out.meta["omp_wait_policy_at_start"] == "PASSIVE"  # in the process env from exec
    assert out.table["pid"][0] != os.getpid()


def test_raising_task_on_a_worker_is_reported_and_the_others_are_stored(cluster, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(SweepError) as info:
        run(FAILING, store=store, scheduler=cluster, progress=False, name="demo")
    check_failure_report(str(info.value))  # the cause travelled from the worker
    assert "in fail" in info.value.failures["traceback"][0]
    assert len(entry_names(store)) == 2


def test_a_dying_worker_has_its_task_retried(cluster, tmp_path):
    marker = tmp_path / "attempts"
    task = Task(f"{HERE}:die_once", {"marker": str(marker)}, "dies once")
    (out,) = run([task], store=tmp_path / "store", scheduler=cluster, progress=False)
    attempts = marker.read_text().splitlines()
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # two worker processes
    assert out.table["attempts"][0] == 2


def test_workers_with_other_imbcl_source_are_refused(cluster, monkeypatch):
    with Client(cluster, set_as_default=False) as client:
        monkeypatch.setattr("imbcl.sweep.cluster.source_hash", lambda: "f" * 64)
        with pytest.raises(WorkerEnvError, match="other imbcl source"):
            workers_env(client)


def test_workers_that_disagree_are_refused():
    env = NumericEnv.local(threads=1)

    class TwoKindsOfWorkers:  # stands in for a Client: only what workers_env uses
        scheduler = type("Comm", (), {"address": "tcp://fake:8786"})

        def wait_for_workers(self, n, timeout):
            pass

        def run(self, fn):
            return {"tcp://a:1": env, "tcp://b:1": dataclasses.replace(env, cpu_capability="X")}

    with pytest.raises(WorkerEnvError, match="numeric environments differ") as info:
        workers_env(TwoKindsOfWorkers())
    assert "tcp://a:1: {'cpu_capability': 'AVX" in str(info.value)
    assert "tcp://b:1: {'cpu_capability': 'X'" in str(info.value)


def test_two_clients_asking_for_one_task_share_its_computation(cluster, tmp_path):
    tasks = simulate_tasks([42], sleep=2.0, log=str(tmp_path / "log"))
    with Client(cluster, set_as_default=False) as a, Client(cluster, set_as_default=False) as b:
        with ThreadPoolExecutor(2) as pool:
            outs = list(
                pool.map(lambda c: run(tasks, store=tmp_path, scheduler=c, progress=False), [a, b])
            )
    assert [o.status for o in outs] == [["computed"], ["computed"]]
    assert (tmp_path / "log").read_text() == "seed=42\n"  # computed once


def test_a_worker_refuses_a_task_keyed_for_another_env(tmp_path):
    env = NumericEnv.local(threads=1)
    other = NumericEnv(env.cpu_capability, 7, env.device, env.versions, env.source)
    (task,) = simulate_tasks(range(1))
    with pytest.raises(WorkerEnvError, match="threads: 1 != 7"):
        execute(task, task.key(other), other, str(tmp_path))


def terminate(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group we started, then SIGKILL what is left after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(condition, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def child_env(**extra: str) -> dict[str, str]:
    """This environment, with imbcl and tests importable from the repo root."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "IMBCL_PROGRESS": "0", **extra}


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """A ``dask scheduler`` and a ``dask worker`` (1 process, 1 thread) on localhost, on a free
    port, as separate processes; terminated at the end."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    env = child_env(OMP_WAIT_POLICY="PASSIVE", IMBCL_THREADS="1")
    common = {"cwd": folder, "env": env, "start_new_session": True}
    log = open(folder / "dask.log", "w")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
            stdout=log, stderr=subprocess.STDOUT, **common,
        )
    ]  # fmt: skip
    try:
        wait_for(file.exists, "the scheduler file")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                 str(file), "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, **common,
            )
        )  # fmt: skip
        yield json.loads(file.read_text())["address"]
    finally:
        close()
        terminate(procs)
        log.close()


def test_existing_scheduler_and_worker_give_the_same_results(
    scheduler_address, reference, tmp_path
):
    tasks, ref_store, ref = reference
    store = Store(tmp_path)
    out = run(tasks, store=store, scheduler=scheduler_address, progress=False)
    assert out.status == ["computed"] * 6
    assert entry_names(store) == entry_names(ref_store)
    assert_same_results(out, ref)


def verified_entries(store: Store) -> set[str]:
    """Names of the store's entries, each verified (a corrupt one fails the test)."""
    names = entry_names(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(store.get(name) is not None for name in names)
    return names


def idle(address: str) -> bool:
    """Whether the scheduler and its workers hold no task (all released or finished)."""
    with Client(address, set_as_default=False) as client:
        on_scheduler = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        on_workers = client.run(lambda dask_worker: len(dask_worker.state.tasks))
    return on_scheduler == 0 and not any(on_workers.values())


def test_kill_9_of_the_client_then_resume_computes_each_missing_task_once(
    scheduler_address, tmp_path
):
    """The sweep command (against the scheduler + worker pair) is killed with SIGKILL once 2 of
    8 tasks are stored; no stored entry is corrupt; once the cluster is idle the same command
    completes the store, computing each missing task exactly once and no stored one again."""
    log, store = tmp_path / "computed.log", Store(tmp_path / "store")
    n, sleep = 8, 0.3
    command = [sys.executable, "-m", "imbcl", "sweep", "tests.sweep_study", "-p", "n_seeds",
               str(n), "-p", "sleep", str(sleep), "-p", "log", str(log), "--store",
               str(store.root), "--scheduler", scheduler_address]  # fmt: skip
    client = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE)
    try:
        wait_for(lambda: len(entry_names(store)) >= 2 or client.poll() is not None, "2 entries")
        client.send_signal(signal.SIGKILL)
        client.wait()
    finally:
        if client.poll() is None:
            client.kill()
        client.stdout.close()
    assert client.returncode == -signal.SIGKILL, "the sweep finished before it was killed"
    assert verified_entries(store) and len(entry_names(store)) < n
    wait_for(lambda: idle(scheduler_address), "the cluster to drop the killed client's tasks")
    stored = verified_entries(store)  # including a task that finished after the kill
    before = len(log.read_text().splitlines())

    resumed = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True,
                             timeout=TIMEOUT_S)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    summary = f"{n} tasks, {len(stored)} cached, {n - len(stored)} computed, 0 failed"
    assert summary in resumed.stdout
    after = collections.Counter(log.read_text().splitlines()[before:])
    tasks = plan(Settings(n_seeds=n, sleep=sleep, log=str(log)))
    seeds = {t.key(NumericEnv.local(threads=1)): t.kwargs["seed"] for t in tasks}
    assert set(after) == {f"seed={s}" for k, s in seeds.items() if k not in stored}
    assert set(after.values()) == {1}
    assert verified_entries(store) == set(seeds)
    expected = [simulate(seed=s) for s in seeds.values()]
    for result in expected:
        result.meta = {"seed": int(result.meta["seed"]), "shape": [32, 32]}  # as JSON reads it
    assert_same_results([store.get(k) for k in seeds], expected)
