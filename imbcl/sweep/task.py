"""A task (what to compute) and its result (what comes back), and their canonical form.

A :class:`Task` names a pure function by import path and the keyword arguments to call it with.
Its key, a sha256 over the canonical JSON of the function, the arguments and the numeric
environment, names its entry in the results store and its Dask key, so that the same task asked
twice (by one client or two, today or after a crash) is computed once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from imbcl.sweep.env import NumericEnv

FN_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
ARRAY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def canonical(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data: dicts with str keys, lists, str, int, float, bool, None.

    Tuples become lists, numpy scalars plain numbers, and a dataclass the dict of its
    ``to_dict()`` (or of its fields) under ``"__class__"``: its class name. Anything else raises
    ``TypeError`` naming ``where`` (the path to the offending item).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return canonical(value.item(), where)
    if isinstance(value, list | tuple):
        return [canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{where}: dict keys must be str (got {bad[0]!r})")
        return {k: canonical(v, f"{where}[{k!r}]") for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            fields = value.to_dict()
        else:
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__class__": type(value).__qualname__, **canonical(fields, where)}
    raise TypeError(
        f"{where}: {type(value).__name__} is not JSON-serialisable; use str, int, float, bool, "
        "None, lists, tuples, dicts with str keys, numpy scalars or dataclasses"
    )


def canonical_json(value: Any, where: str = "value") -> str:
    """The canonical JSON text of ``value``: sorted keys, no whitespace, exact floats."""
    return json.dumps(canonical(value, where), sort_keys=True, separators=(",", ":"))


def resolve(fn: str) -> Callable[..., Result]:
    """The function named by ``"package.module:function"``; ``ValueError`` if it is not there."""
    module_name, _, attr = fn.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"task fn {fn!r}: cannot import module {module_name!r} ({exc})") from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise ValueError(f"task fn {fn!r}: module {module_name!r} has no function {attr!r}")
    return func


@dataclass(frozen=True)
class Task:
    """One call of a pure function: ``fn(**kwargs)`` returns a :class:`Result`.

    ``fn`` is ``"package.module:function"``; ``kwargs`` must be canonicalisable (see
    :func:`canonical`); ``label`` is what progress and error reports show.
    """

    fn: str
    kwargs: dict
    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"Task label must be a non-empty str (got {self.label!r})")
        if not isinstance(self.fn, str) or not FN_PATTERN.match(self.fn):
            raise ValueError(
                f"Task {self.label!r}: fn must be 'package.module:function' (got {self.fn!r})"
            )
        if not isinstance(self.kwargs, dict):
            raise TypeError(
                f"Task {self.label!r}: kwargs must be a dict (got {type(self.kwargs).__name__})"
            )
        canonical(self.kwargs, f"Task {self.label!r}: kwargs")

    def spec(self) -> dict:
        """``fn``, canonical ``kwargs`` and ``label`` as plain JSON data (stored in MANIFEST)."""
        return {"fn": self.fn, "kwargs": canonical(self.kwargs), "label": self.label}

    def key(self, env: NumericEnv) -> str:
        """sha256 hex of the canonical JSON of ``fn``, ``kwargs`` and the numeric environment.

        The label is not part of the key: it names the task, it does not change its result.
        """
        text = canonical_json({"fn": self.fn, "kwargs": self.kwargs, "env": env.to_dict()})
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Result:
    """What a task returns.

    ``table``: small summaries (e.g. one row per seed), stored as Parquet, column names str.
    ``arrays``: large numeric arrays by name (``[A-Za-z0-9_.-]``), one ``.npy`` each; read back
    from the store they are read-only memory maps, loaded lazily. ``meta``: canonicalisable
    JSON data (read back, tuples are lists and numpy scalars plain numbers).
    """

    table: pd.DataFrame
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.table, pd.DataFrame):
            raise TypeError(f"Result.table must be a DataFrame (got {type(self.table).__name__})")
        bad = [c for c in self.table.columns if not isinstance(c, str)]
        if bad:
            raise TypeError(f"Result.table column names must be str (got {bad[0]!r})")
        if not isinstance(self.arrays, dict):
            raise TypeError(f"Result.arrays must be a dict (got {type(self.arrays).__name__})")
        for name, array in self.arrays.items():
            if not isinstance(name, str) or not ARRAY_NAME.match(name):
                raise ValueError(f"Result.arrays: name {name!r} must match {ARRAY_NAME.pattern}")
            if not isinstance(array, np.ndarray) or array.dtype.hasobject:
                raise TypeError(
                    f"Result.arrays[{name!r}] must be a numpy array without Python objects "
                    f"(got {type(array).__name__} {getattr(array, 'dtype', '')})"
                )
        if not isinstance(self.meta, dict):
            raise TypeError(f"Result.meta must be a dict (got {type(self.meta).__name__})")
        canonical(self.meta, "Result.meta")
