"""The contention profile: how much slower batches run when several run at once on one GPU.

JSON (schema ``simlat.contention``), written by ``simlat calibrate --contention`` and read by an
experiment's ``fleet.contention: {path: ...}``. History of ``schema_version``:

- 1: first version: ``measurements``, each a set of ``members`` (model, variant, batch size) that
  ran back to back at once on one GPU in ``mode`` (``processes``: time slicing between processes,
  ``mps``, ``streams``), with every member's time alone and together and its ``slowdown`` (together
  mean / alone mean) and that ratio's spread; ``unavailable`` lists modes that could not be measured.

A member's ``batch_size`` is on the same axis as the service profile's (the model's input rows, the
engine's *items*). ``k = len(members)``; a k = 1 entry has slowdown 1 by definition.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.errors import SimlatError, validate_as
from simlat.profiles.resolve import ProfileKind, load, register, resolve_path

SCHEMA = "simlat.contention"
SCHEMA_VERSION = 1

Mode = Literal["processes", "mps", "streams"]


class Member(StrictModel):
    """One of the batches that ran at once."""

    model: str = Field(min_length=1)
    variant: str = Field(min_length=1)
    batch_size: PositiveInt


class Timing(StrictModel):
    """A member's batch times (ms)."""

    p50: float = Field(ge=0)
    p90: float = Field(ge=0)
    p99: float = Field(ge=0)
    mean: float = Field(ge=0)
    n: NonNegativeInt


class Measurement(StrictModel):
    """``members`` busy back to back at once on one GPU: each one's slowdown against running alone."""

    mode: Mode
    members: list[Member] = Field(min_length=1)
    alone_ms: list[Timing]
    together_ms: list[Timing]
    slowdown: list[PositiveFloat]
    slowdown_sd: list[float] = Field(default_factory=list)
    repeats: PositiveInt = 1
    window_s: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_per_member(self):
        k = len(self.members)
        for name in ("alone_ms", "together_ms", "slowdown"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {k} members: one per member")
        if self.slowdown_sd and len(self.slowdown_sd) != k:
            raise ValueError(f"slowdown_sd has {len(self.slowdown_sd)} entries for {k} members: one per member")
        return self

    @property
    def k(self) -> int:
        return len(self.members)


class Unavailable(StrictModel):
    mode: Mode
    reason: str = ""


class ContentionProfile(StrictModel):
    """A measured contention profile (see the module docstring)."""

    schema_: str = Field(alias="schema", default=SCHEMA)
    schema_version: int = SCHEMA_VERSION
    provenance: dict[str, Any] = Field(default_factory=dict)
    source_profile: str | None = None
    measurements: list[Measurement] = Field(default_factory=list)
    unavailable: list[Unavailable] = Field(default_factory=list)

    def modes(self) -> list[str]:
        """The modes measured, in the order first seen."""
        return list(dict.fromkeys(m.mode for m in self.measurements))


def parse(data: Any, source: str = "fleet.contention.path") -> ContentionProfile:
    """Validate a parsed contention profile, refusing another schema or a newer version."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SimlatError(f"{source} is not a contention profile (its schema is not {SCHEMA!r})")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SimlatError(f"{source} has schema_version {version!r}, newer than this simlat reads "
                          f"({SCHEMA_VERSION}); upgrade simlat")
    return validate_as(ContentionProfile, data, f"{source} is not a valid contention profile:")


CONTENTION = register(ProfileKind("contention", frozenset({SCHEMA}), parse))


def read(path: str, field: str = "fleet.contention.path") -> ContentionProfile:
    """Load (cached by path and modification time) or raise a :class:`SimlatError` naming the file."""
    if not resolve_path(path).exists():
        raise SimlatError(f"{field}: {str(path)!r} not found: no contention profile there (measure one on the GPU "
                          "with simlat calibrate --contention)")
    profile = load(path, CONTENTION.name, field=field)
    assert isinstance(profile, ContentionProfile)
    return profile
