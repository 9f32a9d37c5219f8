"""The task every synthetic study shares: train a block of runs together and keep their records.

A study's plan lists its runs as RunSpecs; :func:`run_tasks` groups them into tasks of runs that
can train stacked (same shapes and steps, seeds in one aligned block of :data:`SEED_BLOCK`),
and :func:`train_runs` trains one such group as one :class:`~imbcl.engine.train.Replicas`.
Stacking changes no run's numbers (on the CPU the stacked arithmetic is the same bit for bit as
a run alone; ``tests/test_runs.py`` checks it), and the aligned blocks let a larger ``n_seeds``
reuse the stored blocks of a smaller one. :func:`run_histories` gives back one History per
RunSpec, whatever task computed it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import RunSpec
from imbcl.engine.history import History
from imbcl.engine.train import Replicas
from imbcl.sweep import Result, Task

#: Seeds per stacked task: seed s goes with the seeds of block s // SEED_BLOCK.
SEED_BLOCK = 8


def stack_key(spec: RunSpec) -> tuple:
    """Runs with the same key train together: shapes, steps and the block of their seed."""
    return (*spec.shape_key(), spec.train.steps, spec.seed // SEED_BLOCK)


def stacked_groups(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """``specs`` grouped by :func:`stack_key` (runs that train together), in the order of each
    group's first run."""
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(stack_key(spec), []).append(spec)
    return list(groups.values())


def run_tasks(specs: Sequence[RunSpec], label: str) -> list[Task]:
    """One :func:`train_runs` task per group of ``specs`` with the same :func:`stack_key`, in
    the order of each group's first run; ``label`` starts every task's label."""
    tasks = []
    for group in stacked_groups(specs):
        seeds = sorted({s.seed for s in group})
        rhos = sorted({s.data.rho for s in group})
        name = f"{label} rho={','.join(f'{r:g}' for r in rhos)} seeds {seeds[0]}-{seeds[-1]}"
        tasks.append(Task("imbcl.studies.runs:train_runs", {"specs": group}, name))
    return tasks


def train_runs(specs: list[RunSpec]) -> Result:
    """Train ``specs`` stacked to their ``train.steps``; a non-finite loss fails the task.

    The table has one row per run: seed, rho, whether the attention trained, the final best
    alignment averaged over majority and over minority features (a.u.), the mean attention
    entropy at the end (nats) with its uniform value log L, and the Frobenius norm of W_Q at
    the end. The arrays are the runs' History (:meth:`History.to_arrays`).
    """
    reps = Replicas(specs)
    hist = reps.run(progress=False, divergence="raise")
    best = metrics.best_per_feature(np.abs(hist.align[-1]))  # (R, K)
    maj, mnr = metrics.group_mean(best, hist.minority)
    table = pd.DataFrame(
        {
            "seed": [s.seed for s in specs],
            "rho": [s.data.rho for s in specs],
            "trained_attention": [s.model.train_attention for s in specs],
            "final_majority": maj,
            "final_minority": mnr,
            "attention_entropy": metrics.attention_entropy(reps),
            "uniform_entropy": [np.log(s.data.seq_len) for s in specs],
            "wq_norm": reps.params["WQ"].flatten(1).norm(dim=1).cpu().numpy(),
        }
    )
    arrays, meta = hist.to_arrays()
    return Result(table, arrays, meta)


def run_histories(results, specs: Sequence[RunSpec]) -> list[History]:
    """The History of each of ``specs`` (one replica each), from the results of the tasks of
    :func:`run_tasks` (in any order). KeyError if a spec was not run."""
    found: dict[RunSpec, History] = {}
    for result in results:
        hist = History.from_arrays(result.arrays, result.meta)
        for i, spec in enumerate(hist.specs):
            found[spec] = hist.select([i])
    return [found[spec] for spec in specs]


def summaries(results) -> pd.DataFrame:
    """The tables of :func:`train_runs` results, stacked: one row per run."""
    return pd.concat([r.table for r in results], ignore_index=True)
