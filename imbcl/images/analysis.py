"""Chapter 5's measurements: probe every replica, and one experiment in one call.

:func:`evaluate` gives one row per (rho, seed, method, probe) with overall, head and tail
accuracy and the head - tail gap, in percent; :func:`run_experiment` is one (seed set, rho)
experiment in one call. Paired deltas and seed summaries are :mod:`imbcl.report.paired`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from imbcl.engine.probe import fit_logistic
from imbcl.images.config import ImageDataConfig, Method, SimCLRConfig
from imbcl.images.datasets import ImageSet
from imbcl.images.probe import class_accuracy, features
from imbcl.images.splits import Split, few_shot_draws
from imbcl.images.training import Experiment, build, train

#: The measured quantities of every row, in percent.
METRICS = ("overall", "head", "tail", "gap")


def _summaries(acc: np.ndarray, split: Split) -> dict:
    """Overall, head, tail accuracy and head - tail gap (percent) from per-class acc (C,)."""
    head, tail = acc[split.head].mean(), acc[split.tail].mean()
    return {"overall": 100 * acc.mean(), "head": 100 * head, "tail": 100 * tail,
            "gap": 100 * (head - tail)}  # fmt: skip


def _probe_features(exp: Experiment):
    """Frozen features and labels of each replica's probe images, (R, C*n_probe, m) and
    (R, C*n_probe), and of its test images, (R, C*n_test, m) and (R, C*n_test)."""
    seed_of = exp.replica_seed()
    probe_idx = torch.as_tensor(np.stack([exp.splits[s].probe for s in seed_of]))
    test_idx = torch.as_tensor(np.stack([exp.splits[s].test for s in seed_of]))
    f_probe = features(exp, exp.pool[probe_idx.to(exp.device)])
    f_test = features(exp, exp.test[test_idx.to(exp.device)])
    y_probe = torch.as_tensor(exp.pool_labels[probe_idx.numpy()], device=exp.device)
    y_test = torch.as_tensor(exp.test_labels[test_idx.numpy()], device=exp.device)
    return f_probe, y_probe, f_test, y_test


def _few_shot_accuracy(exp: Experiment, f_probe, y_probe, f_test, y_test) -> torch.Tensor:
    """(R, n_draws, C) per-class test accuracy of probes fit on k_shot images per class, the
    draws shared by the replicas of a seed."""
    data, n_classes, n_rep = exp.data, len(exp.splits[0].order), exp.n_replicas
    draws = [
        few_shot_draws(exp.pool_labels[exp.splits[s].probe], data.k_shot, data.n_draws, seed)
        for s, seed in enumerate(exp.seeds)
    ]
    pos = np.stack([draws[s] for s in exp.replica_seed()])
    pos = torch.as_tensor(pos, device=exp.device)  # (R, D, C*k)
    rows = torch.arange(n_rep, device=exp.device)[:, None, None]
    x_few = f_probe[rows, pos].flatten(0, 1)  # (R*D, C*k, m)
    y_few = y_probe[rows, pos].flatten(0, 1)
    predict = fit_logistic(x_few, y_few, n_classes).predict
    f_rep = f_test.repeat_interleave(data.n_draws, dim=0)
    y_rep = y_test.repeat_interleave(data.n_draws, dim=0)
    acc = class_accuracy(predict(f_rep), y_rep, n_classes)
    return acc.reshape(n_rep, data.n_draws, n_classes)


def evaluate(exp: Experiment) -> pd.DataFrame:
    """One row per (seed, method, probe) (and the run's rho): overall, head and tail accuracy
    and the head - tail gap, in percent.

    ``probe`` is 'few-shot' (k_shot labelled images per class, per-class accuracies averaged
    over n_draws draws shared by the seed's methods) or 'full' (n_probe per class). Probes
    read frozen f(X) and are scored on the seed's balanced held-out test images.
    """
    n_classes, seed_of = len(exp.splits[0].order), exp.replica_seed()
    f_probe, y_probe, f_test, y_test = _probe_features(exp)
    predict = fit_logistic(f_probe, y_probe, n_classes).predict
    accuracy = {  # probe -> (R, draws, C)
        "full": class_accuracy(predict(f_test), y_test, n_classes)[:, None],
        "few-shot": _few_shot_accuracy(exp, f_probe, y_probe, f_test, y_test),
    }
    records = []
    for probe, acc in accuracy.items():
        acc = acc.mean(dim=1).cpu().numpy()  # (R, C), averaged over draws
        for r, method in enumerate(exp.replica_method()):
            split = exp.splits[seed_of[r]]
            records.append(
                {"rho": exp.data.rho, "seed": split.seed, "method": method.name, "probe": probe}
                | _summaries(acc[r], split)
            )
    return pd.DataFrame.from_records(records)


def run_experiment(
    data: ImageDataConfig,
    cfg: SimCLRConfig,
    methods: Sequence[Method],
    seeds: Sequence[int],
    sets: tuple[ImageSet, ImageSet | None],
    device: torch.device | str = "cpu",
) -> tuple[pd.DataFrame, Experiment]:
    """One (seed set, rho) experiment: the rows of :func:`evaluate` for the untrained encoder
    (method 'untrained': each seed's initial weights, probed as one replica per seed), then
    for every method trained for ``cfg.steps`` steps; and the trained experiment (its loss
    records).

    Each replica's probes are solved independently (:func:`imbcl.engine.probe.fit_logistic`),
    so a seed's results do not depend on the seeds or methods beside it.
    """
    initial = build(data, cfg, list(methods[:1]), list(seeds), sets, device)  # SimCLR, step 0
    untrained = evaluate(initial).assign(method="untrained")
    exp = train(build(data, cfg, list(methods), list(seeds), sets, device))
    return pd.concat([untrained, evaluate(exp)], ignore_index=True), exp
