"""Chapter 1: the three stages of training, measured on a History.

Everything here reads a :class:`~imbcl.engine.history.History` with T records of R replicas, m neurons
and K features. Three group curves summarise a replica at each record (all in the units of the
alignment A_ij = <W_V^T w_i, M_j>, arbitrary units):

* ``majority``: the mean over majority features j of max_i |A_ij| (how well the best neuron
  for each majority feature is aligned with it);
* ``minority``: the same over minority features;
* ``noise``: the mean over neurons of the norm of the part of W_V^T w_i outside the feature
  span.

Their log-growth rates, d log(curve)/dt, are reported per 1,000 training steps. The stage
boundaries (:func:`stage_boundaries`) are read off these rates, one pair per replica.

The chapter's runs (:func:`plan`) are one task per regime and seed; :func:`seed_statistics`
turns their Histories into one row per seed, from which
:func:`imbcl.report.ch1.claim_values` reads the statistic of each registered claim.
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
from imbcl.engine.params import check_count, check_number
from imbcl.engine.settings import StudySettings
from imbcl.studies.runs import run_histories, run_tasks, summaries

#: Rates are reported per this many training steps.
RATE_UNIT = 1000
#: The three groups whose growth defines the stages, in display order.
GROUPS = ("majority", "minority", "noise")
#: Stage names, in order.
STAGES = ("I", "II", "III")


# ------------------------------------------------------------------ curves and rates
def group_curves(hist: History) -> dict[str, np.ndarray]:
    """The three group curves, each (T, R), in alignment units (see the module docstring)."""
    best = metrics.best_per_feature(np.abs(hist.align))  # (T, R, K)
    maj, mnr = metrics.group_mean(best, hist.minority)
    return {"majority": maj, "minority": mnr, "noise": hist.noise.mean(axis=-1)}


def record_spacing(steps: np.ndarray) -> int:
    """The number of training steps between consecutive records of ``steps`` (T,).

    A History records step 0, then every ``record_every`` steps, then the last step, which may
    come sooner; any other spacing (e.g. a concatenation of differently recorded runs) is
    rejected with a ConfigError, since step-based windows cannot be read off it.
    """
    gaps = np.diff(np.asarray(steps))
    if gaps.size == 0:
        raise ConfigError("the History must hold at least two records")
    every = int(gaps[0])
    if every < 1 or (gaps[:-1] != every).any() or not 0 < gaps[-1] <= every:
        raise ConfigError(
            "the History must be recorded at uniform spacing after step 0 "
            f"(got gaps {sorted(set(gaps.tolist()))})"
        )
    return every


def steps_to_records(steps: np.ndarray, span: int, name: str) -> int:
    """``span`` training steps as a whole number (>= 1) of records of ``steps`` (T,).

    The result is the number of record spacings that fit in the span, span // spacing. A History recorded more coarsely than the
    span (spacing > ``span``) cannot resolve it: ConfigError naming the record_every needed.
    """
    span = check_count(span, name)
    every = record_spacing(steps)
    if every > span:
        raise ConfigError(
            f"{name} = {span} steps is finer than the History's record spacing of {every} "
            f"steps: record the run with record_every <= {span}"
        )
    return span // every


def log_growth(steps: np.ndarray, curve: np.ndarray, window: int) -> np.ndarray:
    """(T, R) centred log-growth rate of ``curve`` (T, R) per RATE_UNIT steps.

    r(t_k) = [log c(t_{k+h}) - log c(t_{k-h})] / (t_{k+h} - t_{k-h}) * RATE_UNIT, where
    ``window`` is the half-width in training steps and h = ``window`` / record spacing records
    (:func:`steps_to_records`); the rate is NaN within h records of either end.
    """
    steps = np.asarray(steps, dtype=float)
    h = steps_to_records(steps, window, "window")
    logc = np.log(np.maximum(np.asarray(curve, dtype=float), 1e-30))
    rate = np.full(logc.shape, np.nan)
    if len(steps) > 2 * h:
        dt = (steps[2 * h :] - steps[: -2 * h])[:, None]
        rate[h:-h] = (logc[2 * h :] - logc[: -2 * h]) / dt * RATE_UNIT
    return rate


def group_rates(hist: History, window: int) -> dict[str, np.ndarray]:
    """:func:`log_growth` of each group curve (half-width ``window`` training steps), (T, R)
    per group, per RATE_UNIT steps."""
    return {g: log_growth(hist.steps, c, window) for g, c in group_curves(hist).items()}


# ------------------------------------------------------------------ stages
def alive_counts(hist: History) -> np.ndarray:
    """(T, R) number of live neurons (:func:`imbcl.engine.metrics.alive`) at each record."""
    return metrics.alive(hist.align, hist.noise).sum(axis=-1)


def _first_sustained(cond: np.ndarray, start: int, hold: int) -> int | None:
    """First index k >= ``start`` with ``cond[k : k + hold]`` all True, else None."""
    run = 0
    for k in range(start, len(cond)):
        run = run + 1 if cond[k] else 0
        if run == hold:
            return k - hold + 1
    return None


def stage_boundaries(
    hist: History,
    window: int = 4,
    stall: float = 0.1,
    silenced: float = 0.1,
    hold: int = 6,
) -> np.ndarray:
    """(R, 2) steps (t1, t2) that end stage I and stage II in each replica; NaN if not found.

    * t1 (end of stage I): the first record after the peak of the majority log-growth rate
      (:func:`log_growth`, centred over +-``window`` training steps) at which that rate stays
      below ``stall`` times its peak for ``hold`` training steps: the explosive growth of the
      majority features has stalled.
    * t2 (end of stage II): the first record after t1 at which the live-neuron count
      (:func:`alive_counts`) stays below (1 - ``silenced``) times its value at t1 for ``hold``
      training steps: the bias has started to silence neurons.

    ``window`` and ``hold`` are in training steps, so the boundaries do not depend on how
    often ``hist`` was recorded; they are converted to records with :func:`steps_to_records`
    ("for ``hold`` steps" = for hold // spacing consecutive records). A History recorded
    more coarsely than ``window`` or ``hold`` raises a ConfigError naming the record_every
    needed. Neither boundary uses the noise curve, so the noise dynamics inside each stage
    (:func:`stage_rates`) are a measurement, not a consequence of the definition.
    """
    stall = check_number(stall, "stall", lo=0, hi=1, lo_open=True, hi_open=True)
    silenced = check_number(silenced, "silenced", lo=0, hi=1, lo_open=True, hi_open=True)
    steps_to_records(hist.steps, window, "window")
    hold = steps_to_records(hist.steps, hold, "hold")
    rate = group_rates(hist, window)["majority"]
    live = alive_counts(hist)
    out = np.full((hist.n_replicas, 2), np.nan)
    for r in range(hist.n_replicas):
        if np.isnan(rate[:, r]).all():
            continue
        peak = int(np.nanargmax(rate[:, r]))
        k1 = _first_sustained(rate[:, r] < stall * rate[peak, r], peak, hold)
        if k1 is None:
            continue
        out[r, 0] = hist.steps[k1]
        k2 = _first_sustained(live[:, r] < (1 - silenced) * live[k1, r], k1 + 1, hold)
        if k2 is not None:
            out[r, 1] = hist.steps[k2]
    return out


def stage_spans(steps: np.ndarray, bounds: np.ndarray) -> list[list[tuple[float, float]]]:
    """Per replica, the (start, end) steps of stages I, II, III from ``bounds`` (R, 2)."""
    first, last = float(steps[0]), float(steps[-1])
    return [[(first, t1), (t1, t2), (t2, last)] for t1, t2 in bounds]


def net_rate(steps: np.ndarray, curve: np.ndarray, start: float, end: float) -> float:
    """Net log-growth of one replica's ``curve`` (T,) from ``start`` to ``end``, per RATE_UNIT.

    [log c(end) - log c(start)] / (end - start) * RATE_UNIT, with c read at the last record
    at or before each bound; NaN if a bound is NaN or the stage holds a single record.
    """
    if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
        return float("nan")
    k0 = int(np.searchsorted(steps, start, side="right")) - 1
    k1 = int(np.searchsorted(steps, end, side="right")) - 1
    if k1 <= k0:
        return float("nan")
    c0, c1 = max(float(curve[k0]), 1e-30), max(float(curve[k1]), 1e-30)
    return float(np.log(c1 / c0) / (steps[k1] - steps[k0]) * RATE_UNIT)


def stage_rates(hist: History, bounds: np.ndarray) -> pd.DataFrame:
    """Log-growth rate of each group in each stage of each replica (per RATE_UNIT steps).

    Long format: columns seed, stage, group, rate. Groups are the three of
    :func:`group_curves` plus ``noise (survivors)``, the noise of the neurons alive at the end
    (:func:`survivor_noise`). Rates are net log-growth rates over the stage (:func:`net_rate`).
    """
    curves = group_curves(hist) | {"noise (survivors)": survivor_noise(hist)}
    rows = []
    for r, spans in enumerate(stage_spans(hist.steps, bounds)):
        for stage, (a, b) in zip(STAGES, spans, strict=True):
            for group, c in curves.items():
                rate = net_rate(hist.steps, c[:, r], a, b)
                rows.append((hist.specs[r].seed, stage, group, rate))
    return pd.DataFrame(rows, columns=["seed", "stage", "group", "rate"])


def rate_table(rates: pd.DataFrame) -> pd.DataFrame:
    """Wide table from :func:`stage_rates`: one row per seed, one column per (stage, group)."""
    wide = rates.pivot_table(index="seed", columns=["stage", "group"], values="rate")
    return wide.reindex(columns=pd.MultiIndex.from_product([STAGES, list(rates.group.unique())]))


def boundary_table(hist: History, bounds: np.ndarray) -> pd.DataFrame:
    """Per seed: t1, t2 (steps) and the group onsets (median onset step over its features)."""
    on = group_onsets(hist)
    return pd.DataFrame(
        {
            "seed": [s.seed for s in hist.specs],
            "end of I (t1)": bounds[:, 0],
            "end of II (t2)": bounds[:, 1],
            "majority onset": np.median(on["majority"], axis=1),
            "minority onset": np.median(on["minority"], axis=1),
        }
    ).set_index("seed")


# ------------------------------------------------------------------ onsets and end points
def group_onsets(hist: History, threshold: float = metrics.ONSET) -> dict[str, np.ndarray]:
    """Onset steps (R, K_group) per group (:func:`imbcl.engine.metrics.onset_steps`); NaN for
    a feature that never reaches the threshold."""
    on = metrics.onset_steps(hist.steps, hist.align, threshold)
    return {"majority": on[:, ~hist.minority], "minority": on[:, hist.minority]}


def onset_gap(hist: History, threshold: float = metrics.ONSET) -> np.ndarray:
    """(R,) earliest minority onset minus latest majority onset (training steps).

    Positive when every majority feature is picked up before any minority feature. NaN in a
    replica where some majority feature or every minority feature never reaches the onset:
    the order is then undefined, not "majority first".
    """
    on = group_onsets(hist, threshold)
    first = np.where(np.isnan(on["minority"]), np.inf, on["minority"]).min(axis=1)
    first_minority = np.where(np.isinf(first), np.nan, first)
    return first_minority - on["majority"].max(axis=1)


def survivor_noise(hist: History) -> np.ndarray:
    """(T, R) mean noise norm of the neurons alive at the last record, at every record.

    One fixed set of neurons per replica, so its changes over a stage are changes of those
    neurons' weights, not of which neurons are counted.
    """
    live = metrics.alive(hist.align[-1], hist.noise[-1])  # (R, m)
    return (hist.noise * live).sum(-1) / np.maximum(live.sum(-1), 1)


def final_levels(hist: History, last: int) -> dict[str, np.ndarray]:
    """(R,) mean of each group curve over the records in the last ``last`` steps."""
    last = check_count(last, "last")
    sel = hist.steps >= hist.steps[-1] - last
    return {g: c[sel].mean(axis=0) for g, c in group_curves(hist).items()}


# ------------------------------------------------------------------ figures' data
def neuron_order(align: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(m,) neuron order for a heat map of one replica: by owner feature, then by strength.

    ``align`` (m, K), ``noise`` (m,); neurons with no owner (-1: silent or noise-dominated)
    come last. Within a feature, the most aligned neuron comes first.
    """
    own = metrics.owners(align, noise)
    key_owner = np.where(own < 0, align.shape[1], own)
    strength = np.abs(align).max(axis=-1)
    return np.lexsort((-strength, key_owner))


def heatmap_panels(hist: History, replica: int, steps) -> tuple[np.ndarray, np.ndarray]:
    """|A| at the records of ``steps`` for one replica, rows in one common order.

    Returns ``panels`` (len(steps), m, K) and ``order`` (m,): neurons sorted by their owner
    at the last of ``steps`` (:func:`neuron_order`), so the panels are comparable.
    """
    idx = [hist.at(int(s)) for s in steps]
    last = idx[-1]
    order = neuron_order(hist.align[last, replica], hist.noise[last, replica])
    panels = np.abs(hist.align[idx, replica][:, order])
    return panels, order


# ------------------------------------------------------------------ the chapter's runs
@dataclass(frozen=True)
class Settings(StudySettings):
    """Chapter 1: two regimes of the book's recipe, recorded finely, plus trained attention."""

    PROFILES: ClassVar = {
        "full": {"n_seeds": 10, "attention_seeds": 4},
        "small": {"n_seeds": 6, "attention_seeds": 0},
    }

    rho: float = field(4.0, lo=1, doc="imbalance ratio of the main regime (minority learnable)")
    rho_past: float = field(16.0, lo=1, doc="imbalance ratio past the learnability cliff")
    mask: str = field("token", choices=MASKS, doc="masking granularity of the two views")
    record_every: int = field(2, lo=1, doc="steps between records (stage I lasts ~10 steps)")
    window: int = field(4, lo=1, doc="half-width of the majority growth rate (steps)")
    stall: float = field(0.1, lo=0, hi=1, lo_open=True, hi_open=True, doc="stage I ends below")
    silenced: float = field(0.1, lo=0, hi=1, lo_open=True, hi_open=True, doc="stage II ends at")
    hold: int = field(6, lo=1, doc="steps a stage boundary must hold for")
    final_window: int = field(100, lo=1, doc="final values average the last this-many steps")
    attention_seeds: int = field(4, lo=0, doc="seeds rerun with trained attention (0: none)")
    heatmap_seed: int = field(0, lo=0, doc="index of the seed shown in the heat maps")

    def _check_joint(self) -> None:
        if self.rho_past <= self.rho:
            raise ConfigError(f"rho_past must be > rho = {self.rho:g} (got {self.rho_past:g})")
        if min(self.window, self.hold) < self.record_every:
            raise ConfigError(
                f"window and hold must be >= record_every = {self.record_every} steps "
                f"(got window={self.window}, hold={self.hold})"
            )
        if self.heatmap_seed >= self.n_seeds:
            raise ConfigError(f"heatmap_seed must be < n_seeds = {self.n_seeds}")
        if self.attention_seeds > self.n_seeds:
            raise ConfigError(f"attention_seeds must be <= n_seeds = {self.n_seeds}")
        steps = TrainConfig().steps
        if self.final_window >= steps:
            raise ConfigError(f"final_window must be < the {steps} training steps")


#: The chapter's groups of runs: the main regime, past the cliff, the main regime with
#: trained attention (same seeds, so paired with the main regime).
REGIMES = ("main", "past", "attention")


def regime_specs(settings: Settings) -> dict[str, list[RunSpec]]:
    """The RunSpecs of each regime: the book's recipe at ``rho`` / ``rho_past``."""
    train = TrainConfig(record_every=settings.record_every)

    def specs(rho, seeds, attention=False):
        data, model = (
            DataConfig(rho=rho, mask=settings.mask),
            ModelConfig(train_attention=attention),
        )
        return [RunSpec(data, model, train, seed=s) for s in seeds]

    seeds = settings.seeds
    return {
        "main": specs(settings.rho, seeds),
        "past": specs(settings.rho_past, seeds),
        "attention": specs(settings.rho, seeds[: settings.attention_seeds], attention=True),
    }


def plan(settings: Settings) -> list:
    """Tasks of :func:`imbcl.studies.runs.train_runs`: each regime's seeds, stacked in blocks."""
    return [
        task
        for name, specs in regime_specs(settings).items()
        for task in run_tasks(specs, f"ch1 {name}")
    ]


def regime_histories(settings: Settings, results) -> dict[str, History]:
    """{regime: History of its seeds} from the results of :func:`plan` (regimes without runs
    left out)."""
    return {
        name: History.join(run_histories(results, specs))
        for name, specs in regime_specs(settings).items()
        if specs
    }


def run_summaries(results) -> pd.DataFrame:
    """One row per run: seed, rho, final alignments, attention entropy (see ``train_run``)."""
    return summaries(results)


# ------------------------------------------------------------------ one statistic per seed
def seed_statistics(hist: History, settings: Settings) -> pd.DataFrame:
    """One row per seed of one regime: stage boundaries t1, t2 (steps; NaN if not found),
    the onset gap (:func:`onset_gap`, steps), the stage rates of the mean noise norm
    (``noise_I``, ``noise_II``, ``noise_III``) and of the survivors' noise in stage III
    (``survivors_III``), per 1,000 steps, the final group levels and
    ``log_ratio`` = log(final minority / final majority)."""
    bounds = stage_boundaries(
        hist, settings.window, settings.stall, settings.silenced, settings.hold
    )
    rates = stage_rates(hist, bounds).pivot_table(
        index="seed", columns=["group", "stage"], values="rate", dropna=False
    )
    seeds = [s.seed for s in hist.specs]
    fin = final_levels(hist, settings.final_window)
    return pd.DataFrame(
        {
            "seed": seeds,
            "t1": bounds[:, 0],
            "t2": bounds[:, 1],
            "onset_gap": onset_gap(hist),
            "noise_I": rates[("noise", "I")].reindex(seeds).to_numpy(),
            "noise_II": rates[("noise", "II")].reindex(seeds).to_numpy(),
            "noise_III": rates[("noise", "III")].reindex(seeds).to_numpy(),
            "survivors_III": rates[("noise (survivors)", "III")].reindex(seeds).to_numpy(),
            "final_majority": fin["majority"],
            "final_minority": fin["minority"],
            "log_ratio": np.log(fin["minority"] / fin["majority"]),
        }
    )


def regimes(settings: Settings) -> list[dict]:
    """Where the chapter runs, for the atlas and the setting page: label, rho, what differs
    from the recipe, and why."""
    records = f"records every {settings.record_every} steps"
    why = "stage I lasts about ten steps; recording does not change training"
    rows = [
        {"label": "Ch1", "rho": settings.rho, "deviation": records, "reason": why},
        {"label": "Ch1", "rho": settings.rho_past, "deviation": records, "reason": why},
    ]
    if settings.attention_seeds:
        why = "what a trained attention layer changes (the paper's encoder trains it)"
        rows.append(
            {"label": "Ch1", "rho": settings.rho, "deviation": "trained attention", "reason": why}
        )
    return rows
