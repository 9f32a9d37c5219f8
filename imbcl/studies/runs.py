"""The task every synthetic study shares: train one run and keep its record.

:func:`train_run` is what a study's plan names for a run whose History is all it needs; its
:class:`~imbcl.sweep.Result` holds the History's arrays (read back lazily from the store), the
spec, and a one-row summary. :func:`histories` turns the results of a plan back into
Histories, one per group of runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import RunSpec
from imbcl.engine.history import History
from imbcl.engine.train import Replicas
from imbcl.sweep import Result, Task


def run_task(spec: RunSpec, label: str) -> Task:
    """The task that trains ``spec`` with :func:`train_run`."""
    return Task("imbcl.studies.runs:train_run", {"spec": spec}, label)


def train_run(spec: RunSpec) -> Result:
    """Train one run to ``spec.train.steps``; a non-finite loss fails the task.

    The table is one row: seed, rho, whether the attention trained, the final best alignment
    averaged over majority and over minority features (a.u.), the mean attention entropy at
    the end (nats) with its uniform value log L, and the Frobenius norm of W_Q at the end.
    """
    reps = Replicas([spec])
    hist = reps.run(progress=False, divergence="raise")
    best = metrics.best_per_feature(np.abs(hist.align[-1]))  # (1, K)
    maj, mnr = metrics.group_mean(best, hist.minority)
    table = pd.DataFrame(
        {
            "seed": [spec.seed],
            "rho": [spec.data.rho],
            "trained_attention": [spec.model.train_attention],
            "final_majority": maj,
            "final_minority": mnr,
            "attention_entropy": metrics.attention_entropy(reps),
            "uniform_entropy": [np.log(spec.data.seq_len)],
            "wq_norm": [float(reps.params["WQ"][0].norm())],
        }
    )
    arrays, meta = hist.to_arrays()
    return Result(table, arrays, meta)


def histories(results, groups: dict[str, list[int]]) -> dict[str, History]:
    """{name: History of the runs at ``indices``} from :func:`train_run` results."""
    out = {}
    for name, indices in groups.items():
        parts = [History.from_arrays(results[i].arrays, results[i].meta) for i in indices]
        out[name] = History.join(parts)
    return out


def summaries(results) -> pd.DataFrame:
    """The one-row tables of :func:`train_run` results, stacked."""
    return pd.concat([r.table for r in results], ignore_index=True)
