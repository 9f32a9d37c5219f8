"""The regime atlas: where the learnability cliff of the minority features sits.

For the book's recipe and for variants that change one thing each (the masking granularity,
the L2 penalty, the number of steps, the batch size), a grid of imbalance ratios rho is
trained on several seeds, and each run is summarised by the share of minority features it
learned (some neuron with max_i |A_ij| >= ``learned``). The cliff of a variant is the rho at
which the mean learned share over seeds falls through 1/2, read by linear interpolation in
log rho between grid points; its 95 % interval comes from resampling the seeds (one seed's
runs at every rho move together, since they share its dictionary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import ConfigError, DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.config import validated_field as field
from imbcl.engine.settings import StudySettings
from imbcl.studies.runs import run_histories, run_tasks

#: What each variant changes in the recipe, as (config, field, value) triples.
VARIANTS = {
    "recipe": (),
    "sample": (("data", "mask", "sample"),),
    "lambda_half": (("train", "weight_decay", 0.025),),
    "steps_double": (("train", "steps", 2000), ("model", "ramp_steps", 1000)),
    "batch_double": (("train", "batch", 256),),
}
#: How each variant reads in tables and legends.
LABELS = {
    "recipe": "the recipe",
    "sample": "one mask per sample",
    "lambda_half": "λ = 0.025",
    "steps_double": "2,000 steps (ramp 1,000)",
    "batch_double": "batch 256",
}
#: A learned share below this at some rho marks the cliff.
HALF = 0.5


@dataclass(frozen=True)
class Settings(StudySettings):
    """The atlas: the recipe on a fine rho grid, each variant on a coarser one."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 6, "variant_seeds": 4},
        "small": {
            "n_seeds": 2,
            "variant_seeds": 2,
            "rho_grid": "4,12",
            "variant_rho_grid": "4,12",
            "variants": "sample",
        },
    }

    rho_grid: str = field("2,4,6,8,10,12,16,24", doc="imbalance ratios for the recipe")
    variant_rho_grid: str = field("4,8,12,16,24", doc="imbalance ratios for each variant")
    variants: str = field(
        "sample,lambda_half,steps_double,batch_double",
        doc="variants of the recipe, comma-separated",
    )
    variant_seeds: int = field(4, lo=2, doc="seeds per rho for each variant")
    learned: float = field(0.2, lo=0, lo_open=True, doc="a feature is learned at this alignment")

    def _check_joint(self) -> None:
        for name in ("rho_grid", "variant_rho_grid"):
            self.grid(name, lo=1, increasing=True)
        for name in self.variant_names:
            if name not in VARIANTS or name == "recipe":
                valid = ", ".join(v for v in VARIANTS if v != "recipe")
                raise ConfigError(f"variants must be among {valid} (got {name!r})")
        if self.variant_seeds > self.n_seeds:
            raise ConfigError(f"variant_seeds must be <= n_seeds = {self.n_seeds}")

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.variants.split(",") if v.strip())


def variant_spec(variant: str, rho: float, seed: int) -> RunSpec:
    """The recipe at ``rho`` with the changes of ``variant``, recorded at the end only."""
    parts = {"data": DataConfig(rho=rho), "model": ModelConfig(), "train": TrainConfig()}
    for part, name, value in VARIANTS[variant]:
        parts[part] = parts[part].replace(**{name: value})
    parts["train"] = parts["train"].replace(record_every=parts["train"].steps)
    return RunSpec(**parts, seed=seed)


def cells(settings: Settings) -> list[tuple[str, float, int]]:
    """(variant, rho, seed) of every run, the recipe first."""
    out = [("recipe", r, s) for r in settings.grid("rho_grid") for s in settings.seeds]
    seeds = settings.seeds[: settings.variant_seeds]
    for variant in settings.variant_names:
        out += [(variant, r, s) for r in settings.grid("variant_rho_grid") for s in seeds]
    return out


def plan(settings: Settings) -> list:
    """Tasks of :func:`imbcl.studies.runs.train_runs`: each variant's rho grid and seeds,
    stacked in blocks."""
    specs = [variant_spec(v, r, s) for v, r, s in cells(settings)]
    return run_tasks(specs, "atlas")


def run_table(settings: Settings, results) -> pd.DataFrame:
    """One row per run: variant, rho, seed, learned (share of minority features learned),
    final_minority and final_majority (mean best alignment, a.u.) and their log ratio."""
    rows = []
    specs = [variant_spec(v, r, s) for v, r, s in cells(settings)]
    hists = run_histories(results, specs)
    for (variant, rho, seed), hist in zip(cells(settings), hists, strict=True):
        minority = hist.minority
        best = metrics.best_per_feature(np.abs(hist.align[-1]))[0]  # (K,)
        maj, mnr = best[~minority].mean(), best[minority].mean()
        rows.append(
            {
                "variant": variant,
                "rho": rho,
                "seed": seed,
                "learned": float((best[minority] >= settings.learned).mean()),
                "final_majority": float(maj),
                "final_minority": float(mnr),
                "log_ratio": float(np.log(mnr / maj)),
            }
        )
    return pd.DataFrame(rows)


def crossing(rhos: np.ndarray, share: np.ndarray) -> float:
    """The rho at which ``share`` (per rho, increasing ``rhos``) first falls below 1/2, by
    linear interpolation in log rho; -inf if below at the first rho, +inf if never."""
    below = np.flatnonzero(share < HALF)
    if not below.size:
        return math.inf
    i = below[0]
    if i == 0:
        return -math.inf
    x0, x1 = np.log(rhos[i - 1]), np.log(rhos[i])
    y0, y1 = share[i - 1], share[i]
    return float(np.exp(x0 + (y0 - HALF) / (y0 - y1) * (x1 - x0)))


def cliff(table: pd.DataFrame, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per variant: the cliff (:func:`crossing` of the mean learned share over seeds) and a
    95 % percentile interval from resampling the seeds with replacement (a seed's runs at
    every rho are kept together). Bounds at +-inf mean "beyond the grid"."""
    rng = np.random.default_rng(seed)
    rows = []
    for variant, sub in table.groupby("variant", sort=False):
        grid = sub.pivot_table(index="seed", columns="rho", values="learned")
        rhos, shares = grid.columns.to_numpy(float), grid.to_numpy()
        draws = rng.integers(0, len(shares), size=(n_resamples, len(shares)))
        boot = [crossing(rhos, shares[d].mean(axis=0)) for d in draws]
        lo, hi = np.quantile(boot, [0.025, 0.975])
        rows.append(
            {
                "variant": variant,
                "cliff": crossing(rhos, shares.mean(axis=0)),
                "lo": lo,
                "hi": hi,
                "seeds": len(shares),
                "rho_min": rhos.min(),
                "rho_max": rhos.max(),
            }
        )
    return pd.DataFrame(rows)
