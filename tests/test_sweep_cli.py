"""``python -m imbcl sweep``: validation before any compute, a run, a cached re-run."""

from __future__ import annotations

import pytest

from imbcl.__main__ import CHAPTERS, main, parse_value

STUDY = "tests.sweep_study"


def sweep(tmp_path, *args: str) -> list[str]:
    """The CLI's arguments for the stand-in study, in this process, into ``tmp_path/store``."""
    return ["sweep", *args, "--store", str(tmp_path / "store"), "--scheduler", "inprocess"]


def fails_before_compute(capsys, tmp_path, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert not (tmp_path / "store").exists() and not (tmp_path / "log").exists()
    return capsys.readouterr().err


def test_unknown_chapter_lists_the_valid_ones(capsys, tmp_path):
    err = fails_before_compute(capsys, tmp_path, sweep(tmp_path, "ch9"))
    assert "unknown chapter 'ch9'; valid: " + ", ".join(CHAPTERS) in err


def test_unknown_parameter_lists_the_valid_ones(capsys, tmp_path):
    argv = sweep(tmp_path, STUDY, "-p", "n_seed", "3", "-p", "log", str(tmp_path / "log"))
    err = fails_before_compute(capsys, tmp_path, argv)
    assert (
        "unknown parameter(s) n_seed for tests.sweep_study; valid names: first_seed, n_seeds, steps, sleep, log"
        in (err)
    )


def test_invalid_value_fails_before_compute(capsys, tmp_path):
    argv = sweep(tmp_path, STUDY, "-p", "n_seeds", "0", "-p", "log", str(tmp_path / "log"))
    assert "n_seeds must be >= 2 (got 0)" in fails_before_compute(capsys, tmp_path, argv)


def test_invalid_profile_from_the_environment_fails_before_compute(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("IMBCL_PROFILE", "tiny")
    argv = sweep(tmp_path, STUDY, "-p", "log", str(tmp_path / "log"))
    assert "profile must be one of full, small (got 'tiny')" in fails_before_compute(
        capsys, tmp_path, argv
    )


def test_module_without_the_study_contract_is_refused(capsys, tmp_path):
    err = fails_before_compute(capsys, tmp_path, sweep(tmp_path, "tests.sweep_tasks"))
    assert "tests.sweep_tasks must define a dataclass Settings and a function plan" in err


def test_plan_runs_then_a_second_run_is_all_cached(capsys, tmp_path):
    argv = sweep(tmp_path, STUDY, "--profile", "small", "-p", "steps", "3")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{STUDY}: 2 tasks, 0 cached, 2 computed, 0 failed in " in out
    assert main(argv) == 0
    assert f"{STUDY}: 2 tasks, 2 cached, 0 computed, 0 failed in " in capsys.readouterr().out
    assert main([*argv[:-4], "-p", "n_seeds", "3", *argv[-4:]]) == 0
    assert "3 tasks, 2 cached, 1 computed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "value"),
    [("50", 50), ("0.5", 0.5), ("True", True), ("None", None), ("abc", "abc"), ("1,2,4", "1,2,4")],
)
def test_values_parse_like_papermill(text, value):
    assert parse_value(text) == value
