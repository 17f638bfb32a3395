"""The serving profile: a measured endpoint's stack, fitted from outside, versioned, with provenance.

JSON, written by ``simlat calibrate --endpoint`` (:mod:`simlat.endpoint.command`) and read by an
experiment's ``frontend: {kind: profile, path: ...}``. History of ``schema_version``:

- 1: first version: ``stack`` (:class:`simlat.endpoint.fit.StackParams`), ``measured`` (no-queue
  latency, capacity, every probe's summary), ``uncertainty`` (run-to-run spread of p99 by load,
  the fit's residual, the capacity's resolution), ``batching`` and ``model_profile`` the fit assumed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import Field

from simlat.config.base import StrictModel
from simlat.endpoint.fit import StackParams
from simlat.errors import SimlatError, validate_as

SCHEMA = "simlat.serving"
SCHEMA_VERSION = 1


class RunToRun(StrictModel):
    load: float
    repeats: int
    sd_log_p99: float
    sd_log_p50: float
    sd_log_p99_monotone: float


class Uncertainty(StrictModel):
    run_to_run: list[RunToRun] = Field(default_factory=list)
    fit_residual_sd_log_p99: float = 0.0
    capacity_resolution: float = 0.1

    def run_sd(self, load: float) -> float:
        """Run-to-run sd of log p99 at ``load`` (fraction of capacity), interpolated, held flat beyond the ends;
        with no repeats measured, a conservative 0.25."""
        if not self.run_to_run:
            return 0.25
        xs = [r.load for r in self.run_to_run]
        ys = [r.sd_log_p99_monotone for r in self.run_to_run]
        return float(np.interp(load, xs, ys))


class ServingProfile(StrictModel):
    schema_: str = Field(alias="schema", default=SCHEMA)
    schema_version: int = SCHEMA_VERSION
    kind: str = "serving"
    provenance: dict
    batching: dict
    model_profile: dict | None = None
    measured: dict
    stack: dict
    uncertainty: Uncertainty
    warnings: list[str] = Field(default_factory=list)

    @property
    def params(self) -> StackParams:
        return StackParams.from_json(self.stack)

    @property
    def capacity_rps(self) -> float:
        return float(self.measured["capacity_rps"])


def write(profile: ServingProfile, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.model_dump(by_alias=True), indent=1, default=float) + "\n")


@lru_cache(maxsize=32)
def _read(path: str, mtime: float) -> ServingProfile:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SimlatError(f"frontend.path: {p} is not a readable serving profile ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SimlatError(f"frontend.path: {p} is not a serving profile (its schema is not {SCHEMA!r})")
    if data.get("schema_version", 0) > SCHEMA_VERSION:
        raise SimlatError(f"frontend.path: {p} has schema_version {data['schema_version']}, newer than this simlat "
                          f"reads ({SCHEMA_VERSION}); upgrade simlat")
    return validate_as(ServingProfile, data, f"frontend.path: {p} is not a valid serving profile:")


def read(path: str | Path) -> ServingProfile:
    """Load (cached by path and modification time) or raise a :class:`SimlatError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SimlatError(f"frontend.path: {p}: no such serving profile")
    return _read(str(p.resolve()), p.stat().st_mtime)
