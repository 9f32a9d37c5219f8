"""Chapter 5's settings: value checks, the methods, and the bounds between settings."""

from __future__ import annotations

import pytest

from imbcl.engine.config import ConfigError
from imbcl.images import config
from imbcl.images.config import ImageDataConfig, Method, SimCLRConfig


def test_methods_and_names():
    names = [m.name for m in config.make_methods("0.5,0.9", "0.5", "0.9")]
    assert names == ["SimCLR", "prune 0.5", "prune 0.9", "random 0.5", "SDCLR 0.9", "balanced"]
    assert [m.name for m in config.make_methods("0.5", "", "")] == [
        "SimCLR",
        "prune 0.5",
        "balanced",
    ]
    with pytest.raises(ConfigError, match=r"^rates values must be < 1 \(got 1.0\)$"):
        config.make_methods("0.5,1", "", "")


def test_config_errors_are_clear():
    with pytest.raises(
        ConfigError, match=r"dataset must be one of 'digits', 'cifar10' \(got 'mnist'\)"
    ):
        ImageDataConfig(dataset="mnist")
    with pytest.raises(ConfigError, match=r"k_shot must be <= n_probe = 3 \(got 5\)"):
        ImageDataConfig(n_probe=3, k_shot=5)
    with pytest.raises(ConfigError, match="prune must name parameters among"):
        SimCLRConfig(prune="W,G1")
    with pytest.raises(ConfigError, match=r"^prune names W more than once \(got 'W, E,W'\)$"):
        SimCLRConfig(prune="W, E,W")


def test_group_must_leave_head_and_tail_apart():
    assert ImageDataConfig(group=5).group == 5
    message = (
        r"^group must be <= 5, half the 10 classes of cifar10, so that the head and the tail "
        r"do not overlap \(got 6\)$"
    )
    with pytest.raises(ConfigError, match=message):
        ImageDataConfig(dataset="cifar10", group=6)


def test_rho_must_leave_the_rarest_class_an_image():
    assert ImageDataConfig(n_max=20, rho=20).rho == 20
    message = (
        r"^rho must be <= n_max = 20, so that the rarest class keeps n_max / rho >= 1 "
        r"pre-training image \(got 50\)$"
    )
    with pytest.raises(ConfigError, match=message):
        ImageDataConfig(n_max=20, rho=50)


def test_schedule_must_let_every_method_act():
    pruning = [Method("simclr"), Method("magnitude", 0.5)]
    config.check_schedule(SimCLRConfig(steps=4, warmup=0.75), pruning)  # prunes at step 3
    config.check_schedule(SimCLRConfig(steps=3, warmup=0.99), [Method("simclr")])
    message = (
        r"^warmup must put the prune step inside training: round\(warmup \* steps\) = 3 must "
        r"be < steps = 3 \(got warmup=0.99\)$"
    )
    for kind in ("magnitude", "random"):
        with pytest.raises(ConfigError, match=message):
            config.check_schedule(SimCLRConfig(steps=3, warmup=0.99), [Method(kind, 0.5)])
    sdclr = [Method("simclr"), Method("sdclr", 0.5)]
    config.check_schedule(SimCLRConfig(steps=51, sdclr_every=50), sdclr)
    message = (
        r"^sdclr_every must be < steps = 50, so that SDCLR's branch mask is recomputed from "
        r"trained weights at least once \(got 50\)$"
    )
    with pytest.raises(ConfigError, match=message):
        config.check_schedule(SimCLRConfig(steps=50, sdclr_every=50), sdclr)
    config.check_schedule(SimCLRConfig(steps=50, sdclr_every=50), pruning)
