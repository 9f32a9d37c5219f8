"""The training record: alignments, noise norms, biases and losses every k steps."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbcl.engine.config import RunSpec


@dataclass
class History:
    """What a training call recorded, with T records of R replicas, m neurons, K features.

    ``steps`` (T,) step index of each record (0 is the initialisation);
    ``align`` (T, R, m, K) A[t, r, i, j] = <W_V^T w_i, M_j>, neuron i's weight on feature j;
    ``noise`` (T, R, m) norm of the part of W_V^T w_i outside the feature span;
    ``bias`` (T, R, m) the BReLU bias b_i; ``loss`` (T, R) InfoNCE averaged over the steps since
    the previous record (NaN at step 0); ``minority`` (K,) True for minority features;
    ``specs`` one RunSpec per replica.
    """

    steps: np.ndarray
    align: np.ndarray
    noise: np.ndarray
    bias: np.ndarray
    loss: np.ndarray
    minority: np.ndarray
    specs: list[RunSpec]

    @property
    def n_replicas(self) -> int:
        return self.align.shape[1]

    def at(self, step: int) -> int:
        """Index of the last record at or before ``step``."""
        idx = int(np.searchsorted(self.steps, step, side="right")) - 1
        if idx < 0:
            raise ValueError(f"step must be >= {self.steps[0]} (got {step})")
        return idx

    def select(self, replicas) -> History:
        """The records of a subset of replicas (indices or a boolean mask)."""
        idx = np.arange(self.n_replicas)[replicas]
        return History(
            self.steps,
            self.align[:, idx],
            self.noise[:, idx],
            self.bias[:, idx],
            self.loss[:, idx],
            self.minority,
            [self.specs[i] for i in idx],
        )

    @classmethod
    def join(cls, histories: list[History]) -> History:
        """The replicas of several histories recorded at the same steps, side by side."""
        first = histories[0]
        for h in histories[1:]:
            if not np.array_equal(h.steps, first.steps):
                raise ValueError("histories must be recorded at the same steps to be joined")
            if not np.array_equal(h.minority, first.minority):
                raise ValueError("histories must share their minority features to be joined")
        return cls(
            first.steps,
            *(
                np.concatenate([getattr(h, name) for h in histories], axis=1)
                for name in ("align", "noise", "bias", "loss")
            ),
            first.minority,
            [s for h in histories for s in h.specs],
        )

    def concat(self, later: History) -> History:
        """This record followed by a continuation's (its first record, if a repeat, dropped)."""
        if later.n_replicas != self.n_replicas:
            raise ValueError(
                f"later has {later.n_replicas} replicas, this history has {self.n_replicas}"
            )
        keep = later.steps > self.steps[-1]
        return History(
            np.concatenate([self.steps, later.steps[keep]]),
            *(
                np.concatenate([a, b[keep]])
                for a, b in (
                    (self.align, later.align),
                    (self.noise, later.noise),
                    (self.bias, later.bias),
                    (self.loss, later.loss),
                )
            ),
            self.minority,
            self.specs,
        )

    #: The array fields, in the order of the constructor.
    ARRAYS = ("steps", "align", "noise", "bias", "loss", "minority")

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The record as named arrays plus JSON metadata (the specs), e.g. for a results store."""
        arrays = {name: getattr(self, name) for name in self.ARRAYS}
        return arrays, {"specs": [s.to_dict() for s in self.specs]}

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict) -> History:
        """The inverse of :meth:`to_arrays`; arrays may be read-only (memory-mapped)."""
        specs = [RunSpec.from_dict(d) for d in meta["specs"]]
        return cls(*(arrays[name] for name in cls.ARRAYS), specs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (.npz) atomically: a temporary file in the same folder, renamed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays, meta = self.to_arrays()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
        os.close(fd)
        try:
            np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        with np.load(Path(path)) as f:
            return cls.from_arrays({k: f[k] for k in cls.ARRAYS}, json.loads(str(f["meta"])))
