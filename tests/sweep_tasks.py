"""Task functions for the sweep tests, importable by Dask workers (``tests.sweep_tasks``), and
task lists built from them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imbcl.sweep import Result, Task

HERE = "tests.sweep_tasks"


class DivergenceError(RuntimeError):
    """Stands in for imbcl.engine.train.DivergenceError (the sweep matches it by name)."""


def simulate(seed: int, n: int = 32, steps: int = 5, sleep: float = 0.0, log: str = "") -> Result:
    """A little seeded torch and numpy work: a few gradient steps of a random least-squares
    problem. ``log``: a file to which the label-free line ``seed=<seed>`` is appended at start
    (to count computations); ``sleep``: seconds to wait first (to kill a sweep mid-way)."""
    if log:
        with open(log, "a") as f:
            f.write(f"seed={seed}\n")
    time.sleep(sleep)
    torch.manual_seed(seed)
    x = torch.randn(n, n)
    w = torch.zeros(n, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((x @ w - 1.0) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    noise = np.random.default_rng(seed).standard_normal((4, n))
    table = pd.DataFrame(
        {
            "seed": [seed] * steps,
            "step": range(steps),
            "loss": losses,
            "label": [f"s{seed}"] * steps,
        }
    )
    return Result(
        table=table,
        arrays={"w": w.detach().numpy().copy(), "noise": noise},
        meta={"seed": np.int64(seed), "shape": (n, n)},
    )


def fail(message: str) -> Result:
    """Always raises ``ValueError(message)``."""
    raise ValueError(message)


def diverge(step: int) -> Result:
    """Raises ``DivergenceError`` caused by a non-finite loss at ``step``."""
    try:
        raise FloatingPointError(f"loss is nan at step {step}")
    except FloatingPointError as exc:
        raise DivergenceError(f"training diverged at step {step}") from exc


def die_once(marker: str) -> Result:
    """Kills its own (worker) process the first time (no ``marker`` file yet); succeeds the
    second time. Each attempt appends a line to ``marker``."""
    first = not Path(marker).exists()
    with open(marker, "a") as f:
        f.write(f"attempt pid={os.getpid()}\n")
    if first:
        os.kill(os.getpid(), signal.SIGKILL)
    return Result(table=pd.DataFrame({"attempts": [len(Path(marker).read_text().splitlines())]}))


def thread_policy() -> Result:
    """What the process computing it sees: torch's thread count, ``OMP_WAIT_POLICY`` now and in
    the environment the process started with (``/proc/self/environ``)."""
    initial = dict(
        item.split("=", 1)
        for item in Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0")
        if "=" in item
    )
    return Result(
        table=pd.DataFrame({"pid": [os.getpid()]}),
        meta={
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_wait_policy_at_start": initial.get("OMP_WAIT_POLICY"),
        },
    )


def simulate_tasks(seeds: Iterable[int], **kwargs) -> list[Task]:
    """One :func:`simulate` task per seed."""
    return [Task(f"{HERE}:simulate", {"seed": s, **kwargs}, f"sim seed={s}") for s in seeds]


# Two good and two failing tasks, and what a report of their failures must say.
FAILING = [
    Task(f"{HERE}:simulate", {"seed": 1}, "ok 1"),
    Task(f"{HERE}:fail", {"message": "bad width 7"}, "bad cell m=7"),
    Task(f"{HERE}:diverge", {"step": 12}, "diverging cell lr=9"),
    Task(f"{HERE}:simulate", {"seed": 2}, "ok 2"),
]


def check_failure_report(message: str) -> None:
    """A SweepError message for FAILING (sweep "demo") names each failed task's label, fn,
    kwargs and exception, with the divergence's cause."""
    assert "2 of 4 tasks of sweep 'demo' failed" in message
    assert '- bad cell m=7: tests.sweep_tasks:fail(**{"message":"bad width 7"})' in message
    assert "ValueError: bad width 7" in message
    assert '- diverging cell lr=9: tests.sweep_tasks:diverge(**{"step":12})' in message
    assert "DivergenceError: training diverged at step 12" in message
    assert "caused by FloatingPointError: loss is nan at step 12" in message
