"""SimCLR, magnitude pruning and an SDCLR-style pruned branch, trained as stacked replicas.

Every method of one experiment is trained at once as R = seeds x methods stacked replicas
(parameters carry a leading replica axis, see :mod:`imbcl.images.encoder`). Replicas of the
same seed share the initialisation, the data split (:class:`imbcl.images.splits.Split`) and
the stream of mini-batches and augmentations, so the differences between methods on a seed
are paired:

* ``SimCLR``: symmetric InfoNCE between two augmented views;
* ``prune r``: SimCLR; at the warm-up step the smallest-magnitude fraction r of the pruned
  weights is zeroed once and the mask is kept for the rest of training;
* ``random r``: the same with a uniformly random mask (control: does magnitude matter?);
* ``SDCLR r``: the second view goes through a magnitude-pruned copy of the network (mask
  recomputed from the dense weights every ``sdclr_every`` steps), the first through the
  dense network; the dense weights are trained through both branches (Jiang et al., 2021);
* ``balanced``: SimCLR pre-trained on the balanced reference set of the same size.

Optimisation is AdamW on the sum over replicas of their losses (replicas do not interact).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from imbcl.engine.config import ConfigError
from imbcl.engine.loss import symmetric_info_nce
from imbcl.engine.prune import magnitude_mask, random_mask
from imbcl.engine.streams import Stream, generator
from imbcl.images.augment import apply_augment, sample_augment
from imbcl.images.config import ImageDataConfig, Method, SimCLRConfig, check_schedule
from imbcl.images.datasets import ImageSet
from imbcl.images.encoder import PATCH, init_params, project, represent, to_tokens, token_shape
from imbcl.images.splits import Split, check_class_sizes, make_split

# ---------------------------------------------------------------------------------------------
# Pruning masks on the encoder's parameters
# ---------------------------------------------------------------------------------------------


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
# The experiment: replicas, their data and their state
# ---------------------------------------------------------------------------------------------


@dataclass
class Experiment:
    """R = len(seeds) * len(methods) replicas; replica r = s * M + j has seed seeds[s] and
    method methods[j]. Built by :func:`build`; trained by :func:`train`."""

    data: ImageDataConfig
    cfg: SimCLRConfig
    methods: list[Method]
    seeds: list[int]
    splits: list[Split]
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


def check_experiment(
    data: ImageDataConfig,
    cfg: SimCLRConfig,
    methods: Sequence[Method],
    sets: tuple[ImageSet, ImageSet | None],
) -> None:
    """The bounds between settings that need the methods or the loaded images (see
    :func:`imbcl.images.config.check_schedule` and
    :func:`imbcl.images.splits.check_class_sizes`); ConfigError naming the parameter."""
    pool_set, test_set = sets
    if pool_set.name != data.dataset:
        raise ConfigError(f"sets must hold {data.dataset!r} images (got {pool_set.name!r})")
    check_schedule(cfg, methods)
    test_counts = None if test_set is None else test_set.class_counts
    check_class_sizes(
        pool_set.name, pool_set.class_counts, test_counts, data.n_max, data.n_probe, data.n_test
    )


def build(
    data: ImageDataConfig,
    cfg: SimCLRConfig,
    methods: list[Method],
    seeds: list[int],
    sets: tuple[ImageSet, ImageSet | None],
    device: torch.device | str = "cpu",
) -> Experiment:
    """Check the settings against each other and the images (:func:`check_experiment`), draw
    each seed's split of ``sets`` (from :func:`imbcl.images.datasets.load_dataset`) and
    initialise all replicas."""
    check_experiment(data, cfg, methods, sets)
    pool_set, test_set = sets
    test_labels = None if test_set is None else test_set.labels
    splits = [
        make_split(
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
    n_tokens, token_dim = token_shape(data.dataset)
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
        PATCH[data.dataset],
        params,
        {n: v.clone() for n, v in ones.items()},
        {n: v.clone() for n, v in ones.items()},
        loss_steps=[],
        losses=[],
    )


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of run ``seed``'s mini-batch and augmentations at ``step``.

    Its seed is child ``step`` of stream ``Stream.IMAGE_BATCH`` (numpy ``SeedSequence`` with spawn
    key (step,)), so the streams of all steps are independent of each other and of the
    run's other streams, and any step's draws can be made without replaying earlier steps.
    """
    seq = np.random.SeedSequence([int(seed), Stream.IMAGE_BATCH], spawn_key=(int(step),))
    return torch.Generator().manual_seed(int(seq.generate_state(2, np.uint64)[0] >> 1))


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
        views_a.append(sample_augment(exp.data.dataset, batch, shape, g))
        views_b.append(sample_augment(exp.data.dataset, batch, shape, g))

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


def _views(exp: Experiment, step: int, table, sizes, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """This step's two augmented views as tokens, each (R, B, L, t)."""
    u, aug_a, aug_b = _draw_step(exp, step, tuple(exp.pool.shape[1:]))
    idx = table[rows, (u * sizes[:, None]).long().clamp(max=table.shape[1] - 1)]
    x = exp.pool[idx]  # (R, B, C, H, W)
    xa = to_tokens(apply_augment(exp.data.dataset, x, aug_a), exp.patch)
    xb = to_tokens(apply_augment(exp.data.dataset, x, aug_b), exp.patch)
    return xa, xb


def train(exp: Experiment, progress: bool = False) -> Experiment:
    """Train every replica for ``cfg.steps`` steps from the current state (in place).

    Loss records: ``exp.loss_steps`` and ``exp.losses`` (one (R,) array per record, nats).
    Warns if a loss becomes non-finite.
    """
    cfg = exp.cfg
    table, sizes = _pretrain_table(exp)
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
        xa, xb = _views(exp, step, table, sizes, rows)
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
