"""The setting page's tables: the recipe's defaults with their reasons, what the frozen
attention does, what the bias multiplier kappa means in units of the noise, the chapters'
changes to the recipe, and the seeds each chapter's claims rest on."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from imbcl.engine import data, metrics, model
from imbcl.engine.config import DataConfig, ModelConfig, RunSpec, TrainConfig
from imbcl.engine.streams import Stream, generator
from imbcl.engine.train import Replicas

#: Why each default of the recipe is what it is (fields not listed follow the paper's model).
REASONS = {
    "d": "small enough to train hundreds of runs per build, large enough for 16 features and "
    "dense noise",
    "k_maj": "two groups of equal size, so that group averages compare like with like",
    "k_min": "two groups of equal size, so that group averages compare like with like",
    "rho": "a placeholder: every chapter sets its own ratios (see the atlas)",
    "q": "sparse features: a majority feature is present in one sample out of 1/q",
    "p_token": "a present feature shows in most but not all tokens, so tokens differ",
    "seq_len": "the shortest sequence on which attention mixes several tokens",
    "sigma": "noise of the same total size as one feature, spread over all coordinates",
    "n_corr": "a few correlated directions shared by a sample's tokens: noise that survives "
    "both views",
    "sigma_corr": "correlated noise weaker than a feature",
    "mask": "the paper's augmentation (Wen & Li): one Bernoulli(1/2) mask over the entries of "
    "the data vector, here the whole L x d sequence (see below)",
    "m": "m = 4 K: several neurons for every feature",
    "init_scale": "small initial weights, so that the early stage of learning is visible",
    "attn_scale": "attention that starts near uniform pooling (measured below)",
    "train_attention": "frozen attention isolates the neurons' dynamics, which the paper "
    "analyses; Chapter 1 trains it once to show what changes",
    "bias": "a bias that rises during training, as in the paper's analysis",
    "kappa_max": "a final bias well above a token's noise (in noise units below)",
    "ramp_steps": "the bias reaches its final value halfway through training",
    "steps": "long enough for all three stages of Chapter 1; short enough for the book's "
    "seed counts within its build budget",
    "batch": "127 in-batch negatives per sample; the atlas shows what doubling it changes",
    "lr": "a large step at which the recipe trains stably (a run whose loss diverges fails loudly)",
    "tau": "the temperature of the stop-gradient similarity; 1 keeps the logits of order one",
    "weight_decay": "a penalty large enough to shrink silenced neurons within the run",
    "record_every": "chapters record more finely where they need to",
}


def defaults_table() -> pd.DataFrame:
    """One row per field of the three configs: config, parameter, default, meaning, why."""
    rows = []
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            rows.append(
                {
                    "config": cls.__name__,
                    "parameter": f.name,
                    "default": f.default,
                    "meaning": f.metadata["doc"],
                    "why": REASONS.get(f.name, ""),
                }
            )
    return pd.DataFrame(rows).set_index(["config", "parameter"])


def attention_entropy_at_init(seeds, n: int = 1024) -> pd.DataFrame:
    """Mean attention entropy (nats) of the recipe's frozen encoder per seed, with log L."""
    specs = [RunSpec(seed=s) for s in seeds]
    entropy = metrics.attention_entropy(Replicas(specs, device="cpu"), n)
    uniform = math.log(DataConfig().seq_len)
    return pd.DataFrame(
        {"seed": list(seeds), "entropy (nats)": entropy, "uniform, log L (nats)": uniform}
    ).set_index("seed")


def bias_in_noise_units(n: int = 4096, directions: int = 64, seed: int = 0) -> pd.Series:
    """What the bias unit sqrt(2) sigma ||v|| / sqrt(d) is in units of the noise.

    Noise-only samples (every code zero) of the recipe go through the two masked views and
    the frozen attention; their projections on ``directions`` random unit vectors v are the
    noise part of a neuron's pre-activation. Returns the standard deviation, in bias units, of
    the pre-activation of one token in one view, and of its sum over the L tokens; and the
    recipe's kappa_max in units of each.
    """
    cfg, mcfg = DataConfig(), ModelConfig()
    g = generator(seed, Stream.PROBE)
    dictionary = data.make_dictionary(cfg, seed)
    x, _ = data.sample_batch(cfg, dictionary, n, g, probs=torch.zeros(cfg.k))
    view, _ = data.mask_views(x, g, cfg.mask)  # (n, L, d)
    eye = torch.eye(cfg.d)[None]
    h = model.attention(view[None], mcfg.attn_scale * eye, mcfg.attn_scale * eye, eye)[0]
    v = torch.randn(cfg.d, directions, generator=g)
    v = v / v.norm(dim=0, keepdim=True)
    pre = h @ v  # (n, L, directions)
    unit = math.sqrt(2.0) * cfg.sigma / math.sqrt(cfg.d)
    per_token = float(pre.std(dim=0).mean()) / unit
    summed = float(pre.sum(dim=1).std(dim=0).mean()) / unit
    return pd.Series(
        {
            "s.d. of one token's pre-activation (bias units)": per_token,
            "s.d. of the token-summed pre-activation (bias units)": summed,
            "kappa_max in s.d. of one token": mcfg.kappa_max / per_token,
            "kappa_max in s.d. of the token sum": mcfg.kappa_max / summed,
        }
    )


def theory_check(n: int = 200_000, seed: int = 0) -> float:
    """Var<v, 2 D zeta> / (2 sigma^2 ||v||^2 / d) for isotropic noise zeta and the recipe's
    masks, estimated on ``n`` draws with a fixed unit v: the proposition says 1."""
    cfg = DataConfig()
    g = generator(seed, Stream.PROBE)
    zeta = torch.randn(n, 1, cfg.d, generator=g) * cfg.sigma / math.sqrt(cfg.d)
    view, _ = data.mask_views(zeta, g, cfg.mask)
    v = torch.ones(cfg.d) / math.sqrt(cfg.d)
    return float((view[:, 0] @ v).var()) / (2 * cfg.sigma**2 / cfg.d)


def numbers_for_prose(values: pd.Series) -> dict[str, float]:
    """The bias table's numbers keyed for the page's text."""
    keys = ("per_token", "summed", "kappa_token", "kappa_sum")
    return dict(zip(keys, np.asarray(values, dtype=float), strict=True))


def deviations(profile: str = "full") -> pd.DataFrame:
    """Every change a synthetic chapter makes to the recipe, with the imbalance ratios it runs
    at, why, and where the learnability cliff under that change is measured (the study
    modules' ``regimes``)."""
    from imbcl.report.atlas import chapter_regimes

    regimes = chapter_regimes(profile)
    rows = []
    for (chapter, deviation, reason), group in regimes.groupby(
        ["chapter", "deviation", "reason"], sort=False
    ):
        same_training = deviation.startswith(("records every", "pruned at step"))
        where = "the recipe's (the atlas)" if same_training else f"measured in {chapter}"
        rhos = ", ".join(f"{r:g}" for r in sorted(set(group.rho)))
        rows.append(
            {"chapter": chapter, "change": deviation, "rho": rhos, "why": reason, "cliff": where}
        )
    return pd.DataFrame(rows).set_index("chapter")


def seed_table() -> pd.DataFrame:
    """Per chapter with claims: the seeds per cell in the book (profile "full") and in the
    test suite (profile "small"), the number of registered claims and the fewest seeds any of
    them may rest on."""
    from imbcl.report.book import REPORTS, study_module
    from imbcl.report.registry import for_chapter

    rows = []
    for chapter in REPORTS:
        settings = study_module(chapter).Settings
        specs = for_chapter(chapter)
        rows.append(
            {
                "chapter": chapter,
                "seeds (book)": settings.from_params("full").n_seeds,
                "seeds (tests)": settings.from_params("small").n_seeds,
                "claims": len(specs),
                "fewest seeds a claim allows": min(s.min_seeds for s in specs),
            }
        )
    return pd.DataFrame(rows).set_index("chapter")
