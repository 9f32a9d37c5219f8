"""SimCLR, magnitude pruning and an SDCLR-style pruned branch on long-tailed images.

Every method of one experiment is trained at once as R = seeds x methods stacked replicas
(parameters carry a leading replica axis, as in :mod:`imbcl.model`). Replicas of the same
seed share the initialisation, the data split (:class:`imbcl.images.Split`) and the stream of
mini-batches and augmentations, so the differences between methods on a seed are paired:

* ``SimCLR``: symmetric InfoNCE between two augmented views;
* ``prune r``: SimCLR; at the warm-up step the smallest-magnitude fraction r of the pruned
  weights is zeroed once and the mask is kept for the rest of training;
* ``random r``: the same with a uniformly random mask (control: does magnitude matter?);
* ``SDCLR r``: the second view goes through a magnitude-pruned copy of the network (mask
  recomputed from the dense weights every ``sdclr_every`` steps), the first through the
  dense network; the dense weights are trained through both branches (Jiang et al., 2021);
* ``balanced``: SimCLR pre-trained on the balanced reference set of the same size.

The encoder is a one-layer Transformer: image tokens (rows or patches, (L, t)) are embedded
(E: t -> d, plus a learned position table), pass one single-head softmax attention layer with
a residual connection, then m ReLU neurons; f(X) (m,) is their mean over tokens and is the
representation that the linear probes read. A two-layer projection head (m -> m -> p) feeds
the InfoNCE loss on L2-normalised outputs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from imbcl import images as im
from imbcl.engine.config import ConfigError, Validated, validated_field
from imbcl.engine.loss import symmetric_info_nce
from imbcl.engine.metrics import mean_sd
from imbcl.engine.params import check_count, parse_grid
from imbcl.engine.prune import magnitude_mask, random_mask
from imbcl.engine.streams import Stream, generator

#: Parameters that pruning may target (their rows are what a mask zeroes).
PRUNABLE = ("E", "WQ", "WK", "WV", "W")
METRICS = ("overall", "head", "tail", "gap")


@dataclass(frozen=True)
class ImageDataConfig(Validated):
    """The long-tailed view of an image set (see :func:`imbcl.images.make_split`)."""

    dataset: str = validated_field("digits", choices=im.DATASETS, doc="image set")
    rho: float = validated_field(10.0, lo=1, doc="imbalance ratio n_max / n_min of pre-training")
    n_max: int = validated_field(120, lo=1, doc="pre-training images of the most frequent class")
    n_probe: int = validated_field(100, lo=1, doc="labelled probe images per class (full probe)")
    n_test: int = validated_field(50, lo=1, doc="held-out test images per class")
    k_shot: int = validated_field(5, lo=1, doc="labelled images per class in a few-shot probe")
    n_draws: int = validated_field(5, lo=1, doc="few-shot draws averaged per replica")
    group: int = validated_field(3, lo=1, doc="classes in the head and in the tail")

    def _check_joint(self) -> None:
        if self.k_shot > self.n_probe:
            raise ConfigError(f"k_shot must be <= n_probe = {self.n_probe} (got {self.k_shot})")


@dataclass(frozen=True)
class SimCLRConfig(Validated):
    """Encoder sizes and optimisation (AdamW on symmetric InfoNCE)."""

    d: int = validated_field(32, lo=1, hi=4096, doc="token embedding width")
    m: int = validated_field(64, lo=1, hi=65536, doc="ReLU neurons = representation size")
    proj: int = validated_field(32, lo=1, hi=4096, doc="projection head output size")
    steps: int = validated_field(600, lo=1, doc="training steps for every method")
    batch: int = validated_field(256, lo=2, doc="images per step (negatives: batch - 1)")
    lr: float = validated_field(3e-3, lo=0, lo_open=True, doc="AdamW learning rate")
    tau: float = validated_field(0.2, lo=0, lo_open=True, doc="InfoNCE temperature")
    weight_decay: float = validated_field(1e-4, lo=0, doc="AdamW decoupled weight decay")
    warmup: float = validated_field(
        0.3, lo=0, hi=1, hi_open=True, doc="fraction of steps before pruning"
    )
    sdclr_every: int = validated_field(50, lo=1, doc="steps between SDCLR branch-mask updates")
    prune: str = validated_field("W", doc="comma-separated parameters that pruning targets")
    record_every: int = validated_field(10, lo=1, doc="steps between loss records")

    @property
    def prune_step(self) -> int:
        return int(round(self.warmup * self.steps))

    @property
    def prune_params(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.prune.split(","))

    def _check_joint(self) -> None:
        names = self.prune_params
        if any(p not in PRUNABLE for p in names) or not names:
            raise ConfigError(
                f"prune must name parameters among {', '.join(PRUNABLE)} (got {self.prune!r})"
            )
        repeated = sorted({p for p in names if names.count(p) > 1})
        if repeated:
            raise ConfigError(
                f"prune names {', '.join(repeated)} more than once (got {self.prune!r})"
            )


@dataclass(frozen=True)
class Method:
    """One training method: ``kind`` in simclr, magnitude, random, sdclr, balanced."""

    kind: str
    rate: float = 0.0

    @property
    def name(self) -> str:
        label = {"magnitude": "prune", "random": "random", "sdclr": "SDCLR"}
        if self.kind in label:
            return f"{label[self.kind]} {self.rate:g}"
        return {"simclr": "SimCLR", "balanced": "balanced"}[self.kind]


def make_methods(rates: str, random_rates: str, sdclr_rates: str) -> list[Method]:
    """SimCLR, magnitude pruning at ``rates``, random pruning at ``random_rates``, SDCLR at
    ``sdclr_rates`` (comma-separated strings of rates in [0, 1), each possibly empty), then the
    balanced reference."""
    grids = (
        ("magnitude", rates, "rates"),
        ("random", random_rates, "random_rates"),
        ("sdclr", sdclr_rates, "sdclr_rates"),
    )
    methods = [
        Method(kind, r)
        for kind, text, name in grids
        for r in parse_grid(text, name, lo=0, hi=1, hi_open=True, allow_empty=True)
    ]
    return [Method("simclr"), *methods, Method("balanced")]


def method_rates(methods: list[Method], kind: str) -> list[float]:
    """The rates of the methods of ``kind`` (e.g. 'magnitude', 'sdclr'), in order."""
    return [m.rate for m in methods if m.kind == kind]


def check_seeds(n_seeds, first_seed=0) -> list[int]:
    """[first_seed, ..., first_seed + n_seeds - 1]; n_seeds >= 1, first_seed >= 0."""
    n_seeds = check_count(n_seeds, "n_seeds")
    first_seed = check_count(first_seed, "first_seed", lo=0)
    return list(range(first_seed, first_seed + n_seeds))


# ---------------------------------------------------------------------------------------------
# Random streams
# ---------------------------------------------------------------------------------------------


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of run ``seed``'s mini-batch and augmentations at ``step``.

    Its seed is child ``step`` of stream ``Stream.IMAGE_BATCH`` (numpy ``SeedSequence`` with spawn
    key (step,)), so the streams of all steps are independent of each other and of the
    run's other streams, and any step's draws can be made without replaying earlier steps.
    """
    seq = np.random.SeedSequence([int(seed), Stream.IMAGE_BATCH], spawn_key=(int(step),))
    return torch.Generator().manual_seed(int(seq.generate_state(2, np.uint64)[0] >> 1))


# ---------------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------------


def init_params(seed: int, n_tokens: int, token_dim: int, cfg: SimCLRConfig) -> dict:
    """One replica's initial parameters (leading axis 1), a function of ``seed`` only.

    E (1, t, d), P (1, L, d), WQ/WK/WV (1, d, d), W (1, m, d), b (1, m), G1 (1, m, m),
    G2 (1, p, m); matrices are N(0, 1/fan_in), the position table N(0, 0.1^2), b = 0.
    """
    g = generator(int(seed), Stream.IMAGE_INIT)
    d, m, p = cfg.d, cfg.m, cfg.proj

    def normal(*shape, std):
        return std * torch.randn((1, *shape), generator=g)

    return {
        "E": normal(token_dim, d, std=1 / math.sqrt(token_dim)),
        "P": normal(n_tokens, d, std=0.1),
        "WQ": normal(d, d, std=1 / math.sqrt(d)),
        "WK": normal(d, d, std=1 / math.sqrt(d)),
        "WV": normal(d, d, std=1 / math.sqrt(d)),
        "W": normal(m, d, std=1 / math.sqrt(d)),
        "b": torch.zeros(1, m),
        "G1": normal(m, m, std=1 / math.sqrt(m)),
        "G2": normal(p, m, std=1 / math.sqrt(m)),
    }


def represent(params: dict, tokens: torch.Tensor) -> torch.Tensor:
    """f(X) (R, n, m): tokens (R, n, L, t) -> embedding + attention (residual) -> ReLU
    neurons -> mean over the L tokens."""
    z = tokens @ params["E"][:, None] + params["P"][:, None]
    q, k, v = (torch.einsum("rnld,red->rnle", z, params[w]) for w in ("WQ", "WK", "WV"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(z.shape[-1])
    h = z + torch.softmax(scores, dim=-1) @ v
    s = F.relu(torch.einsum("rnld,rmd->rnlm", h, params["W"]) + params["b"][:, None, None])
    return s.mean(dim=2)


def project(params: dict, f: torch.Tensor) -> torch.Tensor:
    """Unit-norm projection g(f) (R, n, p) = normalise(G2 relu(G1 f))."""
    hidden = F.relu(torch.einsum("rnm,rkm->rnk", f, params["G1"]))
    return F.normalize(torch.einsum("rnk,rpk->rnp", hidden, params["G2"]), dim=-1)


def _flat_target(params: dict, names: tuple[str, ...]) -> torch.Tensor:
    """(R, 1, N) the targeted weights of every replica, concatenated."""
    return torch.cat([params[n].flatten(1) for n in names], dim=1)[:, None]


def _split_target(flat: torch.Tensor, params: dict, names: tuple[str, ...]) -> dict:
    """Inverse of :func:`_flat_target` for a mask (R, 1, N) -> {name: (R, ...)}."""
    out, start = {}, 0
    for n in names:
        size = params[n][0].numel()
        out[n] = flat[:, 0, start : start + size].reshape(params[n].shape)
        start += size
    return out


def magnitude_masks(params: dict, names: tuple[str, ...], rates: torch.Tensor) -> dict:
    """{name: (R, ...) float mask}: per replica, the smallest-|w| fraction rates[r] of the
    targeted weights (ranked jointly across ``names``) is zeroed."""
    flat = _flat_target(params, names)
    masks = torch.cat(
        [magnitude_mask(flat[r : r + 1], float(rates[r]), "global") for r in range(len(rates))]
    )
    return _split_target(masks, params, names)


def random_masks(params: dict, names: tuple[str, ...], rates, seeds) -> dict:
    """{name: (R, ...)}: per replica a uniformly random mask with the same counts as
    :func:`magnitude_masks`, drawn from stream ``Stream.IMAGE_MASK`` of run seed seeds[r]."""
    flat = _flat_target(params, names)
    device = flat.device
    rows = []
    for r in range(len(rates)):
        g = generator(int(seeds[r]), Stream.IMAGE_MASK, device)
        rows.append(random_mask((1, 1, flat.shape[-1]), float(rates[r]), "global", g))
    return _split_target(torch.cat(rows), params, names)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class Experiment:
    """R = len(seeds) * len(methods) replicas; replica r = s * M + j has seed seeds[s] and
    method methods[j]. Built by :func:`build`; trained by :func:`train`."""

    data: ImageDataConfig
    cfg: SimCLRConfig
    methods: list[Method]
    seeds: list[int]
    splits: list[im.Split]
    pool: torch.Tensor  # (N, C, H, W) pre-training and probe images
    pool_labels: np.ndarray
    test: torch.Tensor  # (N_test, C, H, W)
    test_labels: np.ndarray
    patch: tuple[int, int]
    params: dict
    keep: dict  # {name: (R, ...)} masks held on the weights (pruning)
    branch: dict  # {name: (R, ...)} masks of the second view's branch (SDCLR)
    step: int = 0
    loss_steps: list | None = None
    losses: list | None = None

    @property
    def n_replicas(self) -> int:
        return len(self.seeds) * len(self.methods)

    @property
    def device(self) -> torch.device:
        return self.pool.device

    def replica_seed(self) -> np.ndarray:
        """(R,) position in ``seeds`` of each replica."""
        return np.repeat(np.arange(len(self.seeds)), len(self.methods))

    def replica_method(self) -> list[Method]:
        return self.methods * len(self.seeds)


def load(data: ImageDataConfig, root=None, download: bool = False):
    """(pool, test) image sets for ``data.dataset`` (see :func:`imbcl.images.load_dataset`);
    a missing CIFAR-10 raises FileNotFoundError saying how to get it."""
    return im.load_dataset(data.dataset, root, download)


def build(
    data: ImageDataConfig,
    cfg: SimCLRConfig,
    methods: list[Method],
    seeds: list[int],
    sets: tuple[im.ImageSet, im.ImageSet | None],
    device: torch.device | str = "cpu",
) -> Experiment:
    """Draw each seed's split of ``sets`` (from :func:`load`) and initialise all replicas."""
    pool_set, test_set = sets
    test_labels = None if test_set is None else test_set.labels
    splits = [
        im.make_split(
            pool_set.labels,
            pool_set.n_classes,
            data.rho,
            data.n_max,
            data.n_probe,
            data.n_test,
            seed,
            test_labels=test_labels,
            group=data.group,
        )
        for seed in seeds
    ]
    test_images = pool_set.images if test_set is None else test_set.images
    patch = im.PATCH[data.dataset]
    n_tokens, token_dim = im.token_shape(data.dataset)
    per_seed = [init_params(s, n_tokens, token_dim, cfg) for s in seeds]
    params = {
        k: torch.cat([p[k] for p in per_seed])
        .repeat_interleave(len(methods), dim=0)
        .to(device)
        .requires_grad_(True)
        for k in per_seed[0]
    }
    names = cfg.prune_params
    ones = {n: torch.ones_like(params[n], requires_grad=False) for n in names}
    return Experiment(
        data,
        cfg,
        list(methods),
        list(seeds),
        splits,
        torch.tensor(pool_set.images, device=device),
        pool_set.labels,
        torch.tensor(test_images, device=device),
        test_set.labels if test_set is not None else pool_set.labels,
        patch,
        params,
        {n: v.clone() for n, v in ones.items()},
        {n: v.clone() for n, v in ones.items()},
        loss_steps=[],
        losses=[],
    )


def _pretrain_table(exp: Experiment) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, n_max_pool) pool indices of each replica's pre-training set, padded, and (R,) sizes."""
    sets = []
    for s, method in zip(exp.replica_seed(), exp.replica_method(), strict=True):
        split = exp.splits[s]
        sets.append(split.balanced if method.kind == "balanced" else split.pretrain)
    size = max(len(x) for x in sets)
    table = np.stack([np.pad(x, (0, size - len(x)), mode="edge") for x in sets])
    sizes = np.array([len(x) for x in sets])
    return torch.as_tensor(table, device=exp.device), torch.as_tensor(sizes, device=exp.device)


def _draw_step(exp: Experiment, step: int, shape) -> tuple[torch.Tensor, dict, dict]:
    """This step's random draws per seed (from :func:`step_generator`), indexed per replica:
    uniforms (R, B) choosing the images, and augmentation parameters of view a and view b
    (leading axes (R, B))."""
    batch, seed_of = exp.cfg.batch, torch.as_tensor(exp.replica_seed())
    us, views_a, views_b = [], [], []
    for seed in exp.seeds:
        g = step_generator(seed, step)
        us.append(torch.rand(batch, generator=g))
        views_a.append(im.sample_augment(exp.data.dataset, batch, shape, g))
        views_b.append(im.sample_augment(exp.data.dataset, batch, shape, g))

    def per_replica(draws):
        return {k: torch.stack([d[k] for d in draws])[seed_of].to(exp.device) for k in draws[0]}

    u = torch.stack(us)[seed_of].to(exp.device)
    return u, per_replica(views_a), per_replica(views_b)


def _kind_mask(exp: Experiment, kind: str) -> np.ndarray:
    return np.array([m.kind == kind for m in exp.replica_method()])


def _rates(exp: Experiment) -> torch.Tensor:
    return torch.tensor([m.rate for m in exp.replica_method()])


def _prune_once(exp: Experiment) -> None:
    """At the warm-up step: fix the kept masks of the magnitude and random replicas."""
    names, rates = exp.cfg.prune_params, _rates(exp)
    with torch.no_grad():
        mag = magnitude_masks(exp.params, names, rates)
        seeds = [exp.seeds[s] for s in exp.replica_seed()]
        rnd = random_masks(exp.params, names, rates, seeds)
        for kind, masks in (("magnitude", mag), ("random", rnd)):
            sel = torch.as_tensor(_kind_mask(exp, kind), device=exp.device)
            for n in names:
                exp.keep[n][sel] = masks[n][sel]
                exp.params[n][sel] *= masks[n][sel]


def _update_branch(exp: Experiment) -> None:
    """SDCLR: recompute the branch masks from the current dense weights."""
    sel = torch.as_tensor(_kind_mask(exp, "sdclr"), device=exp.device)
    if not bool(sel.any()):
        return
    with torch.no_grad():
        masks = magnitude_masks(exp.params, exp.cfg.prune_params, _rates(exp))
        for n in exp.cfg.prune_params:
            exp.branch[n][sel] = masks[n][sel]


def _optimizer(exp: Experiment) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        list(exp.params.values()), lr=exp.cfg.lr, weight_decay=exp.cfg.weight_decay
    )


def train(exp: Experiment, progress: bool = False) -> Experiment:
    """Train every replica for ``cfg.steps`` steps from the current state (in place).

    Loss records: ``exp.loss_steps`` and ``exp.losses`` (one (R,) array per record).
    Warns if a loss becomes non-finite.
    """
    cfg = exp.cfg
    table, sizes = _pretrain_table(exp)
    shape = tuple(exp.pool.shape[1:])
    opt = _optimizer(exp)
    rows = torch.arange(exp.n_replicas, device=exp.device)[:, None]
    iterator = range(exp.step, cfg.steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator)
    for step in iterator:
        if step == cfg.prune_step:
            _prune_once(exp)
        if step % cfg.sdclr_every == 0:
            _update_branch(exp)
        u, aug_a, aug_b = _draw_step(exp, step, shape)
        idx = table[rows, (u * sizes[:, None]).long().clamp(max=table.shape[1] - 1)]
        x = exp.pool[idx]  # (R, B, C, H, W)
        xa = im.to_tokens(im.apply_augment(exp.data.dataset, x, aug_a), exp.patch)
        xb = im.to_tokens(im.apply_augment(exp.data.dataset, x, aug_b), exp.patch)
        branch = {k: v * exp.branch[k] if k in exp.branch else v for k, v in exp.params.items()}
        za = project(exp.params, represent(exp.params, xa))
        zb = project(branch, represent(branch, xb))
        loss = symmetric_info_nce(za, zb, cfg.tau)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            for n, mask in exp.keep.items():
                exp.params[n].mul_(mask)
        if step % cfg.record_every == 0 or step == cfg.steps - 1:
            values = loss.detach().cpu().numpy()
            if not np.isfinite(values).all():
                warnings.warn(f"non-finite loss at step {step}", RuntimeWarning, stacklevel=2)
            exp.loss_steps.append(step)
            exp.losses.append(values)
    exp.step = cfg.steps
    return exp


# ---------------------------------------------------------------------------------------------
# Evaluation: linear probes on frozen features
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def features(exp: Experiment, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """f(X) (R, n, m) of each replica on its own images (R, n, C, H, W), in chunks of n."""
    out = [
        represent(exp.params, im.to_tokens(images[:, i : i + chunk], exp.patch))
        for i in range(0, images.shape[1], chunk)
    ]
    return torch.cat(out, dim=1)


def fit_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, max_iter: int = 200):
    """Multinomial logistic regressions fit independently on P problems at once.

    x (P, n, m) features, y (P, n) labels. Inputs are standardised with each problem's
    training mean and s.d.; the objective is mean cross-entropy + ||W||^2 / (2 n), which is
    scikit-learn's LogisticRegression default (C = 1). Solved by L-BFGS on the (separable)
    sum over problems. Returns a function mapping (P, n', m) features to (P, n') predictions.
    """
    mean, sd = x.mean(dim=1, keepdim=True), x.std(dim=1, keepdim=True) + 1e-6
    xs = (x - mean) / sd
    n_problems, n, m = x.shape
    weight = torch.zeros(n_problems, m, n_classes, device=x.device, requires_grad=True)
    bias = torch.zeros(n_problems, 1, n_classes, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )
    target = F.one_hot(y, n_classes).to(x.dtype)

    def closure():
        opt.zero_grad()
        logits = xs @ weight + bias
        ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean(-1)
        loss = (ce + weight.pow(2).sum(dim=(1, 2)) / (2 * n)).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w, b = weight.detach(), bias.detach()
    return lambda z: (((z - mean) / sd) @ w + b).argmax(dim=-1)


def class_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(P, C) per-class accuracy of predictions (P, n) against labels (P, n)."""
    hits = (pred == y).float()
    onehot = F.one_hot(y, n_classes).float()  # (P, n, C)
    return torch.einsum("pn,pnc->pc", hits, onehot) / onehot.sum(1)


def _summaries(acc: np.ndarray, split: im.Split) -> dict:
    """Overall, head, tail accuracy and head - tail gap (percent) from per-class acc (C,)."""
    head, tail = acc[split.head].mean(), acc[split.tail].mean()
    return {"overall": 100 * acc.mean(), "head": 100 * head, "tail": 100 * tail,
            "gap": 100 * (head - tail)}  # fmt: skip


def evaluate(exp: Experiment) -> pd.DataFrame:
    """One row per (seed, method, probe) (and the run's rho): overall, head and tail accuracy
    and the head - tail gap, in percent.

    ``probe`` is 'few-shot' (k_shot labelled images per class, per-class accuracies averaged
    over n_draws draws shared by the seed's methods) or 'full' (n_probe per class). Probes
    read frozen f(X) and are scored on the seed's balanced held-out test images.
    """
    data, seed_of = exp.data, exp.replica_seed()
    n_classes = len(exp.splits[0].order)
    probe_idx = torch.as_tensor(np.stack([exp.splits[s].probe for s in seed_of]))
    test_idx = torch.as_tensor(np.stack([exp.splits[s].test for s in seed_of]))
    f_probe = features(exp, exp.pool[probe_idx.to(exp.device)])
    f_test = features(exp, exp.test[test_idx.to(exp.device)])
    y_probe = torch.as_tensor(exp.pool_labels[probe_idx.numpy()], device=exp.device)
    y_test = torch.as_tensor(exp.test_labels[test_idx.numpy()], device=exp.device)
    n_rep = exp.n_replicas
    results = {"full": None, "few-shot": None}
    predict = fit_probe(f_probe, y_probe, n_classes)
    results["full"] = class_accuracy(predict(f_test), y_test, n_classes)[:, None]
    draws = [
        im.few_shot_draws(exp.pool_labels[exp.splits[s].probe], data.k_shot, data.n_draws, seed)
        for s, seed in enumerate(exp.seeds)
    ]
    pos = torch.as_tensor(np.stack([draws[s] for s in seed_of]), device=exp.device)  # (R, D, k)
    rows = torch.arange(n_rep, device=exp.device)[:, None, None]
    x_few = f_probe[rows, pos].flatten(0, 1)  # (R*D, k, m)
    y_few = y_probe[rows, pos].flatten(0, 1)
    predict = fit_probe(x_few, y_few, n_classes)
    f_rep = f_test.repeat_interleave(data.n_draws, dim=0)
    y_rep = y_test.repeat_interleave(data.n_draws, dim=0)
    acc = class_accuracy(predict(f_rep), y_rep, n_classes)
    results["few-shot"] = acc.reshape(n_rep, data.n_draws, n_classes)
    records = []
    for probe, acc in results.items():
        acc = acc.mean(dim=1).cpu().numpy()  # (R, C), averaged over draws
        for r, method in enumerate(exp.replica_method()):
            split = exp.splits[seed_of[r]]
            records.append(
                {"rho": data.rho, "seed": split.seed, "method": method.name, "probe": probe}
                | _summaries(acc[r], split)
            )
    return pd.DataFrame.from_records(records)


def _keys(frame: pd.DataFrame) -> list[str]:
    """Columns that identify a row besides the method (rho, seed, probe)."""
    return [c for c in frame.columns if c not in METRICS and c != "method"]


def paired_deltas(results: pd.DataFrame, reference: str = "SimCLR") -> pd.DataFrame:
    """Per (rho, seed, probe, method): each metric minus ``reference``'s on the same rho,
    seed and probe (the same split, initialisation and mini-batches)."""
    keys = _keys(results)
    ref = results[results.method == reference].set_index(keys)[list(METRICS)]
    others = results[results.method != reference].set_index(keys)
    delta = others[list(METRICS)] - ref.reindex(others.index)
    return delta.assign(method=others["method"]).reset_index()


def _groups(frame: pd.DataFrame, order: list[str]):
    """(key tuple, rows) per (rho, probe, method), methods in ``order``."""
    outer = [c for c in _keys(frame) if c != "seed"]
    for key, grp in frame.groupby(outer, sort=True):
        for method in [m for m in order if m in set(grp.method)]:
            yield (*key, method), grp[grp.method == method]


def _improved(v: np.ndarray, metric: str) -> np.ndarray:
    return (v < 0) if metric == "gap" else (v > 0)


def _summary_table(frame: pd.DataFrame, order: list[str], cell) -> pd.DataFrame:
    """Per (rho, probe, method): ``cell(metric, values over seeds)`` for each metric."""
    rows = []
    for key, grp in _groups(frame, order):
        row = dict(zip([c for c in _keys(frame) if c != "seed"] + ["method"], key, strict=True))
        for metric in METRICS:
            row[metric] = cell(metric, grp[metric].to_numpy())
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.set_index([c for c in table.columns if c not in METRICS])


def delta_table(deltas: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Per (rho, probe, method): 'mean ± sd (k/n)' of each metric's paired delta, with k the
    seeds that improved (delta > 0; delta < 0 for the gap). Methods in ``order``."""
    order = list(dict.fromkeys(deltas.method)) if order is None else order

    def cell(metric, v):
        k = int(_improved(v, metric).sum())
        mean, sd = mean_sd(v)
        return f"{mean:+.2f} ± {sd:.2f} ({k}/{len(v)})"

    return _summary_table(deltas, order, cell)


def accuracy_table(results: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per (rho, probe, method): 'mean ± sd' over seeds of each metric (percent, unpaired)."""

    def cell(metric, v):
        mean, sd = mean_sd(v)
        return f"{mean:.1f} ± {sd:.1f}"

    return _summary_table(results, order, cell)


def delta_values(deltas: pd.DataFrame, method: str, metric: str, **where) -> np.ndarray:
    """The paired deltas of ``method`` on ``metric`` over seeds, rows filtered by ``where``
    (e.g. probe='few-shot', rho=10); raises KeyError if none match."""
    sel = deltas.method == method
    for column, value in where.items():
        sel &= deltas[column] == value
    if not sel.any():
        raise KeyError(f"no paired deltas for method={method!r}, {where}")
    return deltas.loc[sel, metric].to_numpy()


def plot_paired(ax, deltas: pd.DataFrame, metric: str, order: list[str], **where) -> None:
    """One column per method: each seed's paired delta (dots) and mean ± sd (bar), in points;
    rows filtered by ``where`` (e.g. probe='full', rho=10)."""
    rng = np.random.default_rng(0)
    names = [m for m in order if m in set(deltas.method)]
    for i, method in enumerate(names):
        v = delta_values(deltas, method, metric, **where)
        x = i + rng.uniform(-0.15, 0.15, size=v.size)
        ax.scatter(x, v, s=10, alpha=0.6, color="0.45", lw=0)
        mean, sd = mean_sd(v)
        ax.errorbar(i + 0.3, mean, yerr=sd, fmt="o", color="C0", ms=4, capsize=3)
    ax.axhline(0.0, color="0.2", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")


def step_flops(cfg: SimCLRConfig, n_tokens: int, token_dim: int) -> float:
    """Approximate floating-point operations of one training step of one replica whose images
    are ``n_tokens`` tokens of ``token_dim`` values (see :func:`imbcl.images.token_shape`).

    Counts the matrix products of the encoder and head (embedding, Q/K/V, attention scores
    and mixing, neurons, two head layers) for two views, times 3 for forward + backward, times
    2 operations per multiply-add; element-wise work, augmentation and the loss are ignored.
    """
    b, n, t, d, m, p = cfg.batch, n_tokens, token_dim, cfg.d, cfg.m, cfg.proj
    macs = b * n * (t * d + 3 * d * d + 2 * n * d + d * m) + b * (m * m + m * p)
    return 2.0 * 3 * 2 * macs
