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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbcl.engine import metrics
from imbcl.engine.config import ConfigError
from imbcl.engine.history import History
from imbcl.engine.params import check_count, check_number

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


def live_noise(hist: History) -> np.ndarray:
    """(T, R) mean noise norm over the live neurons only (alignment units)."""
    live = metrics.alive(hist.align, hist.noise)
    return (hist.noise * live).sum(-1) / np.maximum(live.sum(-1), 1)


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
    :func:`group_curves` plus ``noise (live)``, the noise of live neurons only
    (:func:`live_noise`). Rates are net log-growth rates over the stage (:func:`net_rate`).
    """
    curves = group_curves(hist) | {"noise (live)": live_noise(hist)}
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
    """Onset steps (R, K_group) per group (:func:`imbcl.engine.metrics.onset_steps`); never = +inf."""
    on = metrics.onset_steps(hist.steps, hist.align, threshold)
    on = np.where(np.isnan(on), np.inf, on)
    return {"majority": on[:, ~hist.minority], "minority": on[:, hist.minority]}


def onset_order(hist: History, threshold: float = metrics.ONSET) -> np.ndarray:
    """(R,) bool: every majority feature's onset precedes every minority feature's onset."""
    on = group_onsets(hist, threshold)
    return on["majority"].max(axis=1) < on["minority"].min(axis=1)


def final_levels(hist: History, last: int) -> dict[str, np.ndarray]:
    """(R,) mean of each group curve over the records in the last ``last`` steps."""
    last = check_count(last, "last")
    sel = hist.steps >= hist.steps[-1] - last
    return {g: c[sel].mean(axis=0) for g, c in group_curves(hist).items()}


# ------------------------------------------------------------------ figures' data
def kappa_curve(steps: np.ndarray, kappa_max: float, ramp_steps: int) -> np.ndarray:
    """(T,) the ramp kappa(t) = kappa_max * min(1, t / ramp_steps) at ``steps``."""
    return kappa_max * np.minimum(1.0, np.asarray(steps, dtype=float) / ramp_steps)


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


def regime_map(hist: History, last: int) -> pd.DataFrame:
    """One row per replica: rho, seed, final group levels (:func:`final_levels`), their ratio
    minority / majority, and the median minority onset step (inf if never)."""
    fin = final_levels(hist, last)
    on = group_onsets(hist)["minority"]
    return pd.DataFrame(
        {
            "rho": [s.data.rho for s in hist.specs],
            "seed": [s.seed for s in hist.specs],
            "final majority": fin["majority"],
            "final minority": fin["minority"],
            "minority / majority": fin["minority"] / fin["majority"],
            "minority onset": np.median(on, axis=1),
        }
    )


def shade_stages(ax, bounds: np.ndarray, last_step: float) -> None:
    """Shade stages I, II, III on ``ax`` from per-replica ``bounds`` (R, 2).

    Spans use the mean boundaries over replicas; each replica's own boundaries are drawn as
    thin dashed lines. Stage names are written at the top of the axes.
    """
    t1, t2 = np.nanmean(bounds, axis=0)
    shades = ((0.0, t1, "0.93"), (t1, t2, "white"), (t2, last_step, "0.86"))
    for (a, b, colour), name in zip(shades, STAGES, strict=True):
        ax.axvspan(a, b, color=colour, zorder=0, lw=0)
        ax.text(
            np.sqrt(max(a, 1.0) * b) if ax.get_xscale() != "linear" else (a + b) / 2,
            1.0,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    for t in bounds[np.isfinite(bounds)]:
        ax.axvline(t, color="0.5", lw=0.6, ls="--", zorder=1)
