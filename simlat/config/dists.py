"""Scalar distributions used across the file: fan-out, think time, overheads, noise, lookups.

Every value is in the unit of the field that holds it (ms for times, items for fan-out).
Samplers live in :mod:`simlat.dists`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, field_validator

from simlat.config.base import StrictModel

NonNeg = Annotated[float, Field(ge=0)]


class Constant(StrictModel):
    """Always the same value."""

    kind: Literal["constant"] = "constant"
    value: NonNeg


class Exponential(StrictModel):
    """Exponential with the given mean."""

    kind: Literal["exponential"] = "exponential"
    mean: PositiveFloat


class Gamma(StrictModel):
    """Gamma with the given mean and coefficient of variation."""

    kind: Literal["gamma"] = "gamma"
    mean: PositiveFloat
    cv: float = Field(ge=1e-3, le=100)


class Lognormal(StrictModel):
    """Lognormal with the given median and log-space sigma."""

    kind: Literal["lognormal"] = "lognormal"
    median: PositiveFloat
    sigma: NonNeg


class Uniform(StrictModel):
    """Uniform on [low, high]."""

    kind: Literal["uniform"] = "uniform"
    low: NonNeg
    high: NonNeg


class Empirical(StrictModel):
    """Resample (with replacement) from measured values."""

    kind: Literal["empirical"] = "empirical"
    samples: list[NonNeg] = Field(min_length=1)


class DiscreteChoice(StrictModel):
    """Values with probabilities (e.g. fan-out sizes with their frequencies)."""

    kind: Literal["choice"] = "choice"
    values: list[NonNeg] = Field(min_length=1)
    weights: list[NonNeg] | None = None

    @field_validator("weights")
    @classmethod
    def _same_length(cls, v, info):
        if v is not None and len(v) != len(info.data.get("values", [])):
            raise ValueError("must have as many entries as values")
        if v is not None and sum(v) <= 0:
            raise ValueError("must sum to a positive number")
        return v


Dist = Annotated[
    Constant | Exponential | Gamma | Lognormal | Uniform | Empirical | DiscreteChoice,
    Field(discriminator="kind"),
]

ZERO = Constant(value=0.0)
