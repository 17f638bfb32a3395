"""The serving profile: a measured endpoint's stack, fitted from outside, versioned, with provenance.

JSON, written by ``simlat calibrate --endpoint`` (:mod:`simlat.endpoint.command`) and read by an
experiment's ``frontend: {kind: profile, path: ...}``. History of ``schema_version``:

- 1: first version: ``stack`` (:class:`StackParams`), ``measured`` (no-queue
  latency, capacity, every probe's summary), ``uncertainty`` (run-to-run spread of p99 by load,
  the fit's residual, the capacity's resolution), ``batching`` and ``model_profile`` the fit assumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from simlat.config.base import StrictModel
from simlat.config.dists import Constant, Empirical
from simlat.config.frontend import EventLoopFrontend
from simlat.errors import SimlatError, validate_as
from simlat.profiles.resolve import ProfileKind, load, register


@dataclass(frozen=True)
class StackParams:
    """The fitted serving stack (see the module doc); times in ms."""

    delay_ms: tuple[float, ...]
    batch_overhead_ms: float
    item_ms: float
    loop_ms: float
    occupying_fraction: float

    def frontend(self, scale: float = 1.0, replicas: int = 1) -> EventLoopFrontend:
        """The engine's frontend block for these parameters; ``scale`` stretches everything that holds
        the server (the calibration-uncertainty perturbation).

        Each replica has its own serial loop; the engine has one loop in front of the balancer, so
        ``replicas`` loops are simulated as one loop ``replicas`` times faster: exact in utilisation,
        optimistic in the loop's own queueing when a replica's loop is busy (an approximation).
        """
        loop = self.loop_ms > 0
        return EventLoopFrontend(
            ingress_ms=Constant(value=self.loop_ms * scale / max(replicas, 1)),
            network_ms=Empirical(samples=list(self.delay_ms)),
            handoff_ms=Constant(value=self.batch_overhead_ms * scale),
            item_ms=self.item_ms * scale,
            slowdown_base=scale,
            slowdown_includes_loop_wait=True,
            iterations=2 if loop else 1,
        )

    def to_json(self) -> dict:
        return {"delay_ms": list(self.delay_ms), "batch_overhead_ms": self.batch_overhead_ms,
                "item_ms": self.item_ms, "loop_ms": self.loop_ms, "occupying_fraction": self.occupying_fraction}

    @staticmethod
    def from_json(d: dict) -> StackParams:
        return StackParams(tuple(d["delay_ms"]), d["batch_overhead_ms"], d["item_ms"], d["loop_ms"], d["occupying_fraction"])


SCHEMA = "simlat.serving"
SCHEMA_VERSION = 1


class RunToRun(StrictModel):
    load: float
    repeats: int
    sd_log_p99: float
    sd_log_p50: float
    sd_log_p99_monotone: float


class ResidualByLoad(StrictModel):
    load: float
    log_err_p99: float
    abs_monotone: float


class Uncertainty(StrictModel):
    run_to_run: list[RunToRun] = Field(default_factory=list)
    fit_residual_sd_log_p99: float = 0.0
    fit_residual_by_load: list[ResidualByLoad] = Field(default_factory=list)
    capacity_resolution: float = 0.1
    model_share: float = 1.0
    """The model's share of the server-holding time at batch 1 (the part the model profile's spread moves)."""

    def fit_sd(self, load: float) -> float:
        """The fit's own |log p99 error| at ``load`` (made non-decreasing in load, held flat beyond the ends)."""
        if not self.fit_residual_by_load:
            return self.fit_residual_sd_log_p99
        xs = [r.load for r in self.fit_residual_by_load]
        return float(np.interp(load, xs, [r.abs_monotone for r in self.fit_residual_by_load]))

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


def parse(data: Any, source: str = "frontend.path") -> ServingProfile:
    """Validate a parsed serving profile, refusing another schema or a newer version."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SimlatError(f"{source} is not a serving profile (its schema is not {SCHEMA!r})")
    if data.get("schema_version", 0) > SCHEMA_VERSION:
        raise SimlatError(f"{source} has schema_version {data['schema_version']}, newer than this simlat "
                          f"reads ({SCHEMA_VERSION}); upgrade simlat")
    return validate_as(ServingProfile, data, f"{source} is not a valid serving profile:")


SERVING = register(ProfileKind("serving", frozenset({"serving", SCHEMA}), parse))


def read(path: str | Path) -> ServingProfile:
    """Load (cached by path and modification time; :func:`simlat.profiles.load`) or raise a
    :class:`SimlatError` naming the file."""
    profile = load(path, SERVING.name, field="frontend.path")
    assert isinstance(profile, ServingProfile)
    return profile
