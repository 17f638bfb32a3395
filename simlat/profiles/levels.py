"""The service profile's version and quantile grid: what calibration needs to write a profile, with
no import beyond the standard library (the measuring side runs on GPU hosts without pydantic)."""

from __future__ import annotations

SCHEMA_VERSION = 1
"""The newest profile schema this simlat reads and writes."""


def default_quantile_levels() -> list[float]:
    """The level grid calibration writes: fine everywhere, finer in the tails (105 levels, 0 and 1 included)."""
    mid = [round(0.01 * i, 2) for i in range(1, 100)]
    return [0.0, 0.001, 0.005, *mid, 0.995, 0.999, 1.0]
