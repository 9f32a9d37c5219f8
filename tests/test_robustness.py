"""The perturbation suite: its judgement of claims, and a small-profile slice of it."""

import os
import subprocess
import sys

import pytest

from imbcl.report import robustness as rb
from imbcl.report.registry import ClaimSpec
from imbcl.report.verdicts import Verdict


def claim(status="reproduced", profiles=("full",), mask_dependent=None):
    return ClaimSpec(
        id="ch1.gap",
        chapter="ch1",
        anchor="ch1-claims",
        paper="p",
        tested="t",
        statistic="s",
        direction=">",
        threshold=0.0,
        regime="r",
        status=status,
        profiles=profiles,
        mask_dependent=mask_dependent,
    )


def verdict(outcome):
    return {"ch1.gap": Verdict("ch1.gap", 8, 0, 1.0, 0.5, 1.5, 8, 0.004, outcome, True)}


def results(*outcomes, masked=None):
    perts = rb.perturbations([0, 1000], ["native", "default"], mask_check=masked is not None)
    values = list(outcomes) + ([masked] if masked else [])
    return {p: verdict(o) for p, o in zip(perts, values, strict=True)}


def test_perturbations_cover_seed_sets_and_paths_then_the_mask():
    perts = rb.perturbations([0, 1000], ["native", "default"], mask_check=True)
    assert [p.name for p in perts] == [
        "seeds 0+, native",
        "seeds 1000+, native",
        "seeds 0+, default",
        "seeds 1000+, default",
        "seeds 0+, native, mask sample",
    ]
    with pytest.raises(ValueError, match="code paths must be among"):
        rb.perturbations([0], ["avx9000"], mask_check=False)


def test_a_claim_that_holds_everywhere_is_supported_and_a_flip_is_inconclusive():
    same = rb.judge(claim(), results("holds", "holds", "holds", "holds", masked="holds"), "full")
    assert same["supported"] == "reproduced" and not same["asserted and off"]
    masks = rb.judge(claim(), results("holds", "holds", "holds", "holds", masked="fails"), "full")
    assert masks["supported"] == "reproduced in a stated regime"
    unmeasured = rb.judge(claim(), results("holds", "holds", "holds", "holds"), "full")
    assert unmeasured["supported"] == "reproduced in a stated regime"
    flip = rb.judge(claim(), results("holds", "holds", "undecided", "holds"), "full")
    assert flip["supported"] == "inconclusive" and flip["asserted and off"]
    refuted = rb.judge(claim("not reproduced"), results(*["fails"] * 4), "full")
    assert refuted["supported"] == "not reproduced" and not refuted["asserted and off"]


def test_claims_not_asserted_in_the_profile_cannot_break_it():
    flip = results("holds", "fails", "holds", "holds")
    assert not rb.judge(claim(status="inconclusive"), flip, "full")["asserted and off"]
    assert not rb.judge(claim(profiles=("full",)), flip, "small")["asserted and off"]


def test_mask_dependence_is_measured_and_a_wrong_label_is_caught():
    dependent = results("holds", "holds", "holds", "holds", masked="fails")
    judged = rb.judge(claim(mask_dependent=False), dependent, "full")
    assert judged["mask dependent"] is True and judged["mask label wrong"]
    assert not rb.judge(claim(mask_dependent=True), dependent, "full")["mask label wrong"]


def test_small_profile_slice_on_fresh_seeds_and_the_default_code_path():
    """Chapter 1 in the small profile, seeds 1000+, under ATEN_CPU_CAPABILITY=default."""
    cmd = [sys.executable, "-m", "imbcl", "robustness", "--profile", "small"]
    cmd += ["--chapters", "ch1", "--seed-sets", "1000", "--paths", "default", "--no-mask-check"]
    env = os.environ | {"IMBCL_SCHEDULER": "inprocess", "IMBCL_PROGRESS": "0"}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ch1.onset-order" in run.stdout and "seeds 1000+, default" in run.stdout
