"""Chapter 2: the capacity cost of minority features.

The chapter trains the book's recipe over a grid of imbalance ratios rho and widths m, one run
per (rho, m, seed), and reads only the end of training. Per run it measures, from the final
alignments A_ij = <W_V^T w_i, M_j> (a.u.) and noise norms:

* neurons per feature: the number of neurons specialised in a feature
  (:func:`imbcl.engine.metrics.owners`: alive, and |A_ij*| at least the neuron's noise norm),
  averaged over the majority and over the minority features (neurons);
* coverage: the share of a group's features with at least one specialised neuron;
* learned: the share of a group's features whose best alignment max_i |A_ij| reaches
  :data:`LEARNED` (a.u.), whether or not a neuron is specialised in them.

A control arm retrains the cell (:data:`CONTROL_RHO`, :data:`CONTROL_M`) past the learnability
cliff with a smaller L2 penalty, on the same seeds. The claims' per-seed statistics are read
from these measurements by :func:`imbcl.report.ch2.claim_values`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import MASKS, ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.config import validated_field as field
from imbcl.engine.history import History
from imbcl.engine.settings import StudySettings
from imbcl.engine.train import Replicas
from imbcl.sweep import Result, Task

#: A feature is learned when some neuron's |A_ij| reaches this (a.u.; the registry's
#: threshold). At the end of the recipe an unlearned minority feature sits near 0.06 and a
#: learned one near 0.5-1.0.
LEARNED = 0.2
#: The imbalance ratios at which the registered claims are stated: the balanced control, fewer
#: neurons, near the cliff, past the cliff. The rho grid must hold all four.
CLAIM_RHOS = {"balanced": 1.0, "fewer": 4.0, "near_cliff": 8.0, "past": 16.0}
#: The control cell: past the cliff, at the recipe's width.
CONTROL_RHO = CLAIM_RHOS["past"]
CONTROL_M = ModelConfig().m
#: The recipe's L2 penalty lambda, against which the control arm is compared.
RECIPE_WEIGHT_DECAY = TrainConfig().weight_decay


# ------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings(StudySettings):
    """Chapter 2: a rho x width sweep of the book's recipe and a smaller-penalty control arm."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 8},
        "small": {"n_seeds": 6, "widths": "64"},
    }

    rho_grid: str = field("1,4,8,16", doc="imbalance ratios of the sweep (must hold 1, 4, 8, 16)")
    widths: str = field("32,64,128", doc="widths m of the sweep (neurons)")
    mask: str = field("token", choices=MASKS, doc="masking granularity of the two views")
    control_weight_decay: float = field(
        0.005, lo=0, doc="L2 penalty lambda of the control arm (rho = 16, m = 64)"
    )

    def _check_joint(self) -> None:
        rhos = self.grid("rho_grid", float, lo=1, increasing=True)
        missing = [r for r in CLAIM_RHOS.values() if r not in rhos]
        if missing:
            raise ConfigError(
                "rho_grid must hold the imbalance ratios of the claims, "
                f"{', '.join(f'{r:g}' for r in CLAIM_RHOS.values())} "
                f"(got {self.rho_grid!r}, missing {', '.join(f'{r:g}' for r in missing)})"
            )
        self.grid("widths", int, lo=1, increasing=True)
        if self.control_weight_decay == RECIPE_WEIGHT_DECAY:
            raise ConfigError(
                f"control_weight_decay must differ from the recipe's {RECIPE_WEIGHT_DECAY:g} "
                f"(got {self.control_weight_decay:g})"
            )

    @property
    def rhos(self) -> tuple[float, ...]:
        """The rho grid, increasing."""
        return self.grid("rho_grid", float)

    @property
    def width_grid(self) -> tuple[int, ...]:
        """The widths of the sweep (neurons), increasing."""
        return self.grid("widths", int)


# ------------------------------------------------------------------ the chapter's runs
def run_spec(settings: Settings, rho: float, m: int, seed: int, weight_decay: float) -> RunSpec:
    """The book's recipe at (rho, m, seed) with L2 penalty ``weight_decay``, recorded only at
    the start and the end of training."""
    train = TrainConfig(weight_decay=weight_decay)
    return RunSpec(
        DataConfig(rho=rho, mask=settings.mask),
        ModelConfig(m=m),
        train.replace(record_every=train.steps),
        seed=seed,
    )


def width_specs(settings: Settings, m: int, seed: int) -> list[RunSpec]:
    """The runs of one seed at width ``m``: the rho grid at the recipe's penalty if ``m`` is a
    width of the sweep, then, at :data:`CONTROL_M`, the control arm (and the recipe's arm of
    the control cell when the sweep does not hold it)."""
    specs = []
    if m in settings.width_grid:
        specs += [run_spec(settings, r, m, seed, RECIPE_WEIGHT_DECAY) for r in settings.rhos]
    if m == CONTROL_M:
        if not specs:
            specs.append(run_spec(settings, CONTROL_RHO, m, seed, RECIPE_WEIGHT_DECAY))
        specs.append(run_spec(settings, CONTROL_RHO, m, seed, settings.control_weight_decay))
    return specs


def plan(settings: Settings) -> list[Task]:
    """One task per width and seed (:func:`train_stack`): the runs of :func:`width_specs`.

    The runs of one task share their shapes and train as one stack of replicas; each still
    depends only on its own RunSpec. Stacking is cheaper on the CPU (measured on 2 cores for
    m = 16-128: 1.7-2.9 s per run stacked by 5 or 8, 2.6-3.7 s one by one).
    """
    widths = sorted({*settings.width_grid, CONTROL_M})
    return [
        Task(
            "imbcl.studies.capacity:train_stack",
            {"specs": width_specs(settings, m, seed)},
            f"ch2 m={m} seed={seed}",
        )
        for m in widths
        for seed in settings.seeds
    ]


def train_stack(specs: list[RunSpec]) -> Result:
    """Train ``specs`` (same shapes) as one stack of replicas; a non-finite loss fails the task.

    The table is :func:`final_measurements` (one row per run); the arrays are the History.
    """
    reps = Replicas(list(specs), chunk=len(specs))
    hist = reps.run(progress=False, divergence="raise")
    arrays, meta = hist.to_arrays()
    return Result(final_measurements(hist), arrays, meta)


# ------------------------------------------------------------------ measurements
def final_measurements(hist: History) -> pd.DataFrame:
    """One row per replica of ``hist``, measured at its last record.

    Columns: rho, m, seed, weight_decay (from the spec); n_alive (live neurons); npf_maj,
    npf_min (neurons specialised per majority / minority feature, mean over the group);
    covered_maj, covered_min (share of the group's features with at least one specialised
    neuron); learned_maj, learned_min (share with max_i |A_ij| >= :data:`LEARNED`); best_maj,
    best_min (mean over the group of max_i |A_ij|, a.u.).
    """
    align, noise, minority = hist.align[-1], hist.noise[-1], hist.minority  # (R,m,K), (R,m)
    counts = metrics.neurons_per_feature(metrics.owners(align, noise), len(minority))
    best = metrics.best_per_feature(np.abs(align))  # (R, K)
    groups = {
        "npf": counts.astype(float),
        "covered": (counts > 0).astype(float),
        "learned": (best >= LEARNED).astype(float),
        "best": best,
    }
    out = {
        "rho": [s.data.rho for s in hist.specs],
        "m": [s.model.m for s in hist.specs],
        "seed": [s.seed for s in hist.specs],
        "weight_decay": [s.train.weight_decay for s in hist.specs],
        "n_alive": metrics.alive(align, noise).sum(-1),
    }
    for name, values in groups.items():
        out[f"{name}_maj"], out[f"{name}_min"] = metrics.group_mean(values, minority)
    return pd.DataFrame(out)


def measurements(results) -> pd.DataFrame:
    """The tables of :func:`train_stack` results stacked: one row per run."""
    return pd.concat([r.table for r in results], ignore_index=True)


def sweep_rows(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The sweep as one row per cell of the rho grid x widths x seeds at the recipe's penalty
    (a cell without a run has NaN values), with ``count_ratio`` = npf_min / npf_maj and
    ``relative_gap`` = count_ratio - 1 added (NaN where no neuron serves the majority)."""
    keys = ["rho", "m", "seed"]
    grid = pd.MultiIndex.from_product(
        [settings.rhos, settings.width_grid, settings.seeds], names=keys
    )
    recipe = rows[rows.weight_decay == RECIPE_WEIGHT_DECAY]
    out = recipe.set_index(keys).reindex(grid).reset_index()
    with np.errstate(all="ignore"):
        ratio = np.where(out.npf_maj > 0, out.npf_min / out.npf_maj, np.nan)
    return out.assign(weight_decay=RECIPE_WEIGHT_DECAY, count_ratio=ratio, relative_gap=ratio - 1.0)


def control_rows(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The control cell's rows, both penalties, with ``arm`` = "recipe" or "control"."""
    cell = rows[(rows.rho == CONTROL_RHO) & (rows.m == CONTROL_M)]
    arms = {RECIPE_WEIGHT_DECAY: "recipe", settings.control_weight_decay: "control"}
    cell = cell[cell.weight_decay.isin(arms)]
    return cell.assign(arm=cell.weight_decay.map(arms)).reset_index(drop=True)


# ------------------------------------------------------------------ the atlas
def regimes(settings: Settings) -> list[dict]:
    """Where the chapter runs, for the atlas and the setting page: label, rho, what differs
    from the recipe, and why."""
    widths = f"widths m = {', '.join(map(str, settings.width_grid))}"
    why = "the width is the chapter's subject"
    rows = [
        {"label": "Ch2", "rho": rho, "deviation": widths, "reason": why} for rho in settings.rhos
    ]
    penalty = f"λ = {settings.control_weight_decay:g}, m = {CONTROL_M}"
    why = "tells a learnability limit from a capacity limit past the cliff"
    return [*rows, {"label": "Ch2", "rho": CONTROL_RHO, "deviation": penalty, "reason": why}]
