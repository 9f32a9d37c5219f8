"""The settings of a chapter: one validated dataclass with named profiles.

A notebook's ``parameters`` cell is flat (papermill sets names one by one) and every value
defaults to ``None``, meaning "the profile's value"; :meth:`StudySettings.from_params` turns
the profile name plus the given values into one validated object, so every value, and every
bound between values, is checked before any compute. The command line
(``python -m imbcl sweep <chapter> -p NAME VALUE``) builds the same object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from imbcl.engine.config import ConfigError, Validated, validated_field
from imbcl.engine.params import parse_grid

#: Profiles every study defines: the book's, and the test suite's small one.
PROFILE_NAMES = ("full", "small")


@dataclass(frozen=True)
class StudySettings(Validated):
    """Base of each study's ``Settings`` (a frozen dataclass of validated fields).

    Subclasses (also frozen dataclasses) add their fields, set ``PROFILES = {"full": {...},
    "small": {...}}`` to the values that differ from the field defaults in each profile, and
    may check bounds between fields in ``_check_joint``. Every study has ``first_seed`` and
    ``n_seeds`` (:attr:`seeds`): the seed is the statistical unit of every claim.
    """

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {"full": {}, "small": {}}

    first_seed: int = validated_field(0, lo=0, doc="first run seed (the next n_seeds are used)")
    n_seeds: int = validated_field(8, lo=2, doc="seeds per cell, the unit of every claim")

    @classmethod
    def parameters(cls) -> tuple[str, ...]:
        """The names a notebook or the command line may set."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_params(cls, profile: str = "full", **params):
        """The settings of ``profile`` with ``params`` applied (None keeps the profile's value).

        Unknown names and bad values raise a ConfigError that names them.
        """
        if profile not in cls.PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(cls.PROFILES)} (got {profile!r})")
        unknown = sorted(set(params) - set(cls.parameters()))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for {cls.__module__}; "
                f"valid names: {', '.join(cls.parameters())}"
            )
        given = {k: v for k, v in params.items() if v is not None}
        return cls(**{**cls.PROFILES[profile], **given})

    @classmethod
    def from_notebook(cls, namespace: Mapping[str, Any]):
        """The settings from a notebook's parameters: ``profile`` and every field name defined
        in ``namespace`` (normally ``globals()``)."""
        names = set(cls.parameters()) & set(namespace)
        return cls.from_params(namespace.get("profile", "full"), **{k: namespace[k] for k in names})

    @property
    def seeds(self) -> range:
        """The run seeds: ``first_seed``, ..., ``first_seed + n_seeds - 1``."""
        return range(self.first_seed, self.first_seed + self.n_seeds)

    def grid(self, name: str, kind: type = float, **bounds) -> tuple:
        """The comma-separated field ``name`` parsed into a tuple (see ``parse_grid``)."""
        return parse_grid(getattr(self, name), name, kind, **bounds)

    def table(self) -> list[tuple[str, Any, str]]:
        """(name, value, doc) of every field, for the printed settings of a chapter."""
        return [
            (f.name, getattr(self, f.name), f.metadata["doc"]) for f in dataclasses.fields(self)
        ]
