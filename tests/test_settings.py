"""Study settings: profiles, papermill-style overrides, errors before any compute."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from imbcl.engine.config import ConfigError, validated_field
from imbcl.engine.settings import StudySettings


@dataclass(frozen=True)
class Toy(StudySettings):
    PROFILES: ClassVar = {"full": {"steps": 1000}, "small": {"steps": 100, "n_seeds": 3}}

    steps: int = validated_field(10, lo=1, doc="SGD steps")
    rho_grid: str = validated_field("1,4", doc="imbalance ratios")
    probe_at: int = validated_field(5, lo=1, doc="step of the probe")

    def _check_joint(self) -> None:
        self.grid("rho_grid", lo=1)
        if self.probe_at > self.steps:
            raise ConfigError(f"probe_at must be <= steps = {self.steps} (got {self.probe_at})")


def test_profiles_and_overrides():
    full, small = Toy.from_params("full"), Toy.from_params("small")
    assert (full.steps, full.n_seeds, small.steps, small.n_seeds) == (1000, 8, 100, 3)
    s = Toy.from_params("small", n_seeds="5", first_seed=100, steps=None)
    assert (s.n_seeds, s.steps, list(s.seeds)) == (5, 100, [100, 101, 102, 103, 104])
    assert s.grid("rho_grid") == (1.0, 4.0)
    assert Toy.from_notebook({"profile": "small", "steps": 7, "other": 1}).steps == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"profile": "huge"}, "profile must be one of full, small"),
        ({"n_seed": 3}, "unknown parameter.*n_seed.*valid names: first_seed, n_seeds"),
        ({"n_seeds": 1}, "n_seeds must be >= 2"),
        ({"first_seed": -1}, "first_seed must be >= 0"),
        ({"rho_grid": "1,0.5"}, "rho_grid values must be >= 1"),
        ({"steps": 4, "probe_at": 5}, "probe_at must be <= steps = 4"),
    ],
)
def test_bad_settings_name_the_parameter(params, message):
    profile = params.pop("profile", "full")
    with pytest.raises(ConfigError, match=message):
        Toy.from_params(profile, **params)
