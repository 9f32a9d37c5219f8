"""Where the book's CPU time goes: chapter workloads by phase, the linear probe, the step.

Run from the repository root with the project's environment (``--help`` lists the options)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --quick           # book workload
    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --probe --quick   # probe: sklearn/torch
    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --step --quick    # one step, by part

(``PYTHONPATH=.`` makes ``import imbcl`` find this checkout, not the editable install's.)

Modes:

1. book workload (default): for each chapter, a representative workload with the chapter's
   shapes, steps, record spacing, probes and ICA (taken from the notebooks' parameters
   cells), run the way the chapter runs it, in CPU-seconds (``time.process_time``) per seed,
   split by phase: training-step compute, training data generation, probes, ICA, recording
   and the rest (set-up, the training loop, analysis). Phases are timed by wrapping their
   entry points (``Replicas._fused_step``, ``_joined_batch``, ``_record``,
   ``metrics.probe_accuracy``, ``pruning_study.estimated_bases``, and Chapter 5's
   ``simclr.train``, ``_draw_step``, ``apply_augment``, ``to_tokens``, ``evaluate``); a
   nested entry point counts for itself only, except inside probes, ICA and recording, which
   keep what they call. ``--cprofile N`` also runs each workload under cProfile and prints its
   N most expensive functions. Beside the split: the fixed per-step cost of the engine (the
   same code at a tiny shape, where it is all Python, dispatch and allocation), the achieved
   GFLOP/s of training (analytic FLOPs of ``bench_train.step_flops`` over training-step and
   data CPU-seconds), its fraction of the measured matmul peak, and its ratio to the same
   fraction for the paper-sized step measured in the same run. ``--probe-backend torch``
   replaces the scikit-learn probe by :mod:`imbcl.engine.probe` (the "after" of the probe phase).
2. ``--probe``: ``metrics.probe_accuracy``'s scikit-learn loop (one LogisticRegression per
   replica and feature) against :func:`imbcl.engine.probe.fit_logistic` on the same features of
   trained replicas, in CPU-seconds, with the balanced accuracies' agreement and each side's
   distance to a tightly solved reference.
3. ``--step``: one fused training step at the book's shapes, timed part by part, and the
   alternatives to the engine's choices measured on the same shapes.

The load average is printed at the start and the end: on a shared machine compare ratios
measured in the same run, not absolute numbers across runs.
"""

from __future__ import annotations  # noqa: I001  (imbcl is imported before torch, see below)

import argparse
import contextlib
import cProfile
import functools
import io
import platform
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import imbcl  # noqa: F401  (first: sets the OpenMP and thread policy before torch loads)
import numpy as np
import torch

from bench_train import SHAPES, Shape, load, matmul_peak, total_flops
from imbcl import DataConfig, ModelConfig, Replicas, RunSpec, TrainConfig
from imbcl import capacity, metrics, stages
from imbcl import data as D
from imbcl import images as im
from imbcl import model as M
from imbcl import pruning_study as ps
from imbcl import separation as sep
from imbcl import simclr as sc
from imbcl.engine.probe import balanced_accuracy, fit_logistic
from imbcl.train import info_nce_grads

PHASES = ("train step", "data gen", "probes", "ICA", "recording", "other")
#: Phases that keep the time of the entry points they call (a probe draws its own data).
SEALED = ("probes", "ICA", "recording")


# ------------------------------------------------------------------------------- phases
class PhaseClock:
    """Exclusive CPU seconds per phase, from wrapped entry points (see the module docstring)."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.stack: list[str] = []
        self.mark = 0.0

    def _switch(self, push: str | None) -> None:
        now = time.process_time()
        if self.stack:
            self.cpu[self.stack[-1]] += now - self.mark
        if push is None:
            self.stack.pop()
        else:
            self.stack.append(push)
        self.mark = now

    def wrap(self, fn: Callable, phase: str) -> Callable:
        @functools.wraps(fn)
        def timed_call(*args, **kwargs):
            if self.stack and self.stack[-1] in SEALED:
                return fn(*args, **kwargs)
            self._switch(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch(None)

        return timed_call


ENTRY_POINTS = (
    (Replicas, "_fused_step", "train step"),
    (Replicas, "_sgd_step", "train step"),
    (Replicas, "_joined_batch", "data gen"),
    (Replicas, "_batch", "data gen"),
    (Replicas, "_record", "recording"),
    (metrics, "probe_accuracy", "probes"),
    (ps, "estimated_bases", "ICA"),
    (sc, "train", "train step"),
    (sc, "_draw_step", "data gen"),
    (im, "apply_augment", "data gen"),
    (im, "to_tokens", "data gen"),
    (sc, "evaluate", "probes"),
)


@contextlib.contextmanager
def instrumented(clock: PhaseClock, probe_backend: str):
    """Every entry point wrapped by ``clock``; the probe replaced when the backend is torch."""
    with contextlib.ExitStack() as stack:
        for owner, name, phase in ENTRY_POINTS:
            fn = getattr(owner, name)
            if (owner, name) == (metrics, "probe_accuracy") and probe_backend == "torch":
                fn = probe_accuracy_torch
            stack.enter_context(mock.patch.object(owner, name, clock.wrap(fn, phase)))
        yield


def probe_accuracy_torch(reps, n_train=2000, n_test=2000, q=None, c=1.0, replicas=None):
    """:func:`imbcl.metrics.probe_accuracy` (same data, objective and score) on
    :func:`imbcl.engine.probe.fit_logistic`: all replicas and features in one batched fit."""
    q = reps.specs[0].data.q if q is None else q
    idx = reps.indices(replicas)
    x, z = reps.sample(n_train + n_test, probs=torch.full((reps.k,), q), replicas=idx)
    feats, y = reps.encode(x, replicas=idx), (z + 1).long()  # z in {-1, 0, 1} -> class
    fit = fit_logistic(feats[:, :n_train], y[:, :n_train], 3, class_weight="balanced", C=c)
    return balanced_accuracy(fit.predict(feats[:, n_train:]), y[:, n_train:], 3).cpu().numpy()


# ----------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    """One chapter's representative workload over ``seeds`` seeds: ``run()`` returns the
    analytic FLOPs of its engine training steps (0 where not counted) and model-steps."""

    name: str
    text: str
    seeds: int
    run: Callable[[], tuple[float, int]]
    engine: bool = True  # trained by imbcl.Replicas (the fixed per-step cost applies)


def _flops(spec: RunSpec) -> float:
    d, m, t = spec.data, spec.model, spec.train
    return total_flops(Shape("", t.batch, d.seq_len, d.d, m.m))


def ch1(seeds: int) -> Workload:
    model = ModelConfig(kappa_max=3.0, ramp_steps=1000)
    train = TrainConfig(steps=2000, batch=256, record_every=2)
    specs = [RunSpec(DataConfig(rho=10.0), model, train, seed=s) for s in range(seeds)]

    def run():
        hist, _ = imbcl.train(specs, progress=False)
        stages.stage_boundaries(hist)
        return _flops(specs[0]) * 2000 * seeds, 2000 * seeds

    return Workload("ch1", "batch 256, 2000 steps, record every 2", seeds, run)


def ch2(seeds: int, widths: tuple[int, ...]) -> Workload:
    train = TrainConfig(steps=1000, batch=64, lr=0.5, weight_decay=0.05, record_every=1000)
    data = DataConfig(rho=16.0)

    def run():
        flops, n = 0.0, 0
        for m in widths:
            model = capacity.ramped(ModelConfig(m=m), train.steps, 0.5)
            specs = [RunSpec(data, model, train, seed=s) for s in range(seeds)]
            reps = Replicas(specs, chunk=capacity.stack_chunk(specs[0], seeds))
            capacity.final_measurements(reps.run(progress=False))
            flops, n = flops + _flops(specs[0]) * 1000 * seeds, n + 1000 * seeds
        return flops, n

    text = f"batch 64, 1000 steps, m = {','.join(map(str, widths))} (stacked as run_sweep)"
    return Workload("ch2", text, seeds, run)


def ch3(seeds: int, n_probe: int) -> Workload:
    model = ModelConfig(m=64, ramp_steps=1000)
    train = TrainConfig(steps=1500, batch=128, record_every=25)
    rhos = (1.0, 8.0, 32.0)
    specs = [RunSpec(DataConfig(rho=rhos[s % 3]), model, train, seed=s) for s in range(seeds)]

    def run():
        sep.train_with_probes(specs, [200, 700], n_probe)
        return _flops(specs[0]) * 1500 * seeds, 1500 * seeds

    text = f"batch 128, 1500 steps, m 64, probes at 200/700/1500 (n = {n_probe})"
    return Workload("ch3", text, seeds, run)


def ch4(seeds: int, n_settings: int, n_probe: int) -> Workload:
    model = ModelConfig(ramp_steps=300)
    train = TrainConfig(steps=600, batch=128, weight_decay=0.05, record_every=10)
    data = DataConfig(rho=6.0)
    specs = [RunSpec(data, model, train, seed=s) for s in range(seeds)]
    pilot = [RunSpec(data, model, train.replace(record_every=2), seed=s) for s in range(seeds)]
    settings = ps.grid((0.3, 0.5, 0.75, 0.9, 0.97), ps.BASES, ps.MODES)
    settings += [ps.Setting(0.75, "feature", m, "neuron") for m in ps.MODES]
    settings += [ps.Setting(0.75, "feature", m, keep_mask=False) for m in ps.MODES]
    settings = settings[:: max(1, len(settings) // n_settings)][:n_settings]
    t1 = 130  # stage II of the pilot at rho = 6 (the notebook's T1 for its main cell)
    upd = [ps.Setting(0.75, b, m) for b in ("coordinate", "feature") for m in ps.MODES]

    def run():
        flops = _flops(specs[0])
        imbcl.train(pilot, progress=False)
        bases = ps.estimated_bases(Replicas(specs), 1000)
        ps.run_cell(specs, t1, 600 - t1, settings, n_probe, bases=bases)
        ps.update_ratio_study(specs, t1, upd, 20)
        n = seeds * (600 + t1 + (600 - t1) * (len(settings) + 1) + t1 + 20 * (len(upd) + 1))
        return flops * n, n

    text = (
        f"batch 128: pilot 600 steps (record every 2), ICA, main cell T1 = {t1} + "
        f"{len(settings) + 1} branches x {600 - t1} steps with probes (n = {n_probe}), "
        f"update study {len(upd) + 1} x 20 single steps"
    )
    return Workload("ch4", text, seeds, run)


def ch5(seeds: int, steps: int) -> Workload:
    data = sc.ImageDataConfig(dataset="digits", rho=50.0, n_draws=10)
    cfg = sc.SimCLRConfig(d=16, m=32, proj=32, steps=steps, batch=128, lr=3e-3, tau=0.2,
                          weight_decay=1e-4, warmup=0.3, sdclr_every=50, prune="W")  # fmt: skip
    methods = sc.make_methods("0.3,0.5,0.7,0.9", "0.7", "0.5,0.9")
    sets = sc.load(data)

    def run():
        sc.evaluate(sc.build(data, cfg, methods[:1], list(range(seeds)), sets))  # untrained
        sc.evaluate(sc.train(sc.build(data, cfg, methods, list(range(seeds)), sets)))
        return 0.0, steps * seeds * len(methods)

    text = f"digits, {len(methods)} methods stacked, batch 128, {steps} steps, probes"
    return Workload("ch5", text, seeds, run, engine=False)


# ------------------------------------------------------------------------------ measuring
@dataclass
class Measured:
    """Per-phase CPU seconds of one workload (all its seeds) and its totals."""

    cpu: dict[str, float]
    total: float
    flops: float
    model_steps: int
    top: str = ""


def measure(work: Workload, probe_backend: str, cprofile_top: int) -> Measured:
    """Run ``work`` once with the phase clock (and under cProfile if asked)."""
    clock = PhaseClock()
    prof = cProfile.Profile(time.process_time) if cprofile_top else None
    with instrumented(clock, probe_backend), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning etc.: not what is measured here
        start = time.process_time()
        if prof:
            prof.enable()
        flops, steps = work.run()
        if prof:
            prof.disable()
        total = time.process_time() - start
    cpu = dict(clock.cpu)
    cpu["other"] = total - sum(v for k, v in cpu.items() if k != "other")
    top = ""
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(cprofile_top)
        top = out.getvalue()
    return Measured(cpu, total, flops, steps, top)


def fixed_step_cost(steps: int) -> float:
    """CPU seconds per fused step (training step + data generation) at a tiny shape
    (d = 8, K = 2, batch 4, m = 2): the per-step cost that does not scale with the shape."""
    data = DataConfig(d=8, k_maj=1, k_min=1, n_corr=0)
    spec = RunSpec(data, ModelConfig(m=2), TrainConfig(batch=4, record_every=10**6))
    reps = Replicas([spec])
    reps.run(20, progress=False)
    start = time.process_time()
    reps.run(steps, progress=False)
    return (time.process_time() - start) / steps


def paper_efficiency(steps: int) -> float:
    """GFLOP/s per CPU-second of training step + data generation of the paper-sized step."""
    s = SHAPES["paper"]
    spec = RunSpec(DataConfig(d=s.d, seq_len=s.seq_len), ModelConfig(m=s.m),
                   TrainConfig(batch=s.batch, lr=0.05, record_every=10))  # fmt: skip
    reps = Replicas([spec])
    reps.run(20, progress=False)
    clock = PhaseClock()
    with instrumented(clock, "sklearn"):
        reps.run(steps, progress=False)
    return total_flops(s) * steps / (clock.cpu["train step"] + clock.cpu["data gen"]) / 1e9


def first_optimizer() -> float:
    """CPU seconds of the process's first torch.optim optimizer (AdamW, as Chapter 5), built
    and stepped once: its constructor imports torch._dynamo."""
    start = time.process_time()
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.AdamW([p])
    p.sum().backward()
    opt.step()
    return time.process_time() - start


def workloads(args) -> list[Workload]:
    q, s = args.quick, args.seeds
    table = {
        "ch1": lambda: ch1(s),
        "ch2": lambda: ch2(s, (8, 64, 256) if q else (8, 16, 32, 64, 128, 256)),
        "ch3": lambda: ch3(s, 800),
        "ch4": lambda: ch4(s, 4 if q else 34, 500),
        "ch5": lambda: ch5(10, 100 if q else 300),
    }
    return [table[name]() for name in args.chapters]


def book_workload(args) -> None:
    print(f"\n=== book workload: CPU-s per seed by phase (probe backend: {args.probe_backend})")
    optimizer = first_optimizer()
    _, cpu = matmul_peak(torch.device("cpu"), args.peak_size, 3, None)
    peak = statistics.median(cpu)
    paper = paper_efficiency(args.paper_steps)
    fixed = fixed_step_cost(args.paper_steps)
    print(f"first torch.optim optimizer of the process (imports torch._dynamo): {optimizer:.2f} "
          "CPU-s, once per process (Chapter 5's kernel)")  # fmt: skip
    print(f"matmul peak (fp32 mm {args.peak_size}^2, 1 thread): {peak:.1f} GFLOP/s per CPU-s")
    print(f"paper-sized step (batch 256, L 8, d = m = 64), {args.paper_steps} steps: "
          f"{paper:.1f} GFLOP/s per CPU-s = {100 * paper / peak:.0f} % of peak")  # fmt: skip
    print(f"fixed cost per fused step (tiny shape): {1e6 * fixed:.0f} us")
    head = f"{'':4}{'seeds':>6}{'model-st':>9}" + "".join(f"{p:>11}" for p in PHASES)
    print(head + f"{'total':>9}{'fixed/st':>9}{'GFLOP/s':>8}{'%peak':>6}{'/paper':>7}")
    for work in workloads(args):
        got = measure(work, args.probe_backend, args.cprofile)
        per = {k: v / work.seeds for k, v in got.cpu.items()}
        train_cpu = got.cpu["train step"] + got.cpu["data gen"]
        line = f"{work.name:<4}{work.seeds:>6}{got.model_steps // work.seeds:>9}"
        line += "".join(f"{per[p]:>11.2f}" for p in PHASES) + f"{got.total / work.seeds:>9.2f}"
        if work.engine and train_cpu > 0:
            gf = got.flops / train_cpu / 1e9
            fixed_s = fixed * got.model_steps / work.seeds
            line += f"{fixed_s:>9.2f}{gf:>8.1f}{100 * gf / peak:>5.0f}%{gf / paper:>7.2f}"
        print(line + f"   {work.text}", flush=True)
        if got.top:
            print(got.top)
    print("fixed/st: fixed cost per step x model-steps (part of train step + data gen)")


# ------------------------------------------------------------------------------- the probe
def probe_features(n_problems: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (P, 2n, 64) and codes + 1 (P, 2n, 16) of trained replicas (Chapter 4's model
    at rho = 6, 600 steps): 4 replicas, each sampled from n_problems / 4 probe streams."""
    specs = [RunSpec(DataConfig(rho=6.0), ModelConfig(ramp_steps=300),
                     TrainConfig(steps=600, batch=128), seed=s) for s in range(4)]  # fmt: skip
    reps = _probe_replicas(tuple(specs))
    xs, zs = [], []
    for k in range(-(-n_problems // 4)):
        probs = torch.full((reps.k,), specs[0].data.q)
        x, z = reps.sample(2 * n, stream=D.STREAM_PROBE + 100 + k, probs=probs)
        xs.append(reps.encode(x))
        zs.append(z + 1)
    return torch.cat(xs)[:n_problems], torch.cat(zs)[:n_problems].long()


@functools.cache
def _probe_replicas(specs: tuple[RunSpec, ...]) -> Replicas:
    reps = Replicas(list(specs))
    reps.run(progress=False)
    return reps


def sklearn_probe(feats: np.ndarray, z: np.ndarray, n: int) -> np.ndarray:
    """metrics.probe_accuracy's loop: (P, K) balanced accuracies, train on the first n."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    out = np.zeros(z.shape[::2])
    for r in range(feats.shape[0]):
        scaler = StandardScaler().fit(feats[r, :n])
        tr, te = scaler.transform(feats[r, :n]), scaler.transform(feats[r, n:])
        for j in range(z.shape[2]):
            clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500)
            clf.fit(tr, z[r, :n, j])
            out[r, j] = balanced_accuracy_score(z[r, n:, j], clf.predict(te))
    return out


def torch_probe(feats: torch.Tensor, y: torch.Tensor, n: int, **kw) -> np.ndarray:
    fit = fit_logistic(feats[:, :n], y[:, :n], 3, class_weight="balanced", **kw)
    return balanced_accuracy(fit.predict(feats[:, n:]), y[:, n:], 3).numpy()


def probe_table(args) -> None:
    print("\n=== probe: K = 16 features, m = 64, class-balanced, C = 1; n_train = n_test = n")
    print(f"{'R':>3}{'n':>6}{'sklearn CPU-s':>15}{'torch CPU-s':>13}{'speed-up':>9}"
          f"{'  |d bacc| torch-sklearn: max  mean  equal':>44}"
          f"{'  |d| to exact: sklearn torch':>30}")  # fmt: skip
    for r in args.probe_replicas:
        for n in args.probe_n:
            feats, y = probe_features(r, n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.process_time()
                ref = sklearn_probe(feats.numpy(), y.numpy(), n)
                t_sk = time.process_time() - start
                start = time.process_time()
                ours = torch_probe(feats, y, n)
                t_torch = time.process_time() - start
                exact = torch_probe(feats, y, n, tol=1e-8, max_iter=3000)
            d = np.abs(ours - ref)
            print(f"{r:>3}{n:>6}{t_sk:>15.2f}{t_torch:>13.2f}{t_sk / t_torch:>8.1f}x"
                  f"{d.max():>22.4f}{d.mean():>8.4f}{(d < 1e-12).mean():>7.0%}"
                  f"{np.abs(ref - exact).max():>17.4f}{np.abs(ours - exact).max():>7.4f}",
                  flush=True)  # fmt: skip
    print(
        "exact: imbcl.engine.probe at tol 1e-8; equal: fraction of (replica, feature) problems "
        "whose balanced accuracies are identical"
    )


# -------------------------------------------------------------------------------- the step
STEP_SHAPES = ((64, 8), (64, 64), (128, 64), (256, 64), (64, 256), (128, 256))
ENGINE_ROW = "engine step, R = 1 (Replicas.run)"
STEP_PARTS = ("sample_codes", "sample_tokens", "mask_views", "join views", "token mix",
              "bias (kappa, V = W W_V)", "neurons", "InfoNCE grads", "weight grad", "update")  # fmt: skip


def step_spec(batch: int, m: int, seed: int = 0) -> RunSpec:
    """The book's step at (batch, m): L = 4, d = 64, K = 16, the default data model and ramp."""
    train = TrainConfig(batch=batch, lr=0.05, record_every=10**6)
    return RunSpec(DataConfig(), ModelConfig(m=m), train, seed=seed)


def interleaved(fns: dict[str, Callable[[], object]], inner: int, reps: int) -> dict[str, float]:
    """CPU microseconds per call of each fn: median over ``reps`` rounds of ``inner`` calls,
    the fns interleaved round by round (a load change hits all alike), after a warm-up."""
    for fn in fns.values():
        for _ in range(inner // 4 + 1):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            start = time.process_time()
            for _ in range(inner):
                fn()
            times[k].append((time.process_time() - start) / inner * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


class Laps:
    """CPU seconds accumulated per part between successive ``lap`` calls (~1 us per call)."""

    def __init__(self, parts) -> None:
        self.cpu = dict.fromkeys(parts, 0.0)
        self.mark = time.process_time()

    def lap(self, part: str) -> None:
        now = time.process_time()
        self.cpu[part] += now - self.mark
        self.mark = now


@torch.no_grad()
def step_parts(batch: int, m: int, steps: int) -> dict[str, float]:
    """CPU microseconds per step of each part of ``Replicas._fused_step`` (one replica, the
    engine's functions called in its order), plus one ``_record`` call."""
    spec = step_spec(batch, m)
    reps = Replicas([spec])
    reps.run(20, progress=False)
    cfg, dic, g, sl, n = spec.data, reps.dictionaries[0], reps.data_gens[0], slice(0, 1), batch
    p = {k: v.clone() for k, v in reps.params.items()}
    form = M.attention_form(p["WQ"], p["WK"])
    c, ws, laps = M.scalar_form(form), M.Workspace(), Laps(STEP_PARTS)
    for t in range(steps):
        laps.lap("update")  # (the loop itself counts with the update)
        z = D.sample_codes(cfg, n, g)
        laps.lap("sample_codes")
        x = D.sample_tokens(cfg, dic, z, g)
        laps.lap("sample_tokens")
        views = D.mask_views(x, g)
        laps.lap("mask_views")
        joined = ws.get("x", (1, 2 * n, *x.shape[1:]), x)
        torch.cat(views, out=joined[0])
        laps.lap("join views")
        hx = M.token_mix(joined, form, c, ws)
        laps.lap("token mix")
        v = M.effective_weights(p["W"], p["WV"])
        b = M.bias_from_effective(reps.kappa(t)[sl], v, reps.sigma[sl], reps.d)
        laps.lap("bias (kappa, V = W W_V)")
        f, active = M.neurons_with_mask(hx, v, b, ws)
        laps.lap("neurons")
        _, df1, df2 = info_nce_grads(f[:, :n], f[:, n:], reps.tau[sl])
        laps.lap("InfoNCE grads")
        dv = M.neuron_weight_grad(hx, active, torch.cat([df1, df2], dim=1))
        laps.lap("weight grad")
        grad = dv @ p["WV"].transpose(1, 2)
        grad.add_(p["W"] * reps.weight_decay[sl, None, None])
        p["W"].sub_(reps.lr[sl, None, None] * grad)
    laps.lap("update")
    out = {k: v / steps * 1e6 for k, v in laps.cpu.items()}
    out["one _record call"] = interleaved({"r": lambda: reps._record(_record_sink(m, reps.k),
                                           0, sl, p, steps, 0.0)}, 20, 3)["r"]  # fmt: skip
    return out


def _record_sink(m: int, k: int) -> dict[str, np.ndarray]:
    return {"align": np.zeros((1, 1, m, k), np.float32), "noise": np.zeros((1, 1, m), np.float32),
            "bias": np.zeros((1, 1, m), np.float32), "loss": np.zeros((1, 1), np.float32)}  # fmt: skip


class BatchedData:
    """The engine's training data for R replicas with the same draws from each replica's own
    generator (same calls, same order, written into slices of stacked buffers) and the
    arithmetic done once for all replicas: tokens, masks and the joined views (R, 2n, L, d).
    ``shared=True`` draws for all replicas at once from the first generator instead (one call
    per kind of draw): what giving up the per-replica streams would save."""

    def __init__(self, reps: Replicas, n: int, shared: bool = False) -> None:
        cfg, r = reps.specs[0].data, reps.n_replicas
        self.cfg, self.gens, self.n, self.shared = cfg, reps.data_gens, n, shared
        self.probs = D.feature_probs(cfg)
        self.ft = torch.stack([dc.features.T for dc in reps.dictionaries])  # (R, K, d)
        self.nt = torch.stack([dc.noise_dirs.T for dc in reps.dictionaries])  # (R, nc, d)
        k, seq, d = cfg.k, cfg.seq_len, cfg.d
        self.u_present, self.u_carry = torch.empty(r, n, k), torch.empty(r, n, seq, k)
        self.sign = torch.empty(r, n, k, dtype=torch.int64)
        self.noise, self.amp = torch.empty(r, n * seq, d), torch.empty(r, n, cfg.n_corr)
        self.keep = torch.empty(r, n, 1, d, dtype=torch.int64)
        self.out = torch.empty(r, 2 * n, seq, d)

    def _draw(self, g: torch.Generator, r: slice) -> None:
        torch.rand(self.u_present[r].shape, generator=g, out=self.u_present[r])
        torch.randint(0, 2, self.sign[r].shape, generator=g, out=self.sign[r])
        torch.rand(self.u_carry[r].shape, generator=g, out=self.u_carry[r])
        torch.randn(self.noise[r].shape, generator=g, out=self.noise[r])
        torch.randn(self.amp[r].shape, generator=g, out=self.amp[r])
        torch.randint(0, 2, self.keep[r].shape, generator=g, out=self.keep[r])

    def __call__(self) -> torch.Tensor:
        cfg, n = self.cfg, self.n
        if self.shared:
            self._draw(self.gens[0], slice(None))
        else:
            for r, g in enumerate(self.gens):
                self._draw(g, slice(r, r + 1))
        z = (self.u_present < self.probs) * (2 * self.sign - 1)
        coef = z[:, :, None, :].to(torch.float32) * (self.u_carry < cfg.p_token)
        r, scale = len(self.gens), cfg.sigma / cfg.d**0.5
        x = torch.baddbmm(self.noise, coef.view(r, -1, cfg.k), self.ft, beta=scale)
        x = x.view(r, n, cfg.seq_len, cfg.d)
        x.add_(torch.bmm(self.amp * cfg.sigma_corr, self.nt)[:, :, None, :])
        keep = self.keep.to(torch.float32).mul_(2)
        torch.mul(x, keep, out=self.out[:, :n])
        torch.sub(x.mul_(2), self.out[:, :n], out=self.out[:, n:])
        return self.out


def step_compute(x, w, kappa, sigma, tau, lr, wd, c):
    """The fused step's compute (token mix, neurons, InfoNCE gradients, weight gradient, SGD
    update) for W_V = I and scalar attention form c (R, 1, 1), written plainly for
    ``torch.compile``: x (R, 2n, L, d), w (R, m, d) -> (new w, loss (R,))."""
    r, n2, seq, d = x.shape
    n = n2 // 2
    xs = x.reshape(r * n2, seq, d)
    scores = (torch.bmm(xs, xs.transpose(1, 2)).view(r, -1, seq) * c).view(r * n2, seq, seq)
    hx = torch.bmm(torch.softmax(scores, dim=-1), xs).view(r, n2 * seq, d)
    b = (kappa * sigma * (2.0 / d) ** 0.5)[:, None, None] * w.norm(dim=-1)[:, None, :]
    pre = torch.bmm(hx, w.transpose(1, 2))
    f = (pre - pre.clamp(-b, b)).view(r, n2, seq, -1).sum(2)
    active = (pre.abs() > b).to(x.dtype)
    fa, fb = f[:, :n], f[:, n:]
    s = fa @ fb.transpose(1, 2) / tau[:, None, None]
    rows, cols = torch.log_softmax(s, dim=-1), torch.log_softmax(s, dim=-2)
    loss = -0.5 * (rows.diagonal(dim1=1, dim2=2) + cols.diagonal(dim1=1, dim2=2)).mean(-1)
    eye, scale = torch.eye(n, dtype=x.dtype), (0.5 / n / tau)[:, None, None]
    ga, gb = (rows.exp() - eye) * scale, (cols.exp() - eye) * scale
    df = torch.cat([ga @ fb, gb.transpose(1, 2) @ fa], dim=1)
    ds = (active.view(r, n2, seq, -1) * df[:, :, None, :]).view(r, n2 * seq, -1)
    grad = ds.transpose(1, 2) @ hx + w * wd[:, None, None]
    return w - lr[:, None, None] * grad, loss


def step_alternatives(batch: int, m: int, args) -> dict[str, tuple[float, float]]:
    """{alternative: (engine's way, the alternative)} in CPU microseconds per model-step."""
    spec, rounds, inner = step_spec(batch, m), args.step_reps, args.step_inner
    r4 = [step_spec(batch, m, s) for s in range(4)]
    one, loop4 = Replicas([spec]), Replicas(r4, chunk=1)
    runs = interleaved({"engine": lambda: one.run(inner, progress=False)}, 1, rounds)
    ws1, ws4 = M.Workspace(), M.Workspace()
    data = interleaved({"data1": lambda: one._joined_batch(range(1), ws1),
                        "batched1": BatchedData(Replicas([spec]), batch),
                        "data4": lambda: loop4._joined_batch(range(4), ws4),
                        "batched4": BatchedData(Replicas(r4), batch),
                        "shared4": BatchedData(Replicas(r4), batch, shared=True)},
                       inner, rounds)  # fmt: skip
    out = {
        ENGINE_ROW: (runs["engine"] / inner, runs["engine"] / inner),
        "data, R = 1: engine -> same draws, fewer ops": (data["data1"], data["batched1"]),
        "data, R = 4: per replica -> batched arithmetic": (data["data4"] / 4, data["batched4"] / 4),
        "data, R = 4, batched: own -> shared generator": (
            data["batched4"] / 4,
            data["shared4"] / 4,
        ),
    }
    out |= _bias_alternative(one, inner, rounds)
    out |= _random_alternatives(spec, inner, rounds)
    out |= _compute_alternatives(one, spec, inner, rounds, args.compile)
    return out


def _bias_alternative(reps: Replicas, inner: int, rounds: int) -> dict[str, tuple[float, float]]:
    """The per-step bias: kappa(t) from tensors and V = W W_V, or a kappa * sigma * sqrt(2/d)
    table indexed by step and V = W (W_V is the identity while attention is frozen)."""
    p, sl, t = reps.params, slice(0, 1), 500
    table = torch.stack([reps.kappa(s) * reps.sigma * (2.0 / reps.d) ** 0.5 for s in range(1000)])

    def engine():
        v = M.effective_weights(p["W"], p["WV"])
        return M.bias_from_effective(reps.kappa(t)[sl], v, reps.sigma[sl], reps.d)

    def tabled():
        return table[t][sl, None] * p["W"].norm(dim=-1)

    got = interleaved({"engine": engine, "table": tabled}, inner, rounds)
    return {"bias: kappa(t) tensors -> per-step table, V = W": (got["engine"], got["table"])}


def _random_alternatives(spec: RunSpec, inner: int, rounds: int) -> dict:
    """Fewer random calls: the view mask and the codes' presence and sign (new streams)."""
    cfg, n, g = spec.data, spec.train.batch, torch.Generator().manual_seed(0)
    words = -(-cfg.d // 32)
    shifts = torch.arange(32, dtype=torch.int64)
    probs = D.feature_probs(cfg)

    def packed_mask():
        bits = torch.empty(n, words, dtype=torch.int64).random_(0, 2**32, generator=g)
        return ((bits[..., None] >> shifts) & 1).view(n, -1)[:, : cfg.d].to(torch.float32)

    def codes_two_calls():
        present = torch.rand(n, cfg.k, generator=g) < probs
        return present * (torch.randint(0, 2, (n, cfg.k), generator=g) * 2 - 1)

    def codes_one_call():  # +1 with probability p/2, -1 with p/2, 0 otherwise
        u = torch.rand(n, cfg.k, generator=g)
        return (u < probs).to(torch.int64) - 2 * (u < probs / 2).to(torch.int64)

    got = interleaved({"randint": lambda: torch.randint(0, 2, (n, 1, cfg.d), generator=g),
                       "packed": packed_mask, "two": codes_two_calls, "one": codes_one_call},
                      inner, rounds)  # fmt: skip
    return {
        "mask: randint per coordinate -> 32 bits per draw": (got["randint"], got["packed"]),
        "codes: rand + randint -> one rand": (got["two"], got["one"]),
    }


def _compute_alternatives(reps, spec, inner, rounds, compile_too: bool) -> dict:
    """The step's compute, written plainly (step_compute): float32 eager, float64 eager and,
    with --compile, float32 under torch.compile (compile time excluded, printed)."""
    x = reps._joined_batch(range(1), M.Workspace()).clone()
    c = M.scalar_form(M.attention_form(reps.params["WQ"], reps.params["WK"]))[:, None, None]
    args32 = (x, reps.params["W"].clone(), reps.kappa(500), reps.sigma, reps.tau, reps.lr,
              reps.weight_decay, c)  # fmt: skip
    args64 = tuple(a.double() for a in args32)
    fns = {"f32": lambda: step_compute(*args32), "f64": lambda: step_compute(*args64)}
    if compile_too:
        compiled = torch.compile(step_compute, dynamic=False)
        start = time.process_time()
        compiled(*args32)
        print(f"  torch.compile of step_compute, batch {spec.train.batch}, m {spec.model.m}: "
              f"{time.process_time() - start:.1f} CPU-s", flush=True)  # fmt: skip
        fns["compiled"] = lambda: compiled(*args32)
    got = interleaved(fns, inner, rounds)
    out = {"compute: float32 -> float64 (plain code)": (got["f32"], got["f64"])}
    if compile_too:
        out["compute: eager -> torch.compile (plain code)"] = (got["f32"], got["compiled"])
    return out


def stacking_table(shapes, args) -> None:
    """R = 8 replicas trained in chunks of 1 (the CPU default), 2, 4 or 8 stacked replicas:
    CPU us per model-step, and the fastest chunk (what a cost rule should pick)."""
    chunks = (1, 2, 4, 8)
    print("\n=== stacking: R = 8 replicas, CPU us per model-step by chunk (stacked replicas)")
    print(f"{'shape':<12}" + "".join(f"{f'chunk {c}':>10}" for c in chunks) + "  fastest")
    steps = max(2, args.step_inner // 4)
    for b, m in shapes:
        specs = [step_spec(b, m, s) for s in range(8)]
        reps = {c: Replicas(specs, chunk=c) for c in chunks}
        got = interleaved({c: functools.partial(r.run, steps, progress=False)
                           for c, r in reps.items()}, 1, args.step_reps)  # fmt: skip
        per = {c: v / steps / 8 for c, v in got.items()}
        best = min(per, key=per.get)
        print(f"{f'b{b} m{m}':<12}" + "".join(f"{per[c]:>10.0f}" for c in chunks)
              + f"  {best} ({100 * (1 - per[best] / per[1]):.0f} % less than chunk 1)",
              flush=True)  # fmt: skip


def step_table(args) -> None:
    shapes = STEP_SHAPES[:: 2 if args.quick else 1]
    cols = "".join(f"{f'b{b} m{m}':>13}" for b, m in shapes)
    print("\n=== one fused step (L = 4, d = 64, K = 16, 1 thread), CPU us per step: parts")
    parts = {s: step_parts(*s, args.step_inner * 4) for s in shapes}
    print(f"{'part':<46}{cols}")
    for name in [*STEP_PARTS, "one _record call"]:
        print(f"{name:<46}" + "".join(f"{parts[s][name]:>13.0f}" for s in shapes))
    total = {s: sum(parts[s][k] for k in STEP_PARTS) for s in shapes}
    print(f"{'sum of the parts':<46}" + "".join(f"{total[s]:>13.0f}" for s in shapes))
    print(f"fixed cost per step at a tiny shape (all overhead): "
          f"{1e6 * fixed_step_cost(args.step_inner * 4):.0f} us")  # fmt: skip
    stacking_table(shapes, args)
    print("\n=== alternatives: engine's way > alternative, CPU us per model-step (saving in % "
          "of the engine step, R = 1)")  # fmt: skip
    alts = {s: step_alternatives(*s, args) for s in shapes}
    print(f"{'':<46}" + "".join(f"{f'b{b} m{m}':>20}" for b, m in shapes))
    for name in alts[shapes[0]]:
        cells = []
        for s in shapes:
            before, after = alts[s][name]
            saving = 100 * (before - after) / alts[s][ENGINE_ROW][0]
            cells.append(f"{before:.0f}" if name == ENGINE_ROW else
                         f"{before:.0f} > {after:.0f} ({saving:+.0f}%)")  # fmt: skip
        print(f"{name:<46}" + "".join(f"{c:>20}" for c in cells), flush=True)


# ---------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer seeds, branches, widths, sizes")
    p.add_argument("--probe", action="store_true", help="probe mode: scikit-learn vs torch")
    p.add_argument("--step", action="store_true", help="step mode: one training step by part")
    p.add_argument("--chapters", default="ch1,ch2,ch3,ch4,ch5", help="book mode: chapters")
    p.add_argument("--seeds", type=int, default=None, help="book mode: seeds (default 2, quick 1)")
    p.add_argument("--probe-backend", choices=("sklearn", "torch"), default="sklearn",
                   help="book mode: metrics.probe_accuracy as is, or on imbcl.engine.probe")  # fmt: skip
    p.add_argument("--cprofile", type=int, default=0, metavar="N",
                   help="book mode: also print each workload's N costliest functions")  # fmt: skip
    p.add_argument("--peak-size", type=int, default=1024, help="matmul size of the peak")
    p.add_argument("--compile", action="store_true", help="step mode: also try torch.compile")
    args = p.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 2)
    args.chapters = [c.strip() for c in args.chapters.split(",")]
    bad = [c for c in args.chapters if c not in ("ch1", "ch2", "ch3", "ch4", "ch5")]
    if bad or args.seeds < 1 or args.cprofile < 0:
        p.error(f"--chapters must name ch1..ch5, --seeds >= 1, --cprofile >= 0 (got {bad})")
    args.paper_steps = 100 if args.quick else 300
    args.probe_replicas = (5,) if args.quick else (5, 20)
    args.probe_n = (300, 2000) if args.quick else (300, 800, 2000)
    args.step_reps, args.step_inner = (3, 20) if args.quick else (5, 50)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f"imbcl book benchmark -- {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, imbcl from "
          f"{imbcl.__file__}, torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"start: {load()}")
    if args.probe:
        probe_table(args)
    if args.step:
        step_table(args)
    if not (args.probe or args.step):
        book_workload(args)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    sys.exit(main())
