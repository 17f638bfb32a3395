"""Workload: the arrival process, fan-out (items per request) and request keys.

Rates are requests per second; generated arrays are in milliseconds.
Generators live in :mod:`simlat.workload`, one module per ``kind``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.config.dists import Constant, Dist


class Poisson(StrictModel):
    """Exponential inter-arrival gaps (CV 1)."""

    kind: Literal["poisson"] = "poisson"
    rate_rps: PositiveFloat


class Deterministic(StrictModel):
    """Evenly spaced arrivals (CV 0)."""

    kind: Literal["deterministic"] = "deterministic"
    rate_rps: PositiveFloat


class GammaArrivals(StrictModel):
    """Gamma-distributed gaps with a set coefficient of variation (CV < 1 smoother, > 1 burstier)."""

    kind: Literal["gamma"] = "gamma"
    rate_rps: PositiveFloat
    cv: float = Field(ge=1e-3, le=100, description="Coefficient of variation of the gaps (deterministic is its own kind).")


class MMPP(StrictModel):
    """Markov-modulated Poisson process: state i emits at rates_rps[i] and lasts Exp(mean_durations_s[i]).

    States are visited cyclically (0 -> 1 -> ... -> 0). An on-off burst source is two states with
    one rate 0 or low.
    """

    kind: Literal["mmpp"] = "mmpp"
    rates_rps: list[NonNegativeFloat] = Field(min_length=2)
    mean_durations_s: list[PositiveFloat] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self):
        if len(self.rates_rps) != len(self.mean_durations_s):
            raise ValueError("rates_rps and mean_durations_s must have the same length")
        if max(self.rates_rps) <= 0:
            raise ValueError("rates_rps: at least one state must have a positive rate")
        return self


class OnOff(StrictModel):
    """Bursts: Poisson at on_rate_rps for Exp(mean_on_s), then off_rate_rps for Exp(mean_off_s)."""

    kind: Literal["on_off"] = "on_off"
    on_rate_rps: PositiveFloat
    off_rate_rps: NonNegativeFloat = 0.0
    mean_on_s: PositiveFloat
    mean_off_s: PositiveFloat


class Diurnal(StrictModel):
    """Non-homogeneous Poisson with a sinusoidal rate: mean * (1 + amplitude * sin(2 pi (t - phase) / period))."""

    kind: Literal["diurnal"] = "diurnal"
    mean_rate_rps: PositiveFloat
    amplitude: float = Field(ge=0, le=1)
    period_s: PositiveFloat = 86400.0
    phase_s: float = 0.0


class RateCurve(StrictModel):
    """Non-homogeneous Poisson with a piecewise-linear rate through (time_s, rate_rps) points.

    Covers spikes, ramps and steps (two points at the same time make a step). Before the first
    point the rate is the first point's rate. With ``repeat`` the curve on [0, last time] repeats;
    otherwise the last rate holds for ever. The mean offered rate is the mean over [0, last time].
    """

    kind: Literal["rate_curve"] = "rate_curve"
    points: list[tuple[NonNegativeFloat, NonNegativeFloat]] = Field(min_length=2)
    repeat: bool = False

    @model_validator(mode="after")
    def _check(self):
        ts = [p[0] for p in self.points]
        if any(b < a for a, b in zip(ts, ts[1:], strict=False)):
            raise ValueError("points: times must be increasing")
        if any(a == b == c for a, b, c in zip(ts, ts[1:], ts[2:], strict=False)):
            raise ValueError("points: at most two points may share a time (a step)")
        if ts[-1] <= 0:
            raise ValueError("points: the last time must be > 0")
        if not any(b - a > 1e-9 for a, b in zip(ts, ts[1:], strict=False)):
            raise ValueError("points: at least one segment must be longer than a nanosecond (1e-9 s)")
        if max(p[1] for p in self.points) <= 0:
            raise ValueError("points: at least one rate must be positive")
        return self


class Spike(StrictModel):
    """Poisson at base_rate_rps until start_s, then a linear ramp up to spike_rate_rps over ramp_s,
    the spike rate held for duration_s, a linear ramp back down over ramp_s, and base_rate_rps after.

    The mean offered rate is the mean over [0, end of the ramp down]."""

    kind: Literal["spike"] = "spike"
    base_rate_rps: PositiveFloat
    spike_rate_rps: PositiveFloat
    start_s: NonNegativeFloat
    duration_s: PositiveFloat
    ramp_s: NonNegativeFloat = 0.0


class Trace(StrictModel):
    """Replay timestamps from a CSV or Parquet file.

    ``unit``: "s", "ms", "us" for numeric columns, "datetime" for absolute times, "auto" to detect.
    ``target_rate_rps`` rescales time so the mean rate matches, keeping the burst shape.
    ``key_column`` gives request keys (with ``keys: {kind: trace}``); ``items_column`` gives each
    request's items (fan-out or size, rounded, at least 1) in place of ``items_per_request``.
    ``loop`` tiles the trace to reach the asked length; without it the run stops at the trace's end.
    A relative ``path`` is resolved against the experiment file's folder.
    """

    kind: Literal["trace"] = "trace"
    path: Path
    column: str = "timestamp"
    unit: Literal["auto", "s", "ms", "us", "datetime"] = "auto"
    target_rate_rps: PositiveFloat | None = None
    key_column: str | None = None
    items_column: str | None = None
    loop: bool = True


class ClosedLoop(StrictModel):
    """``clients`` users, each sending a request, waiting for the reply, thinking, and repeating."""

    kind: Literal["closed_loop"] = "closed_loop"
    clients: PositiveInt
    think_time_ms: Dist = Constant(value=0.0)


Arrivals = Annotated[
    Poisson | Deterministic | GammaArrivals | MMPP | OnOff | Diurnal | RateCurve | Spike | Trace | ClosedLoop,
    Field(discriminator="kind"),
]


class ZipfKeys(StrictModel):
    """Keys drawn from a Zipf popularity over ``key_space`` keys with ``exponent``."""

    kind: Literal["zipf"] = "zipf"
    exponent: NonNegativeFloat = 1.0
    key_space: PositiveInt = 1_000_000


class TraceKeys(StrictModel):
    """Keys from the replayed trace's ``key_column`` (workload.arrivals must be a trace)."""

    kind: Literal["trace"] = "trace"


Keys = Annotated[ZipfKeys | TraceKeys, Field(discriminator="kind")]


class Workload(StrictModel):
    """What arrives: when (arrivals), how big (items per request), and under which key."""

    arrivals: Arrivals
    items_per_request: PositiveInt | Dist = 1
    keys: Keys | None = None

    @model_validator(mode="after")
    def _trace_keys_need_a_key_column(self):
        if isinstance(self.keys, TraceKeys) and not (
            isinstance(self.arrivals, Trace) and self.arrivals.key_column is not None
        ):
            raise ValueError(
                "keys.kind 'trace' takes keys from the replayed trace: it needs arrivals.kind 'trace' "
                "with arrivals.key_column set"
            )
        if isinstance(self.arrivals, Trace) and self.arrivals.items_column is not None and self.items_per_request != 1:
            raise ValueError(
                "items_per_request: set it or arrivals.items_column (items read from the trace), not both"
            )
        return self
