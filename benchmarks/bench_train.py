"""Benchmark of imbcl's training engine against the machine's matmul peak and a plain reference.

Run with the project's environment (``--help`` lists the options)::

    .venv/bin/python benchmarks/bench_train.py            # full run, CPU (+ CUDA if present)
    .venv/bin/python benchmarks/bench_train.py --quick    # a smaller, faster run

One run reports, for each device:

1. the measured float32 matmul peak: a large square ``torch.mm`` in GFLOP/s, at the thread
   count the engine trains with (``IMBCL_THREADS``, default 1) and, on the CPU, at 2 threads;
2. the engine (:class:`imbcl.Replicas`) on three step shapes, in model-steps per second (one
   model-step = one SGD step of one replica), for R = 1, 4, 16, 64 replicas, with the engine's
   default chunking (:func:`imbcl.engine.train.default_chunk`), one replica at a time
   (``chunk=1``) and all replicas stacked (``chunk=R``), each where it differs from the default;
3. the achieved GFLOP/s from the analytic FLOP count :func:`step_flops` and its fraction of the
   measured peak;
4. a plain reference -- one ``torch.nn.Module`` per seed trained in a Python loop with the same
   math, data and optimiser -- and the engine/reference ratio. Engine and reference
   repetitions are interleaved and the ratio is the median of the paired ratios, so a load
   change during the run affects both sides of a pair alike.

Every figure is the median of ``--reps`` repetitions after one warm-up, printed with its
spread (min-max over the repetitions). The machine's load average is printed at the start and
the end: on a shared machine, compare ratios within one run, not absolute numbers across runs.
On the CPU each throughput is also given per CPU-second of this process (with one thread: the
speed it would have with a core to itself, up to cache and memory-bandwidth sharing), against
the matmul peak measured the same way.
"""

from __future__ import annotations  # noqa: I001  (imbcl is imported before torch, see below)

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import imbcl  # noqa: F401  (first: sets the OpenMP and thread policy before torch loads)
import torch
from torch import nn
from torch.nn import functional as F

from imbcl import DataConfig, ModelConfig, Replicas, RunSpec, TrainConfig
from imbcl.engine import data as D
from imbcl.engine.streams import Stream, generator
from imbcl.engine.train import default_chunk


# --------------------------------------------------------------------------- shapes and FLOPs
@dataclass(frozen=True)
class Shape:
    """One step shape: ``batch`` samples of ``seq_len`` tokens in ``d`` dimensions, ``m`` neurons."""

    name: str
    batch: int
    seq_len: int
    d: int
    m: int


SHAPES = {
    "small": Shape("small", batch=256, seq_len=4, d=64, m=64),  # the book's default model
    "paper": Shape("paper", batch=256, seq_len=8, d=64, m=64),  # the paper-sized step
    "large": Shape("large", batch=512, seq_len=8, d=128, m=128),
}


def step_flops(s: Shape) -> dict[str, float]:
    """Useful FLOPs of one SGD step of one replica, term by term (multiply-add = 2 FLOPs).

    Counted for the model as the paper writes it, with two masked views of ``n = batch``
    samples, ``L`` tokens, ``d`` dimensions, ``m`` neurons and frozen attention:

    forward, per view (x2 views):
      - attention projections Q = X W_Q^T, K = X W_K^T, V = X W_V^T: 3 * 2 n L d^2
      - attention scores Q K^T per sample (L x L):                      2 n L^2 d
      - softmax over the scores (max, subtract, exp, sum, divide):      5 n L^2
      - attention mix softmax(.) V:                                     2 n L^2 d
      - neuron pre-activations <w_i, h_l>:                              2 n L d m
      - BReLU ReLU(s - b) - ReLU(-s - b) (2 subtractions, 2 ReLUs, 1 difference): 5 n L m
      - token sum over the L tokens:                                    n L m
    forward, loss:
      - similarity logits f_1 f_2^T and f_2 f_1^T (two n x n, m deep):  2 * 2 n^2 m
      - two row-wise log-softmaxes over n x n (max, sub, exp, sum, log, sub): 2 * 5 n^2
    backward (W only: attention is frozen; the target branch is a stop-gradient, so only the
    online view of each InfoNCE term is differentiated):
      - d logits -> d f_online for each of the two terms:                2 * 2 n^2 m
      - softmax - onehot for each term:                                   2 * 2 n^2
      - BReLU mask times the broadcast token-sum gradient, per view:      2 * n L m
      - d W from the pre-activations, per view:                           2 * 2 n L d m
      - weight decay and SGD update (grad += lambda W; W -= lr grad):     4 m d

    The gradient with respect to the attention output (d h = d pre W, 2 n L d m per view) is
    not counted: with frozen attention nothing consumes it. For the paper-sized step this count
    is 0.213 GFLOP, 0.21 of it in the matmuls; adding that d h term would give 0.246 GFLOP.
    """
    n, L, d, m = s.batch, s.seq_len, s.d, s.m
    per_view_fwd = {
        "attention projections": 3 * 2 * n * L * d * d,
        "attention scores": 2 * n * L * L * d,
        "attention softmax": 5 * n * L * L,
        "attention mix": 2 * n * L * L * d,
        "neuron pre-activations": 2 * n * L * d * m,
        "BReLU": 5 * n * L * m,
        "token sum": n * L * m,
    }
    terms = {f"fwd {k} (2 views)": 2.0 * v for k, v in per_view_fwd.items()}
    terms["fwd logits (2 terms)"] = 2.0 * 2 * n * n * m
    terms["fwd log-softmax (2 terms)"] = 2.0 * 5 * n * n
    terms["bwd d f_online (2 terms)"] = 2.0 * 2 * n * n * m
    terms["bwd softmax - onehot (2 terms)"] = 2.0 * 2 * n * n
    terms["bwd BReLU mask x token grad (2 views)"] = 2.0 * n * L * m
    terms["bwd d W (2 views)"] = 2.0 * 2 * n * L * d * m
    terms["bwd weight decay + SGD update"] = 4.0 * m * d
    return terms


def total_flops(s: Shape) -> float:
    return sum(step_flops(s).values())


# ------------------------------------------------------------------------------------- timing
def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) taken by ``fn()``."""  # CPU: all threads
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def fmt(xs: list[float], digits: int = 1) -> str:
    """Median [min-max]."""
    return f"{statistics.median(xs):.{digits}f} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"


# ------------------------------------------------------------------------------------- peak
def matmul_peak(device: torch.device, size: int, reps: int, threads: int | None):
    """GFLOP/s of float32 ``torch.mm`` of two (size, size) matrices: (per wall s, per CPU s)."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size, device=device)
        b = torch.randn(size, size, device=device)
        inner = 1 if device.type == "cpu" else 20
        run = lambda: [torch.mm(a, b) for _ in range(inner)]  # noqa: E731
        timed(run, device)  # warm-up
        flop = 2.0 * size**3 * inner / 1e9
        times = [timed(run, device) for _ in range(reps)]
        return [flop / w for w, _ in times], [flop / c for _, c in times]
    finally:
        torch.set_num_threads(old)


# -------------------------------------------------------------------------------- the engine
def specs_for(s: Shape, n_replicas: int) -> list[RunSpec]:
    """``n_replicas`` seeds of the shape, with a learning rate that does not diverge at L=8."""
    data = DataConfig(d=s.d, seq_len=s.seq_len)
    model = ModelConfig(m=s.m)
    train = TrainConfig(batch=s.batch, lr=0.05, record_every=10)
    return [RunSpec(data, model, train, seed=seed) for seed in range(n_replicas)]


class EngineRunner:
    """Times ``steps`` SGD steps of R replicas in one :meth:`Replicas.run` call."""

    def __init__(self, s: Shape, n_replicas: int, device, chunk, steps: int, step="auto"):
        self.reps = Replicas(specs_for(s, n_replicas), device=device, chunk=chunk, step=step)
        self.steps, self.n_replicas = steps, n_replicas

    def __call__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a diverged run is not a benchmark
            self.reps.run(self.steps, progress=False)


# ----------------------------------------------------------------------------- the reference
class ReferenceEncoder(nn.Module):
    """The encoder as a plain module: frozen attention, BReLU neurons summed over tokens."""

    def __init__(self, spec: RunSpec):
        super().__init__()
        d, m = spec.data.d, spec.model.m
        g = generator(spec.seed, Stream.INIT)
        self.W = nn.Parameter(torch.randn(m, d, generator=g) * spec.model.init_scale)
        self.register_buffer("WQ", torch.eye(d) * spec.model.attn_scale)
        self.register_buffer("WK", torch.eye(d) * spec.model.attn_scale)
        self.register_buffer("WV", torch.eye(d))
        self.bias_scale = spec.model.kappa_max * spec.data.sigma * math.sqrt(2.0 / d)
        self.ramp = spec.model.ramp_steps

    def bias(self, step: int) -> torch.Tensor:
        with torch.no_grad():
            kappa = min(step / self.ramp, 1.0)
            return kappa * self.bias_scale * (self.W @ self.WV).norm(dim=-1)

    def forward(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (n, L, d) -> (n, m)
        q, k, v = x @ self.WQ.T, x @ self.WK.T, x @ self.WV.T
        h = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        s = h @ self.W.T
        return (F.relu(s - b) - F.relu(-s - b)).sum(dim=1)


def reference_loss(f1: torch.Tensor, f2: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE with a stop-gradient target branch."""

    def one(online, target):
        logits = online @ target.detach().T / tau
        return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()

    return 0.5 * (one(f1, f2) + one(f2, f1))


class ReferenceRunner:
    """One ReferenceEncoder and SGD optimiser per seed, trained one after another."""

    def __init__(self, s: Shape, n_replicas: int, device, steps: int):
        self.specs = specs_for(s, n_replicas)
        self.device, self.steps, self.n_replicas = torch.device(device), steps, n_replicas
        self.models, self.opts, self.gens, self.dicts = [], [], [], []
        for spec in self.specs:
            model = ReferenceEncoder(spec).to(self.device)
            self.models.append(model)
            self.opts.append(
                torch.optim.SGD(
                    model.parameters(), lr=spec.train.lr, weight_decay=spec.train.weight_decay
                )
            )
            self.gens.append(generator(spec.seed, Stream.DATA, self.device))
            self.dicts.append(D.make_dictionary(spec.data, spec.seed, self.device))
        self.step = 0

    def __call__(self) -> None:
        for spec, model, opt, g, dic in zip(
            self.specs, self.models, self.opts, self.gens, self.dicts, strict=True
        ):
            for t in range(self.step, self.step + self.steps):
                x, _ = D.sample_batch(spec.data, dic, spec.train.batch, g)
                x1, x2 = D.mask_views(x, g)
                b = model.bias(t)
                loss = reference_loss(model(x1, b), model(x2, b), spec.train.tau)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if not torch.isfinite(model.W).all():
                raise RuntimeError("the reference diverged")
        self.step += self.steps


def check_reference_matches_engine(s: Shape, device, steps: int = 5) -> float:
    """max |W_reference - W_engine| after ``steps`` steps of seed 0: both compute the same math."""
    ref = ReferenceRunner(s, 1, device, steps)
    ref()
    reps = Replicas(specs_for(s, 1), device=device)
    reps.run(steps, progress=False)
    return float((ref.models[0].W.detach() - reps.params["W"][0]).abs().max())


# --------------------------------------------------------------------------------- the report
def steps_for(s: Shape, n_replicas: int, work_gflop: float) -> int:
    """Steps per repetition: about ``work_gflop`` of useful work, and at least 2 (1 if R>16)."""
    floor = 1 if n_replicas > 16 else 2
    return max(floor, round(work_gflop * 1e9 / total_flops(s) / n_replicas))


@dataclass
class Measured:
    """Model-steps per wall second and per CPU second, one entry per repetition."""

    wall: list[float]
    cpu: list[float]


def measure(runners: dict[str, Callable[[], None]], device, model_steps: int, reps: int):
    """Each runner timed ``reps`` times after one warm-up, interleaved runner by runner."""
    for fn in runners.values():
        timed(fn, device)
    out = {name: Measured([], []) for name in runners}
    for _ in range(reps):
        for name, fn in runners.items():
            wall, cpu = timed(fn, device)
            out[name].wall.append(model_steps / wall)
            out[name].cpu.append(model_steps / max(cpu, 1e-9))
    return out


def ratio(a: Measured, b: Measured, paired: bool) -> str:
    """Wall-time throughput ratio a/b: median of paired ratios, or of medians."""
    if paired:
        return fmt([x / y for x, y in zip(a.wall, b.wall, strict=True)], 2) + " paired"
    return f"{statistics.median(a.wall) / statistics.median(b.wall):.2f}"


def bench_shape(s: Shape, device, args) -> None:
    """Print the table of one shape: reference and engine rows for every R.

    The matmul peak is measured again just before the shape, so that the %peak columns
    compare with the machine's state at that time.
    """
    flops = total_flops(s)
    on_cpu = device.type == "cpu"
    wall, cpu = matmul_peak(device, args.peak_size, args.reps, None)
    peak = (statistics.median(wall), statistics.median(cpu))
    print(
        f"\n-- shape {s.name}: batch {s.batch}, L={s.seq_len}, d={s.d}, m={s.m}; "
        f"{flops / 1e9:.3f} GFLOP per model-step (analytic); matmul peak now "
        f"{peak[0]:.1f} GFLOP/s" + (f", {peak[1]:.1f} per CPU-s --" if on_cpu else " --")
    )
    print(
        f"{'runner':<17}{'R':>3}{'chunk':>6}{'steps':>6}  {'model-steps/s [min-max]':<24}"
        f"{'GFLOP/s':>8}{'%peak':>7}{'  per CPU-s':>12}{'%peak':>7}  vs reference (wall)"
    )
    ref = None

    def row(name, r, chunk, steps, m: Measured, versus=""):
        gf = statistics.median(m.wall) * flops / 1e9
        cpu = f"{statistics.median(m.cpu) * flops / 1e9:>12.1f}{100 * statistics.median(m.cpu) * flops / 1e9 / peak[1]:>6.0f}%"
        print(
            f"{name:<17}{r:>3}{chunk:>6}{steps:>6}  {fmt(m.wall):<24}"
            f"{gf:>8.1f}{100 * gf / peak[0]:>6.0f}%{cpu if on_cpu else '':>19}  {versus}",
            flush=True,
        )

    for r in args.replicas:
        steps = steps_for(s, r, args.work)
        if ref is None:
            # reference, engine and the engine's autograd step interleaved: paired ratios
            runners = {"reference": ReferenceRunner(s, r, device, steps)}
            runners["engine"] = EngineRunner(s, r, device, None, steps)
            runners["engine, autograd"] = EngineRunner(s, r, device, None, steps, "autograd")
            got = measure(runners, device, r * steps, args.reps)
            ref = got["reference"]
            row("reference", r, "-", steps, ref)
            for name in list(runners)[1:]:
                row(
                    name, r, runners[name].reps.chunk, steps, got[name], ratio(got[name], ref, True)
                )
            continue
        default = default_chunk(specs_for(s, 1)[0], r, device)
        for chunk in dict.fromkeys([default, 1, r]):  # the default first, then the others
            eng = EngineRunner(s, r, device, chunk, steps)
            got = measure({"engine": eng}, device, r * steps, args.reps)["engine"]
            name = "engine, default" if chunk == default else "engine"
            row(name, r, eng.reps.chunk, steps, got, ratio(got, ref, False))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer replicas, repetitions and steps")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5, quick 3)")
    p.add_argument(
        "--device", default="auto", help="cpu, cuda or auto (= cpu, plus cuda when present)"
    )
    p.add_argument("--shapes", default="small,paper,large", help=f"subset of {','.join(SHAPES)}")
    p.add_argument("--replicas", default=None, help="R values (default 1,4,16,64; quick 1,4,16)")
    p.add_argument(
        "--work", type=float, default=None, help="GFLOP of useful work per repetition (default 6)"
    )
    p.add_argument("--peak-size", type=int, default=None, help="matmul size (default 2048)")
    args = p.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 5)
    args.work = args.work or (2.0 if args.quick else 6.0)
    args.peak_size = args.peak_size or (1024 if args.quick else 2048)
    rs = args.replicas or ("1,4,16" if args.quick else "1,4,16,64")
    try:
        args.replicas = [int(v) for v in rs.split(",")]
        args.shapes = [SHAPES[v] for v in args.shapes.split(",")]
    except (ValueError, KeyError) as err:
        p.error(f"bad --replicas or --shapes value: {err}")
    if args.reps < 1 or min(args.replicas) < 1 or args.work <= 0:
        p.error("--reps, --replicas and --work must be positive")
    if args.device == "auto":
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    elif args.device in ("cpu", "cuda"):
        if args.device == "cuda" and not torch.cuda.is_available():
            p.error("--device cuda: no CUDA device is available")
        args.devices = [args.device]
    else:
        p.error(f"--device must be cpu, cuda or auto (got {args.device!r})")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    print(f"imbcl engine benchmark -- {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}")
    print(
        f"torch threads {threads} (IMBCL_THREADS={os.environ.get('IMBCL_THREADS', 'unset')}), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, nproc {os.cpu_count()}"
    )
    print(f"start: {load()}")
    print(f"figures: median [min-max] of {args.reps} repetitions after 1 warm-up")
    paper = SHAPES["paper"]
    print(f"\nanalytic FLOPs per model-step, shape {paper.name} (see step_flops):")
    for name, v in step_flops(paper).items():
        print(f"  {name:<42}{v / 1e6:>9.2f} MFLOP")
    print(f"  {'total':<42}{total_flops(paper) / 1e6:>9.2f} MFLOP")
    for dev in args.devices:
        device = torch.device(dev)
        print(f"\n==== device {dev} ====")
        size = args.peak_size
        wall, cpu = matmul_peak(device, size, args.reps, None)
        line = f"matmul peak, fp32 torch.mm {size}^2, {threads} thread(s): {fmt(wall)} GFLOP/s"
        print(line + (f", per CPU-s {fmt(cpu)}" if dev == "cpu" else ""))
        if dev == "cpu" and threads != 2:
            two, _ = matmul_peak(device, size, args.reps, 2)
            print(f"matmul peak, fp32 torch.mm {size}^2, 2 threads (info): {fmt(two)} GFLOP/s")
        diff = check_reference_matches_engine(paper, device)
        print(f"reference vs engine, seed 0, 5 steps of {paper.name}: max |dW| = {diff:.1e}")
        for s in args.shapes:
            bench_shape(s, device, args)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    sys.exit(main())
