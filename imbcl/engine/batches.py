"""The batch stream: a fresh batch and its two masked views per replica and step.

Each replica draws its random numbers from its own data generator
(:attr:`ReplicaState.data_gens`), so its batches do not depend on which other replicas train
beside it; the arithmetic that turns the draws into tokens and views is done for all the
replicas of a chunk at once (:func:`imbcl.engine.data.tokens`).
"""

from __future__ import annotations

import torch

from imbcl.engine import data
from imbcl.engine.model import Workspace
from imbcl.engine.state import ReplicaState


def empty_draws(state: ReplicaState, idx: range) -> data.Draws:
    """Uninitialised stacked draws (with the views' masks) for the replicas ``idx``."""
    spec = state.specs[idx[0]]
    return data.Draws.empty(spec.data, (len(idx), spec.train.batch), True, state.device)


def joined_views(
    state: ReplicaState, idx: range, draws: data.Draws, ws: Workspace | None = None
) -> torch.Tensor:
    """(Rc, 2n, L, d) the two masked views of a fresh batch of n samples for each replica in
    ``idx``, joined along the samples (rows :n are view 1, n: view 2).

    ``draws`` (from :func:`empty_draws`) is refilled in place, replica by replica from its own
    generator; a branch copies the draws of its leader (``state.data_leader``). The result lives in ``ws`` when one is given (valid until its next use).
    """
    for i, r in enumerate(idx):
        leader = state.data_leader[r]
        if leader == r:
            draws.part(i).fill(state.data_gens[r])
        else:  # a branch: the batch its run would have drawn (its leader is in this chunk)
            for mine, theirs in zip(
                vars(draws.part(i)).values(),
                vars(draws.part(leader - idx.start)).values(),
                strict=True,
            ):
                if mine is not None:
                    mine.copy_(theirs)
    cfgs = [state.specs[r].data for r in idx]
    sl = slice(idx.start, idx.stop)
    n, (seq, d) = draws.noise.shape[1], draws.noise.shape[-2:]
    like = state.features
    tokens = None if ws is None else ws.get("tokens", (len(idx), n, seq, d), like)
    x, _ = data.tokens(cfgs, state.features[sl], state.noise_dirs[sl], draws, out=tokens)
    shape = (len(idx), 2 * n, seq, d)
    out = x.new_empty(shape) if ws is None else ws.get("x", shape, like)
    data.views(x, draws.keep, out)
    return out
