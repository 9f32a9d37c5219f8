"""Where the book's CPU time goes: each chapter's own tasks by phase, the linear probe, the step.

Run from the repository root with the project's environment (``--help`` lists the options)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --quick             # book workload
    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --chapters ch4,ch5  # some chapters
    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --probe --quick     # probe: sklearn/torch
    PYTHONPATH=. .venv/bin/python benchmarks/bench_book.py --step --quick      # one step, by part

(``PYTHONPATH=.`` makes ``import imbcl`` find this checkout, not the editable install's.)

Modes:

1. book workload (default): for each chapter of :data:`imbcl.report.book.CHAPTERS` (Chapters
   1-5 and the atlas), its plan at the full profile (``Settings.from_params("full")``,
   ``plan(settings)``) and a subset of its tasks (``--subset``: the first task, or every task
   that covers the first seed), each run in this process through its task function, as a
   sweep worker runs it. Reported in CPU-seconds (``time.process_time``) per seed: a task's
   time divided by the seeds it covers, split by phase: training-step compute, training data
   (draws, tokens and views), probes, ICA, recording and the rest (set-up, the training loop,
   measurements, Python overhead). Phases are timed by wrapping their entry points
   (:data:`ENTRY_POINTS`); a wrapped call inside another counts for itself only. Beside the
   split: the achieved GFLOP/s of training (the analytic FLOPs of ``bench_train.step_flops``
   of every step taken, over the training-step and data CPU-seconds), its fraction of the
   matmul peak, and its ratio to the same figure for the paper-sized step, all measured in
   the same run. ``--quick`` shortens every task (steps divided by :data:`QUICK_DIVISOR`, at
   most :data:`QUICK_SEEDS` seeds per task): a check that the mode runs, not a measurement.
   ``--cprofile N`` also prints each task's N most expensive functions.
2. ``--probe``: a scikit-learn loop (one ``LogisticRegression`` per replica and feature)
   against :func:`imbcl.engine.probe.fit_logistic`, the probe of ``metrics.probe_accuracy``,
   on the same features of trained replicas, in CPU-seconds, with the balanced accuracies'
   agreement and each side's distance to a tightly solved reference.
3. ``--step``: one fused training step (:class:`imbcl.engine.steps.FusedStep`) at the book's
   shapes, timed part by part; the cost of stacking replicas (``chunk`` 1, 2, 4, 8) against
   the choice of :func:`imbcl.engine.train.default_chunk`; the gain of training k branches of
   one run together (``Replicas.branches``) over k separate copies; and draws the engine could
   make with fewer random calls.

The load average is printed at the start and the end: on a shared machine compare ratios
measured in the same run, not absolute numbers across runs.
"""

from __future__ import annotations  # noqa: I001  (imbcl is imported before torch, see below)

import argparse
import contextlib
import cProfile
import dataclasses
import functools
import io
import platform
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from unittest import mock

import imbcl  # noqa: F401  (first: sets the OpenMP and thread policy before torch loads)
import numpy as np
import torch

from bench_train import SHAPES, Shape, load, matmul_peak, total_flops
from imbcl import DataConfig, ModelConfig, Replicas, RunSpec, TrainConfig
from imbcl.engine import data, metrics, model, prune, steps
from imbcl.engine.loss import info_nce_grads
from imbcl.engine.probe import balanced_accuracy, fit_logistic
from imbcl.engine.recorder import Recorder
from imbcl.engine.streams import Stream
from imbcl.engine.train import STACK_ELEMENTS, default_chunk
from imbcl.images import analysis, training
from imbcl.images.encoder import step_flops as image_step_flops
from imbcl.images.encoder import token_shape
from imbcl.report.book import CHAPTERS, study_module
from imbcl.sweep.task import Task, resolve

PHASES = ("train step", "data gen", "probes", "ICA", "recording", "other")
#: ``--quick``: every step count of a task divided by this, and at most this many seeds.
QUICK_DIVISOR, QUICK_SEEDS = 10, 2


# ------------------------------------------------------------------------------- phases
class PhaseClock:
    """Exclusive CPU seconds per phase from wrapped entry points, and the analytic FLOPs and
    model-steps (one SGD step of one replica) of the training steps they ran."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.flops, self.model_steps = 0.0, 0
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

    def wrap(self, fn: Callable, phase: str, work: Callable | None) -> Callable:
        """``fn`` timed as ``phase``; ``work(*args)`` gives the (FLOPs, model-steps) of a call."""

        @functools.wraps(fn)
        def timed_call(*args, **kwargs):
            if work is not None:
                flops, model_steps = work(*args)
                self.flops, self.model_steps = self.flops + flops, self.model_steps + model_steps
            self._switch(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch(None)

        return timed_call


@functools.cache
def spec_flops(batch: int, seq_len: int, d: int, m: int) -> float:
    return total_flops(Shape("", batch, seq_len, d, m))


def engine_step_work(step, t=None) -> tuple[float, int]:
    """A FusedStep or AutogradStep call: the chunk's replicas, one step each (the count is
    that of frozen attention, also for an autograd step that trains it)."""
    s = step.state.specs[step.idx[0]]
    flops = spec_flops(s.train.batch, s.data.seq_len, s.data.d, s.model.m)
    return len(step.idx) * flops, len(step.idx)


def image_train_work(exp, *args) -> tuple[float, int]:
    """Chapter 5's ``train(exp)``: every replica from its step to the end, with the count of
    :func:`imbcl.images.encoder.step_flops` (matrix products, forward and backward)."""
    n = exp.n_replicas * (exp.cfg.steps - exp.step)
    return n * image_step_flops(exp.cfg, *token_shape(exp.data.dataset)), n


#: (owner, name, phase, work): the entry points wrapped by the clock. They are patched where
#: their callers look them up (e.g. ``joined_views`` in the steps module).
ENTRY_POINTS = (
    (steps.FusedStep, "__call__", "train step", engine_step_work),
    (steps.AutogradStep, "__call__", "train step", engine_step_work),
    (steps, "joined_views", "data gen", None),
    (Recorder, "record", "recording", None),
    (metrics, "probe_accuracy", "probes", None),
    (prune, "estimate_basis", "ICA", None),
    (analysis, "train", "train step", image_train_work),  # Chapter 5: AdamW through autograd
    (training, "_views", "data gen", None),  # Chapter 5: batches, augmentations, tokens
    (analysis, "evaluate", "probes", None),  # Chapter 5: features and probes
)


@contextlib.contextmanager
def instrumented(clock: PhaseClock):
    """Every entry point of :data:`ENTRY_POINTS` wrapped by ``clock``."""
    with contextlib.ExitStack() as stack:
        for owner, name, phase, work in ENTRY_POINTS:
            wrapped = clock.wrap(getattr(owner, name), phase, work)
            stack.enter_context(mock.patch.object(owner, name, wrapped))
        yield


# ---------------------------------------------------------------------------- the tasks
def task_seeds(kwargs: dict) -> int:
    """How many seeds a task covers: the distinct seeds of its ``specs``, or one."""
    if "specs" in kwargs:
        return len({s.seed for s in kwargs["specs"]})
    if "spec" in kwargs or "seed" in kwargs:
        return 1
    raise ValueError(f"cannot tell the seeds of a task with arguments {sorted(kwargs)}")


def chosen_tasks(tasks: list[Task], subset: str) -> list[Task]:
    """The first task, or (``subset="seed"``) every task that covers the first task's first seed."""
    if subset == "first":
        return tasks[:1]
    first = _seeds_of(tasks[0].kwargs)[0]
    return [t for t in tasks if first in _seeds_of(t.kwargs)]


def _seeds_of(kwargs: dict) -> list[int]:
    if "specs" in kwargs:
        return sorted({s.seed for s in kwargs["specs"]})
    return [kwargs["spec"].seed if "spec" in kwargs else kwargs["seed"]]


def _shorter_spec(spec: RunSpec) -> RunSpec:
    steps = max(2, spec.train.steps // QUICK_DIVISOR)
    train = spec.train.replace(steps=steps, record_every=min(spec.train.record_every, steps))
    model_cfg = spec.model.replace(ramp_steps=max(1, spec.model.ramp_steps // QUICK_DIVISOR))
    return dataclasses.replace(spec, model=model_cfg, train=train)


def quick_kwargs(kwargs: dict) -> dict:
    """A task's arguments for ``--quick``: every step count (training steps, bias ramp, probe
    steps, pruning step and window, Chapter 5's steps and SDCLR period) divided by
    :data:`QUICK_DIVISOR`, and the runs of the first :data:`QUICK_SEEDS` seeds only."""
    out, div = dict(kwargs), QUICK_DIVISOR
    if "specs" in out:
        keep = sorted({s.seed for s in out["specs"]})[:QUICK_SEEDS]
        out["specs"] = [_shorter_spec(s) for s in out["specs"] if s.seed in keep]
    if "spec" in out:
        out["spec"] = _shorter_spec(out["spec"])
    for name in ("t1", "window"):
        if name in out:
            out[name] = max(1, out[name] // div)
    if "probe_steps" in out:
        out["probe_steps"] = sorted({max(1, t // div) for t in out["probe_steps"]})
    if "cfg" in out:  # Chapter 5's SimCLRConfig
        cfg = out["cfg"]
        n = max(2, cfg.steps // div)
        sdclr = max(1, min(cfg.sdclr_every // div, n - 1))
        out["cfg"] = cfg.replace(steps=n, sdclr_every=sdclr, record_every=min(cfg.record_every, n))
    return out


@dataclasses.dataclass
class Measured:
    """One task: CPU seconds per phase and in all, FLOPs and model-steps of its training."""

    cpu: dict[str, float]
    total: float
    flops: float
    model_steps: int
    top: str = ""


def measure(fn: Callable, kwargs: dict, cprofile_top: int) -> Measured:
    """Run ``fn(**kwargs)`` once with the phase clock (and under cProfile if asked)."""
    clock = PhaseClock()
    prof = cProfile.Profile(time.process_time) if cprofile_top else None
    with instrumented(clock), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning etc.: not what is measured here
        start = time.process_time()
        if prof:
            prof.enable()
        fn(**kwargs)
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
    return Measured(cpu, total, clock.flops, clock.model_steps, top)


# ------------------------------------------------------------------------ the reference
def paper_efficiency(n_steps: int) -> float:
    """GFLOP/s per CPU-second of training step + data of the paper-sized step (R = 1)."""
    s = SHAPES["paper"]
    spec = RunSpec(DataConfig(d=s.d, seq_len=s.seq_len), ModelConfig(m=s.m),
                   TrainConfig(batch=s.batch, lr=0.05, record_every=10**6))  # fmt: skip
    reps = Replicas([spec])
    reps.run(20, progress=False)
    clock = PhaseClock()
    with instrumented(clock):
        reps.run(n_steps, progress=False)
    return clock.flops / (clock.cpu["train step"] + clock.cpu["data gen"]) / 1e9


def warm_up() -> float:
    """CPU seconds of what a process pays once, before its first task: the first torch.optim
    optimizer (its constructor imports torch._dynamo; Chapter 5 uses AdamW) and the import
    of scikit-learn's FastICA (Chapter 4's estimated basis)."""
    start = time.process_time()
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.AdamW([p])
    p.sum().backward()
    opt.step()
    from sklearn.decomposition import FastICA  # noqa: F401

    return time.process_time() - start


def book_workload(args) -> None:
    print(f"\n=== book workload: CPU-s per seed by phase; tasks: {args.subset} (see --subset)")
    if args.quick:
        print(f"--quick: steps / {QUICK_DIVISOR}, at most {QUICK_SEEDS} seeds per task: "
              "a check that this mode runs, not a measurement")  # fmt: skip
    print(f"once per process, before the first task: {warm_up():.2f} CPU-s "
          "(first torch.optim optimizer, scikit-learn FastICA import)")  # fmt: skip
    _, cpu = matmul_peak(torch.device("cpu"), args.peak_size, 3, None)
    peak = statistics.median(cpu)
    paper = paper_efficiency(args.paper_steps)
    print(f"matmul peak (fp32 mm {args.peak_size}^2, {torch.get_num_threads()} thread(s)): "
          f"{peak:.1f} GFLOP/s per CPU-s")  # fmt: skip
    print(f"paper-sized step (batch 256, L 8, d = m = 64), {args.paper_steps} steps: "
          f"{paper:.1f} GFLOP/s per CPU-s = {100 * paper / peak:.0f} % of peak")  # fmt: skip
    head = f"{'':<6}{'seeds':>6}{'model-st':>9}" + "".join(f"{p:>11}" for p in PHASES)
    print(head + f"{'total':>9}{'GFLOP/s':>8}{'%peak':>6}{'/paper':>7}")
    for chapter in args.chapters:
        module = study_module(chapter)
        tasks = module.plan(module.Settings.from_params("full"))
        chosen = chosen_tasks(tasks, args.subset)
        per_seed, model_steps = dict.fromkeys(PHASES, 0.0), 0
        for task in chosen:
            kwargs = quick_kwargs(task.kwargs) if args.quick else task.kwargs
            seeds = task_seeds(kwargs)
            got = measure(resolve(task.fn), kwargs, args.cprofile)
            for p in PHASES:
                per_seed[p] += got.cpu[p] / seeds
            model_steps += got.model_steps // seeds
            label = task.label + (" (shortened)" if args.quick else "")
            print(_row(chapter, seeds, got, peak, paper) + f"   {label}", flush=True)
            if got.top:
                print(got.top)
        if len(chosen) > 1:
            cells = "".join(f"{per_seed[p]:>11.2f}" for p in PHASES)
            total = f"{sum(per_seed.values()):>9.2f}"
            print(
                f"{chapter:<6}{'sum':>6}{model_steps:>9}{cells}{total}   the {len(chosen)} tasks above"
            )
        print(f"{'':<6}plan: {len(tasks)} tasks; measured {len(chosen)}", flush=True)
    print("columns: CPU-s per seed (a task's CPU-s / the seeds it covers); model-st: SGD steps "
          "of one replica per seed; GFLOP/s: analytic FLOPs per CPU-s of train step + data gen; "
          "/paper: its ratio to the paper-sized step's")  # fmt: skip


def _row(chapter: str, seeds: int, got: Measured, peak: float, paper: float) -> str:
    line = f"{chapter:<6}{seeds:>6}{got.model_steps // seeds:>9}"
    line += "".join(f"{got.cpu[p] / seeds:>11.2f}" for p in PHASES) + f"{got.total / seeds:>9.2f}"
    train_cpu = got.cpu["train step"] + got.cpu["data gen"]
    if got.flops and train_cpu > 0:
        gf = got.flops / train_cpu / 1e9
        line += f"{gf:>8.1f}{100 * gf / peak:>5.0f}%{gf / paper:>7.2f}"
    return line


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
        x, z = reps.sample(2 * n, stream=int(Stream.PROBE) + 100 + k, probs=probs)
        xs.append(reps.encode(x))
        zs.append(z + 1)
    return torch.cat(xs)[:n_problems], torch.cat(zs)[:n_problems].long()


@functools.cache
def _probe_replicas(specs: tuple[RunSpec, ...]) -> Replicas:
    reps = Replicas(list(specs))
    reps.run(progress=False)
    return reps


def sklearn_probe(feats: np.ndarray, z: np.ndarray, n: int) -> np.ndarray:
    """(P, K) balanced accuracies of one scikit-learn LogisticRegression per problem and
    feature on standardised features, trained on the first n samples, scored on the rest."""
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
#: (batch, m) of the step tables: the recipe is (128, 64); L = 4, d = 64, K = 16 throughout.
STEP_SHAPES = ((64, 8), (64, 64), (128, 64), (256, 64), (64, 256), (128, 256))
STEP_PARTS = ("draws", "tokens", "views", "token mix", "bias", "neurons", "InfoNCE grads",
              "weight grad", "update")  # fmt: skip


def step_spec(batch: int, m: int, seed: int = 0) -> RunSpec:
    """The book's step at (batch, m): the recipe's data model and ramp, never recorded (lr
    0.05: no divergence at the larger shapes)."""
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


def _cpu_per_call(fn: Callable[[int], object], calls: int) -> float:
    start = time.process_time()
    for i in range(calls):
        fn(i)
    return (time.process_time() - start) / calls * 1e6


@torch.no_grad()
def step_parts(batch: int, m: int, n_steps: int) -> dict[str, float]:
    """CPU microseconds per step of each part of :class:`FusedStep` (one replica: the engine's
    functions called in its order, in its buffers), of the FusedStep call as a whole, of
    ``Replicas.run`` per step, and of one ``Recorder.record`` call."""
    reps = Replicas([step_spec(batch, m)])
    reps.run(20, progress=False)
    sl, idx, t0, h = slice(0, 1), range(1), reps.step, reps.hyper
    p = {k: v[sl].clone() for k, v in reps.params.items()}
    step = steps.make_step("fused", reps, p, sl, idx, t0, t0 + 2 * n_steps)
    if not step.identity_v:
        raise RuntimeError("the parts below are those of the book's frozen attention, W_V = I")
    cfgs, ws, draws, like = [reps.specs[0].data], step.ws, step.draws, reps.features
    n, seq, d = batch, cfgs[0].seq_len, reps.d
    laps = Laps(STEP_PARTS)
    for t in range(t0, t0 + n_steps):
        laps.lap("update")  # (the loop itself counts with the update)
        draws.part(0).fill(reps.data_gens[0])
        laps.lap("draws")
        tokens = ws.get("tokens", (1, n, seq, d), like)
        x, _ = data.tokens(cfgs, reps.features[sl], reps.noise_dirs[sl], draws, out=tokens)
        laps.lap("tokens")
        joined = ws.get("x", (1, 2 * n, seq, d), like)
        data.views(x, draws.keep, joined)
        laps.lap("views")
        hx = model.token_mix(joined, step.form, step.c, ws)
        laps.lap("token mix")
        w = p["W"]
        b = model.bias_from_effective(step.kappas[t - t0], w, h.sigma[sl], d)
        laps.lap("bias")
        f, active = model.neurons_with_mask(hx, w, b, ws)
        laps.lap("neurons")
        _, df1, df2 = info_nce_grads(f[:, :n], f[:, n:], h.tau[sl])
        laps.lap("InfoNCE grads")
        grad = model.neuron_weight_grad(hx, active, torch.cat([df1, df2], dim=1))
        laps.lap("weight grad")
        grad.add_(w * h.weight_decay[sl, None, None])
        w.sub_(h.lr[sl, None, None] * grad)
    laps.lap("update")
    out = {k: v / n_steps * 1e6 for k, v in laps.cpu.items()}
    out["FusedStep call"] = _cpu_per_call(lambda i: step(t0 + n_steps + i), n_steps)
    start = time.process_time()
    reps.run(n_steps, progress=False)
    out["Replicas.run, per step"] = (time.process_time() - start) / n_steps * 1e6
    rec = Recorder(list(range(20)), 1, reps.m, reps.k)
    out["one Recorder.record"] = _cpu_per_call(lambda i: rec.record(i, reps, p, sl, t0, 0.0), 20)
    return out


def fixed_step_cost(n_steps: int) -> float:
    """CPU seconds per training step (step + data) at a tiny shape (d = 8, K = 2, batch 4,
    m = 2): the per-step cost that does not scale with the shape."""
    spec = RunSpec(DataConfig(d=8, k_maj=1, k_min=1, n_corr=0), ModelConfig(m=2),
                   TrainConfig(batch=4, record_every=10**6))  # fmt: skip
    reps = Replicas([spec])
    reps.run(20, progress=False)
    start = time.process_time()
    reps.run(n_steps, progress=False)
    return (time.process_time() - start) / n_steps


def stacking_table(shapes, args) -> None:
    """R = 8 replicas trained in chunks of 1, 2, 4 or 8 stacked replicas: CPU us per
    model-step, the fastest chunk, and the chunk :func:`default_chunk` picks."""
    chunks = (1, 2, 4, 8)
    print("\n=== stacking: R = 8 replicas, CPU us per model-step by chunk (stacked replicas); "
          f"default_chunk keeps batch x m x chunk <= STACK_ELEMENTS = {STACK_ELEMENTS}")  # fmt: skip
    print(f"{'shape':<12}{'batch x m':>10}" + "".join(f"{f'chunk {c}':>10}" for c in chunks)
          + "  fastest (vs 1)  default_chunk (vs fastest)")  # fmt: skip
    n_steps = max(2, args.step_inner // 4)
    for b, m in shapes:
        specs = [step_spec(b, m, s) for s in range(8)]
        reps = {c: Replicas(specs, chunk=c) for c in chunks}
        got = interleaved({c: functools.partial(r.run, n_steps, progress=False)
                           for c, r in reps.items()}, 1, args.step_reps)  # fmt: skip
        per = {c: v / n_steps / 8 for c, v in got.items()}
        best, chosen = min(per, key=per.get), default_chunk(specs[0], 8, torch.device("cpu"))
        print(f"{f'b{b} m{m}':<12}{b * m:>10}" + "".join(f"{per[c]:>10.0f}" for c in chunks)
              + f"  {best} ({100 * (per[best] / per[1] - 1):+4.0f} %)"
              + f"    {chosen} ({per[chosen] / per[best]:.2f}x)", flush=True)  # fmt: skip


def branches_table(args) -> None:
    """k branches of one run at the recipe's shape (Chapter 4's cell): ``Replicas.branches(k)``
    (stacked, one draw per step) against k separate ``copy()`` runs, CPU us per model-step."""
    print("\n=== branches: k branches of one run (b128 m64), CPU us per model-step")
    print(f"{'k':>4}{'chunk':>7}{'branches':>10}{'copies':>10}  gain")
    base = Replicas([step_spec(128, 64)])
    base.run(20, progress=False)
    n_steps = max(2, args.step_inner // 4)
    for k in args.branch_ks:
        stacked, copies = base.branches(k), [base.copy() for _ in range(k)]
        got = interleaved({"branches": lambda s=stacked: s.run(n_steps, progress=False),
                           "copies": lambda cs=copies: [c.run(n_steps, progress=False)
                                                         for c in cs]}, 1, args.step_reps)  # fmt: skip
        per = {name: v / n_steps / k for name, v in got.items()}
        print(f"{k:>4}{stacked.chunk:>7}{per['branches']:>10.0f}{per['copies']:>10.0f}"
              f"  {per['copies'] / per['branches']:.2f}x", flush=True)  # fmt: skip


def random_alternatives(batch: int, inner: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{draw: (engine's way, with fewer random calls)} in CPU us per model-step at ``batch``.
    Each alternative would change the numbers drawn, hence every stored run."""
    cfg, g = DataConfig(), torch.Generator().manual_seed(0)
    gens = [torch.Generator().manual_seed(s) for s in range(4)]
    draws = data.Draws.empty(cfg, (4, batch), True, torch.device("cpu"))
    n, words, shifts = batch, -(-cfg.d // 32), torch.arange(32, dtype=torch.int64)
    probs = data.feature_probs(cfg)

    def own_generators():
        for i, gen in enumerate(gens):
            draws.part(i).fill(gen)

    def packed_mask():
        bits = torch.empty(n, words, dtype=torch.int64).random_(0, 2**32, generator=g)
        return ((bits[..., None] >> shifts) & 1).view(n, -1)[:, : cfg.d].to(torch.float32)

    def codes_two_calls():
        present = torch.rand(n, cfg.k, generator=g) < probs
        return present * (torch.randint(0, 2, (n, cfg.k), generator=g) * 2 - 1)

    def codes_one_call():  # +1 with probability p/2, -1 with p/2, 0 otherwise
        u = torch.rand(n, cfg.k, generator=g)
        return (u < probs).to(torch.int64) - 2 * (u < probs / 2).to(torch.int64)

    mask = torch.empty(n, 1, cfg.d)
    got = interleaved({"own": own_generators, "shared": lambda: draws.fill(gens[0]),
                       "randint": lambda: torch.randint(0, 2, mask.shape, generator=g, out=mask),
                       "packed": packed_mask, "two": codes_two_calls, "one": codes_one_call},
                      inner, rounds)  # fmt: skip
    return {
        "draws, R = 4: own generators -> one shared": (got["own"] / 4, got["shared"] / 4),
        "view mask: randint -> 32 bits per draw": (got["randint"], got["packed"]),
        "codes: rand + randint -> one rand": (got["two"], got["one"]),
    }


def step_table(args) -> None:
    shapes = STEP_SHAPES[:: 2 if args.quick else 1]
    cols = "".join(f"{f'b{b} m{m}':>13}" for b, m in shapes)
    print("\n=== one fused step (L = 4, d = 64, K = 16, R = 1), CPU us per step: parts")
    parts = {s: step_parts(*s, args.step_inner * 4) for s in shapes}
    print(f"{'part':<46}{cols}")
    for name in parts[shapes[0]]:
        if name == "FusedStep call":
            total = {s: sum(parts[s][k] for k in STEP_PARTS) for s in shapes}
            print(f"{'sum of the parts':<46}" + "".join(f"{total[s]:>13.0f}" for s in shapes))
        print(f"{name:<46}" + "".join(f"{parts[s][name]:>13.0f}" for s in shapes))
    print(f"fixed cost per step at a tiny shape (all overhead): "
          f"{1e6 * fixed_step_cost(args.step_inner * 4):.0f} us")  # fmt: skip
    stacking_table(shapes, args)
    branches_table(args)
    print("\n=== draws with fewer random calls: engine's way > alternative, CPU us per "
          "model-step (change in % of the FusedStep call)")  # fmt: skip
    print(f"{'':<46}" + "".join(f"{f'b{b} m{m}':>20}" for b, m in shapes))
    alts = {s: random_alternatives(s[0], args.step_inner, args.step_reps) for s in shapes}
    for name in alts[shapes[0]]:
        cells = []
        for s in shapes:
            before, after = alts[s][name]
            saving = 100 * (after - before) / parts[s]["FusedStep call"]
            cells.append(f"{before:.0f} > {after:.0f} ({saving:+.0f}%)")
        print(f"{name:<46}" + "".join(f"{c:>20}" for c in cells), flush=True)


# ---------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter tasks, fewer sizes and rounds")
    p.add_argument("--probe", action="store_true", help="probe mode: scikit-learn vs torch")
    p.add_argument("--step", action="store_true", help="step mode: one training step by part")
    p.add_argument("--chapters", default=",".join(CHAPTERS),
                   help=f"book mode: chapters among {','.join(CHAPTERS)}")  # fmt: skip
    p.add_argument("--subset", choices=("first", "seed"), default="first",
                   help="book mode: each chapter's first task, or every task of its first seed")  # fmt: skip
    p.add_argument("--cprofile", type=int, default=0, metavar="N",
                   help="book mode: also print each task's N costliest functions")  # fmt: skip
    p.add_argument("--peak-size", type=int, default=1024, help="matmul size of the peak")
    args = p.parse_args(argv)
    args.chapters = [c.strip() for c in args.chapters.split(",") if c.strip()]
    bad = [c for c in args.chapters if c not in CHAPTERS]
    if bad or not args.chapters or args.cprofile < 0:
        p.error(f"--chapters must name some of {', '.join(CHAPTERS)} (got {bad or 'none'}), "
                "--cprofile >= 0")  # fmt: skip
    args.paper_steps = 100 if args.quick else 300
    args.probe_replicas = (5,) if args.quick else (5, 20)
    args.probe_n = (300, 2000) if args.quick else (300, 800, 2000)
    args.step_reps, args.step_inner = (3, 20) if args.quick else (5, 50)
    args.branch_ks = (4,) if args.quick else (4, 17)
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
