"""Chapter 3: how cleanly the neurons separate minority features from noise, and what a linear
read-out of the representation sees.

Write ``align`` (..., m, K) for A_ij = <W_V^T w_i, M_j> (a.u.) and ``noise`` (..., m) for the
norm nu_i of the part of W_V^T w_i outside the feature span (a.u.). Two views of the
feature-to-noise ratio |A_ij| / nu_i (dimensionless):

* **feature side** (:func:`feature_best_ratio`): for each feature j, the ratio of its best live
  neuron, max over live i of |A_ij| / nu_i. It is defined for every feature of every run: the
  neuron with the largest weight norm is always live, so the maximum is over a non-empty set.
  A group's value is the median over its features; the claims use it, so their statistics
  have no missing values by construction of the group.
* **neuron side** (:func:`group_ratios`): the median ratio of the neurons specialised to the
  group's features (:func:`imbcl.engine.metrics.owners`). It is undefined (NaN) where no
  neuron is specialised to the group, which happens past the learnability cliff; it is shown,
  never tested.

The probe (:func:`imbcl.engine.metrics.probe_accuracy`) is a class-balanced logistic regression
detecting z_j in {-1, 0, +1} from f(X) on data with every feature at the majority rate q;
balanced accuracy, chance 1/3.

The chapter's runs (:func:`plan`) are one task per (sigma, rho, seed): the book's recipe
trained in segments, probed between segments (:func:`train_probed`). :func:`seed_table`
reduces them to one row per run, from which :func:`imbcl.report.ch3.claim_values` reads the
statistic of each registered claim, one value per seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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
from imbcl.studies.runs import stacked_groups
from imbcl.sweep import Result, Task

GROUPS = ("majority", "minority")
#: Balanced accuracy of a guess among z in {-1, 0, +1}.
CHANCE = 1.0 / 3.0
#: The recipe's isotropic noise scale, where every claim is tested.
RECIPE_SIGMA = DataConfig().sigma
#: The regimes of the registered claims (imbcl.report.registry, ids ch3.*).
CONTROL_RHO = 1.0  # ch3.control-probe, ch3.ratio-falls (its reference)
NOISIER_RHO = 4.0  # ch3.minority-noisier
GAP_RHO = 8.0  # ch3.probe-gap, ch3.minority-noisier-stage-ii, ch3.ratio-falls
STAGE_II_STEP = 200  # ch3.minority-noisier-stage-ii
CLAIM_RHOS = (CONTROL_RHO, NOISIER_RHO, GAP_RHO)


# ------------------------------------------------------------------------------- training
def train_with_probes(
    specs: list[RunSpec], probe_steps: Sequence[int], n_probe: int
) -> tuple[History, np.ndarray, list[int]]:
    """Train ``specs`` stacked to their ``train.steps`` in segments, probing after each of
    ``probe_steps`` and at the end.

    Returns the History, the probe balanced accuracies (P, R, K) and the P probe steps
    (``probe_steps`` then the last step): :func:`imbcl.engine.metrics.probe_accuracy` with
    ``n_probe`` training and ``n_probe`` test samples. Probing reads the weights and draws from
    its own fixed stream (the same samples at every step), so it does not change training. A
    non-finite loss raises :class:`imbcl.engine.train.DivergenceError`.
    """
    total = specs[0].train.steps
    marks = [int(t) for t in probe_steps]
    if marks != sorted(set(marks)) or any(not 1 <= t < total for t in marks):
        raise ConfigError(
            f"probe_steps must be increasing steps in [1, {total - 1}] (got {list(probe_steps)})"
        )
    marks.append(total)
    reps = Replicas(specs)
    hist, probes = None, []
    for t in marks:
        seg = reps.run(t - reps.step, progress=False, divergence="raise")
        hist = seg if hist is None else hist.concat(seg)
        probes.append(metrics.probe_accuracy(reps, n_probe, n_probe))
    return hist, np.stack(probes), marks


def train_probed(specs: list[RunSpec], probe_steps: list[int], n_probe: int) -> Result:
    """The chapter's task: :func:`train_with_probes` of a stack of runs.

    The table has one row per run, probe step and group: step, rho, sigma, seed, group, probe
    (the mean balanced accuracy over the group's features). The arrays are the History's
    (:meth:`History.to_arrays`) plus ``probe`` (P, R, K) and ``probe_steps`` (P,).
    """
    hist, probes, marks = train_with_probes(specs, probe_steps, n_probe)
    rows = [
        (t, spec.data.rho, spec.data.sigma, spec.seed, group, float(acc[r, sel].mean()))
        for t, acc in zip(marks, probes, strict=True)
        for r, spec in enumerate(specs)
        for group, sel in zip(GROUPS, (~hist.minority, hist.minority), strict=True)
    ]
    table = pd.DataFrame(rows, columns=["step", "rho", "sigma", "seed", "group", "probe"])
    arrays, meta = hist.to_arrays()
    arrays |= {"probe": probes, "probe_steps": np.asarray(marks)}
    return Result(table, arrays, meta)


def probed_tasks(specs: list[RunSpec], probe_steps: Sequence[int], n_probe: int) -> list[Task]:
    """Tasks that run :func:`train_probed` on the runs of ``specs`` stacked in blocks
    (:func:`imbcl.studies.runs.stack_key`)."""
    tasks = []
    for group in stacked_groups(specs):
        seeds = sorted({s.seed for s in group})
        label = f"ch3 sigma={group[0].data.sigma:g} seeds {seeds[0]}-{seeds[-1]}"
        kwargs = {"specs": group, "probe_steps": list(probe_steps), "n_probe": n_probe}
        tasks.append(Task("imbcl.studies.separation:train_probed", kwargs, label))
    return tasks


# ---------------------------------------------------------------------------- measurement
def feature_best_ratio(align: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(..., K) for each feature j, max over live neurons i of |A_ij| / noise_i.

    ``align`` (..., m, K), ``noise`` (..., m). Finite for every feature (see the module
    docstring); below 1 when no neuron is specialised to j.
    """
    ratio = np.abs(align) / np.maximum(noise, 1e-12)[..., None]
    return metrics.best_per_feature(ratio, metrics.alive(align, noise))


def group_ratios(hist: History) -> dict[str, np.ndarray]:
    """Per record and replica, arrays (T, R) for each group g in :data:`GROUPS`:

    ``{g}_best``: median over the group's features of :func:`feature_best_ratio` (finite);
    ``{g}_neuron``: median ratio max_j |A_ij| / noise_i of the neurons specialised to the
    group's features (NaN where there is none); ``{g}_n``: the number of those neurons;
    ``{g}_align``: mean over the group's features of the best alignment max_i |A_ij| (a.u.).
    """
    owner = metrics.owners(hist.align, hist.noise)  # (T, R, m)
    ratio = metrics.feature_noise_ratio(hist.align, hist.noise)
    owned_minority = hist.minority[np.clip(owner, 0, None)]
    best = feature_best_ratio(hist.align, hist.noise)  # (T, R, K)
    align = metrics.best_per_feature(np.abs(hist.align))
    out = {}
    for group, features, owned in (
        ("majority", ~hist.minority, ~owned_minority),
        ("minority", hist.minority, owned_minority),
    ):
        mask = (owner >= 0) & owned
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice: no such neuron
            out[f"{group}_neuron"] = np.nanmedian(np.where(mask, ratio, np.nan), axis=-1)
        out[f"{group}_best"] = np.median(best[..., features], axis=-1)
        out[f"{group}_n"] = mask.sum(-1)
        out[f"{group}_align"] = align[..., features].mean(-1)
    return out


def ratio_table(hist: History) -> pd.DataFrame:
    """Tidy table, one row per (record, run, group): step, rho, sigma, seed, group, best_ratio
    (feature side), neuron_ratio (neuron side, NaN without a specialised neuron), n_neurons,
    align (see :func:`group_ratios`)."""
    g = group_ratios(hist)
    meta = pd.DataFrame(
        {
            "rho": [s.data.rho for s in hist.specs],
            "sigma": [s.data.sigma for s in hist.specs],
            "seed": [s.seed for s in hist.specs],
        }
    )
    t, r = np.meshgrid(np.arange(len(hist.steps)), np.arange(hist.n_replicas), indexing="ij")
    base = meta.iloc[r.ravel()].reset_index(drop=True)
    base.insert(0, "step", hist.steps[t.ravel()])
    names = {"best": "best_ratio", "neuron": "neuron_ratio", "n": "n_neurons", "align": "align"}
    frames = [
        base.assign(group=group, **{col: g[f"{group}_{key}"].ravel() for key, col in names.items()})
        for group in GROUPS
    ]
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------ the chapter's runs
@dataclass(frozen=True)
class Settings(StudySettings):
    """Chapter 3: the book's recipe over a grid of rho, probed between training segments, plus
    a few ratios at a noisier level."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 8},
        "small": {"n_seeds": 6, "rho_grid": "1,4,8", "rho_grid_noisy": "", "probe_steps": ""},
    }

    rho_grid: str = field("1,2,4,8,16", doc="imbalance ratios at sigma = 1 (must hold 1, 4, 8)")
    sigma_noisy: float = field(2.0, lo=0, lo_open=True, doc="a noisier isotropic noise scale")
    rho_grid_noisy: str = field("2", doc="imbalance ratios also run at sigma_noisy ('': none)")
    probe_steps: str = field(
        "200,500", doc="steps probed before the end, sigma = 1 runs ('': none)"
    )
    n_probe: int = field(500, lo=100, doc="probe samples, for fitting and for scoring each")
    record_every: int = field(25, lo=1, doc="steps between records")
    mask: str = field("token", choices=MASKS, doc="masking granularity of the two views")

    def _check_joint(self) -> None:
        rhos = self.grid("rho_grid", lo=1, increasing=True)
        missing = [f"{r:g}" for r in CLAIM_RHOS if r not in rhos]
        if missing:
            raise ConfigError(
                "rho_grid must hold 1, 4 and 8, the regimes of the registered claims "
                f"(missing {', '.join(missing)} in {self.rho_grid!r})"
            )
        self.grid("rho_grid_noisy", lo=1, increasing=True, allow_empty=True)
        if self.sigma_noisy == RECIPE_SIGMA:
            raise ConfigError(f"sigma_noisy must differ from the recipe's sigma = {RECIPE_SIGMA:g}")
        steps = TrainConfig().steps
        probes = self.grid(
            "probe_steps", int, lo=1, hi=steps - 1, allow_empty=True, increasing=True
        )
        for name, values in (("probe_steps", probes), ("the stage-II step", (STAGE_II_STEP,))):
            off = [t for t in values if t % self.record_every]
            if off:
                raise ConfigError(
                    f"record_every = {self.record_every} must divide {name} (got {off}), so "
                    "that every run is recorded there"
                )

    def run_specs(self) -> list[RunSpec]:
        """The runs: every rho of ``rho_grid`` at the recipe's sigma, then every rho of
        ``rho_grid_noisy`` at ``sigma_noisy``; seeds innermost."""
        cells = [(RECIPE_SIGMA, r) for r in self.grid("rho_grid")]
        cells += [(self.sigma_noisy, r) for r in self.grid("rho_grid_noisy", allow_empty=True)]
        model, train = ModelConfig(), TrainConfig(record_every=self.record_every)
        return [
            RunSpec(DataConfig(rho=rho, sigma=sigma, mask=self.mask), model, train, seed=seed)
            for sigma, rho in cells
            for seed in self.seeds
        ]


def plan(settings: Settings) -> list[Task]:
    """Tasks of :func:`train_probed`: the runs at the recipe's sigma probed at ``probe_steps``
    and at the end, the noisier ones at the end only; each stacked in blocks of seeds."""
    probes = settings.grid("probe_steps", int, allow_empty=True)
    specs = settings.run_specs()
    recipe = [s for s in specs if s.data.sigma == RECIPE_SIGMA]
    noisy = [s for s in specs if s.data.sigma != RECIPE_SIGMA]
    return probed_tasks(recipe, probes, settings.n_probe) + probed_tasks(
        noisy, (), settings.n_probe
    )


def joined_history(results) -> History:
    """One History of every run of :func:`plan` (all share their record steps)."""
    return History.join([History.from_arrays(r.arrays, r.meta) for r in results])


def probe_frame(results) -> pd.DataFrame:
    """The probe tables of every run of :func:`plan` (see :func:`train_probed`), stacked."""
    return pd.concat([r.table for r in results], ignore_index=True)


# ------------------------------------------------------------------ one statistic per seed
def seed_table(ratios: pd.DataFrame, probes: pd.DataFrame) -> pd.DataFrame:
    """One row per run (sigma, rho, seed), from :func:`ratio_table` and :func:`probe_frame`.

    Columns: probe_majority, probe_minority (balanced accuracy at the end), probe_gap (their
    difference, majority minus minority); best_majority, best_minority (feature side at the
    end); log_best (log of best_minority / best_majority at the end) and log_best_stage_ii
    (the same at :data:`STAGE_II_STEP`); neuron_majority, neuron_minority (neuron side at the
    end, NaN without a specialised neuron) and neurons_majority, neurons_minority (how many
    neurons are specialised to the group); align_majority, align_minority (best alignment at
    the end, a.u.).
    """
    keys = ["sigma", "rho", "seed"]
    end_probe = probes[probes.step == probes.step.max()]
    wide_probe = end_probe.pivot(index=keys, columns="group", values="probe")
    end = _wide(ratios, ratios.step.max(), ["best_ratio", "neuron_ratio", "n_neurons", "align"])
    stage = _wide(ratios, STAGE_II_STEP, ["best_ratio"])
    out = pd.DataFrame(
        {
            "probe_majority": wide_probe["majority"],
            "probe_minority": wide_probe["minority"],
            "probe_gap": wide_probe["majority"] - wide_probe["minority"],
            "best_majority": end["best_ratio", "majority"],
            "best_minority": end["best_ratio", "minority"],
            "log_best": np.log(end["best_ratio", "minority"] / end["best_ratio", "majority"]),
            "log_best_stage_ii": np.log(
                stage["best_ratio", "minority"] / stage["best_ratio", "majority"]
            ),
            "neuron_majority": end["neuron_ratio", "majority"],
            "neuron_minority": end["neuron_ratio", "minority"],
            "neurons_majority": end["n_neurons", "majority"],
            "neurons_minority": end["n_neurons", "minority"],
            "align_majority": end["align", "majority"],
            "align_minority": end["align", "minority"],
        }
    )
    return out.reset_index()


def _wide(ratios: pd.DataFrame, step: int, values: list[str]) -> pd.DataFrame:
    """``values`` of :func:`ratio_table` at the record ``step``, one row per (sigma, rho,
    seed), columns (value, group). KeyError if ``step`` was not recorded."""
    at = ratios[ratios.step == step]
    if at.empty:
        raise KeyError(f"step {step} was not recorded (records: {sorted(ratios.step.unique())})")
    return at.pivot(index=["sigma", "rho", "seed"], columns="group", values=values)


# ------------------------------------------------------------------------------ the atlas
def regimes(settings: Settings) -> list[dict]:
    """Where the chapter runs, for the atlas and the setting page: label, rho, what differs
    from the recipe, and why."""
    records = f"records every {settings.record_every} steps"
    why = "the ratio over training time; recording does not change training"
    rows = [
        {"label": "Ch3", "rho": rho, "deviation": records, "reason": why}
        for rho in settings.grid("rho_grid")
    ]
    noisy = f"σ = {settings.sigma_noisy:g}, {records}"
    why = "how more noise moves the cliff"
    return rows + [
        {"label": "Ch3", "rho": rho, "deviation": noisy, "reason": why}
        for rho in settings.grid("rho_grid_noisy", allow_empty=True)
    ]
