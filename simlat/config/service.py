"""Service time of one batch on one replica, in ms, as a function of the items in the batch.

Samplers live in :mod:`simlat.engine.service`. The calibrated ``kind: profile`` lives beside the
profile schema (:mod:`simlat.profiles`) and joins the union here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat

from simlat.config.base import StrictModel
from simlat.config.dists import Dist


class DeterministicService(StrictModel):
    """Every batch takes ``ms``."""

    kind: Literal["deterministic"] = "deterministic"
    ms: PositiveFloat


class ExponentialService(StrictModel):
    """Exponential with mean ``mean_ms`` (independent of batch size)."""

    kind: Literal["exponential"] = "exponential"
    mean_ms: PositiveFloat


class LognormalService(StrictModel):
    """Lognormal with ``median_ms`` and log-space ``sigma``."""

    kind: Literal["lognormal"] = "lognormal"
    median_ms: PositiveFloat
    sigma: NonNegativeFloat


class EmpiricalService(StrictModel):
    """Resample measured batch times (ms)."""

    kind: Literal["empirical"] = "empirical"
    samples_ms: list[PositiveFloat] = Field(min_length=1)


class AffineService(StrictModel):
    """``base_ms + per_item_ms * items``, times a multiplicative noise draw (mean ~1) or plus an additive one."""

    kind: Literal["affine"] = "affine"
    base_ms: NonNegativeFloat
    per_item_ms: NonNegativeFloat
    noise: Dist | None = None
    noise_mode: Literal["multiplicative", "additive"] = "multiplicative"


class ProfileService(StrictModel):
    """Draw each batch's time from a calibration profile (see :mod:`simlat.profiles`).

    ``path``: a relative path resolves against the experiment file's folder.
    ``condition``: "steady" (back-to-back) or "idle" (after an idle gap).
    ``add_components``: overhead components of the profile (serialization, copies) drawn at the
    batch's items and added to the model's time.
    """

    kind: Literal["profile"] = "profile"
    path: Path
    model: str
    variant: str
    condition: Literal["steady", "idle"] = "steady"
    add_components: tuple[str, ...] = Field(
        default=(),
        description="Measured overhead components added to each batch's time (e.g. deserialize_msgpack, h2d_pinned).",
    )


ServiceTime = Annotated[
    DeterministicService | ExponentialService | LognormalService | EmpiricalService | AffineService | ProfileService,
    Field(discriminator="kind"),
]
