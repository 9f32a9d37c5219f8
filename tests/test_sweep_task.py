"""Tasks, their canonical form and keys; results' validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from imbcl.sweep import NumericEnv, Result, Task
from imbcl.sweep.env import source_hash
from imbcl.sweep.task import canonical, canonical_json, resolve

ENV = NumericEnv(
    cpu_capability="AVX2",
    threads=1,
    device="cpu",
    versions=(("torch", "2.13.0"), ("numpy", "2.4.6")),
    source="0" * 64,
)


@dataclasses.dataclass(frozen=True)
class Config:
    rho: float
    widths: tuple = (8, 16)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def task(**kwargs) -> Task:
    return Task("tests.sweep_tasks:simulate", {"seed": 0, **kwargs}, "label")


def test_identical_tasks_share_a_key_whatever_the_label_and_kwarg_order():
    a = Task("m.mod:f", {"a": 1, "b": (2, 3)}, "first")
    b = Task("m.mod:f", {"b": [2, 3], "a": 1}, "second")
    assert a.key(ENV) == b.key(ENV)
    assert len(a.key(ENV)) == 64 and int(a.key(ENV), 16) >= 0


def test_numpy_scalars_and_dataclasses_canonicalise_to_plain_values():
    assert task(seed=np.int64(3)).key(ENV) == task(seed=3).key(ENV)
    assert task(x=np.float32(0.5)).key(ENV) == task(x=0.5).key(ENV)
    assert canonical(Config(rho=4)) == {"__class__": "Config", "rho": 4, "widths": [8, 16]}
    assert canonical_json({"b": 1, "a": [1.0, None]}) == '{"a":[1.0,null],"b":1}'


@pytest.mark.parametrize(
    "change",
    [
        {"kwargs": {"seed": 1}},
        {"kwargs": {"seed": 0, "extra": Config(rho=4)}},
        {"fn": "tests.sweep_tasks:fail"},
    ],
)
def test_key_changes_with_fn_or_kwargs(change):
    base = task()
    other = dataclasses.replace(base, **change)
    assert other.key(ENV) != base.key(ENV)
    assert task(extra=Config(rho=4)).key(ENV) != task(extra=Config(rho=5)).key(ENV)


@pytest.mark.parametrize(
    "field",
    [
        {"source": "1" * 64},
        {"cpu_capability": "AVX512"},
        {"threads": 2},
        {"device": "cuda"},
        {"versions": (("torch", "2.13.1"), ("numpy", "2.4.6"))},
    ],
)
def test_key_changes_with_the_numeric_env(field):
    assert task().key(dataclasses.replace(ENV, **field)) != task().key(ENV)


def test_local_env_covers_this_process():
    env = NumericEnv.local(threads=3)
    assert env.threads == 3 and env.device in ("cpu", "cuda") and env.cpu_capability
    assert dict(env.versions).keys() == {"torch", "numpy", "scipy", "scikit-learn", "pandas"}
    assert env.source == source_hash() and len(env.source) == 64


@pytest.mark.parametrize(
    ("fn", "kwargs", "label", "match"),
    [
        ("no_colon", {}, "x", "package.module:function"),
        ("m:f", [], "x", "kwargs must be a dict"),
        ("m:f", {"a": {1: 2}}, "x", r"kwargs\['a'\]: dict keys must be str"),
        ("m:f", {"a": object()}, "x", r"kwargs\['a'\]: object is not JSON-serialisable"),
        ("m:f", {"a": np.zeros(2)}, "x", "ndarray is not JSON-serialisable"),
        ("m:f", {}, "", "label must be a non-empty str"),
    ],
)
def test_invalid_tasks_are_refused_at_construction(fn, kwargs, label, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Task(fn, kwargs, label)


def test_resolve_names_what_is_missing():
    assert callable(resolve("tests.sweep_tasks:simulate"))
    with pytest.raises(ValueError, match="cannot import module 'tests.nowhere'"):
        resolve("tests.nowhere:f")
    with pytest.raises(ValueError, match="has no function 'nothing'"):
        resolve("tests.sweep_tasks:nothing")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"table": {"a": [1]}}, "table must be a DataFrame"),
        ({"table": pd.DataFrame({0: [1]})}, "column names must be str"),
        ({"arrays": {"a/b": np.zeros(1)}}, "name 'a/b' must match"),
        ({"arrays": {"a": [1.0]}}, r"arrays\['a'\] must be a numpy array"),
        ({"arrays": {"a": np.array([None])}}, "without Python objects"),
        ({"meta": {"when": object()}}, r"Result.meta\['when'\]"),
    ],
)
def test_invalid_results_are_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Result(**{"table": pd.DataFrame({"a": [1]}), **kwargs})


def test_the_source_hash_covers_what_a_task_can_run_and_not_the_report_layer():
    from imbcl.sweep.env import PACKAGE_DIR, task_source_files

    files = {p.relative_to(PACKAGE_DIR).as_posix() for p in task_source_files()}
    assert {"engine/train.py", "studies/runs.py", "images/study.py", "sweep/run.py"} <= files
    assert not any(f.startswith("report/") for f in files) and "__main__.py" not in files


def test_comments_and_docstrings_do_not_change_the_code_text():
    from imbcl.sweep.env import code_text

    a = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    b = 'def f(x):\n    """Another doc."""\n    # a comment\n    return x + 1\n'
    c = 'def f(x):\n    """Doc."""\n    return x + 2\n'
    assert code_text(a) == code_text(b) != code_text(c)
    assert code_text('"""Module."""\n') == code_text("")
