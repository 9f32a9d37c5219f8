"""The random streams of one run seed, enumerated once for the whole package.

Every random draw in imbcl comes from a generator seeded by a run seed *and* a stream number,
so the draws of different purposes (the dictionary, the initial weights, the data, the probe,
...) are independent, and a replica draws the same numbers alone or inside any group.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np
import torch


@unique
class Stream(IntEnum):
    """What a random stream is used for; the value is mixed into the seed."""

    DICTIONARY = 0  # the orthonormal dictionary of the synthetic data model
    INIT = 1  # initial neuron weights
    DATA = 2  # training batches and their masked views
    PROBE = 3  # samples drawn to fit and score linear probes
    PRUNE = 4  # random pruning masks
    IMAGE_SPLIT = 5  # Chapter 5: which images pre-train, probe and test
    ICA = 6  # unlabelled tokens that the estimated (ICA) basis is fit on
    COMPLEMENT = 7  # random completions of a partial basis (pruning controls)
    IMAGE_INIT = 10  # Chapter 5: initial encoder weights
    FEW_SHOT = 11  # Chapter 5: few-shot probe draws
    IMAGE_MASK = 12  # Chapter 5: random pruning masks
    IMAGE_BATCH = 13  # Chapter 5: per-step mini-batches and augmentations


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for ``stream`` of run ``seed`` (numpy ``SeedSequence([seed, stream])``)."""
    return int(np.random.SeedSequence([seed, int(stream)]).generate_state(2, np.uint64)[0] >> 1)


def generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded for ``stream`` of run ``seed``."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream))


def numpy_rng(seed: int, stream: int) -> np.random.Generator:
    """A numpy generator for ``stream`` of run ``seed`` (``default_rng([seed, stream])``)."""
    return np.random.default_rng([int(seed), int(stream)])
