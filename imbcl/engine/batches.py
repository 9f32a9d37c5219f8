"""The batch stream: a fresh batch and its two masked views per replica and step.

Each replica draws from its own data generator (:attr:`ReplicaState.data_gens`), so its
batches do not depend on which other replicas train beside it.
"""

from __future__ import annotations

import torch

from imbcl.engine import data
from imbcl.engine.model import Workspace
from imbcl.engine.state import ReplicaState


def joined_views(state: ReplicaState, idx: range, ws: Workspace | None = None) -> torch.Tensor:
    """(Rc, 2n, L, d) the two masked views of a fresh batch of n samples for each replica in
    ``idx``, joined along the samples (rows :n are view 1, n: view 2).

    The result lives in ``ws`` when one is given (valid until its next use).
    """
    out = None
    for i, r in enumerate(idx):
        s, g = state.specs[r], state.data_gens[r]
        x, _ = data.sample_batch(s.data, state.dictionaries[r], s.train.batch, g)
        if out is None:
            shape = (len(idx), 2 * x.shape[0], *x.shape[1:])
            out = x.new_empty(shape) if ws is None else ws.get("x", shape, x)
        torch.cat(data.mask_views(x, g, s.data.mask), out=out[i])
    return out
