"""Autoscaling: how the fleet's replica count follows the load over a day (``fleet.autoscaling``).

Used by ``simlat day`` (:mod:`simlat.autoscale`; quasi-static or ``--engine exact``) only; ``simlat simulate`` and sweeps run the
fixed ``fleet.replicas``. Every policy kind shares the day's settings (length, window, requests
simulated per window, prices); ``schedule`` and ``target_utilization`` also bound the replica
count and say how long a new replica takes to become ready (its cold start).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError, model_validator

from simlat.config.base import StrictModel
from simlat.config.dists import Dist

DEFAULT_COLD_START_S = 60.0
"""A new replica's delay to ready (s) when neither ``cold_start_s`` nor the service profile gives one."""


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(x) for x in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


class DaySweep(StrictModel):
    """A sweep over the policy's own parameters (``simlat day --sweep``): every combination of ``grid``
    (keys are fields of this ``fleet.autoscaling`` block: ``target``, ``min_replicas``,
    ``scale_down_stabilization_s``, ...) is run through the day, and the cheapest policy whose SLO
    compliance reaches ``compliance_target`` is chosen (compliance of 1-minute windows, or of requests,
    as ``compliance_on`` says)."""

    grid: dict[str, list[Any]] = Field(min_length=1, description="Field of the policy -> values; the product is swept.")
    compliance_target: float = Field(default=0.99, gt=0, le=1, description="Share that must meet the SLO.")
    compliance_on: Literal["minutes", "requests"] = Field(
        default="minutes", description="minutes: share of 1-minute windows meeting the SLO; requests: share of requests."
    )
    max_configs: PositiveInt = Field(default=200, description="The most policies the grid may expand to.")

    @model_validator(mode="after")
    def _size(self):
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: needs at least one value")
        n = 1
        for values in self.grid.values():
            n *= len(values)
        if n > self.max_configs:
            raise ValueError(f"grid: expands to {n} policies, more than max_configs ({self.max_configs})")
        return self

    def combinations(self) -> list[dict[str, Any]]:
        """Every point of the grid, in file order (the last key varying fastest)."""
        keys = list(self.grid)
        return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*self.grid.values())]


class _Day(StrictModel):
    """The day's settings, common to every policy."""

    day_s: PositiveFloat = Field(default=86400.0, description="Length of the simulated day (s).")
    window_s: PositiveFloat = Field(
        default=60.0, description="One row of the day's table per window; the quasi-static engine simulates each window alone "
        "at its mean rate (simlat day --window-s overrides)."
    )
    requests_per_window: PositiveInt = Field(
        default=20_000, ge=100, description="Most requests simulated per window by the quasi-static engine (fewer when the window offers "
        "fewer); the exact engine simulates every request."
    )
    prices: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="USD per replica-hour by device or profile name, looked up as in sweeps."
    )
    cost_per_replica_hour: PositiveFloat | None = Field(default=None, description="USD per replica-hour when no price matches.")
    recovery_windows: PositiveInt = Field(
        default=3, description="A breach of the SLO is over when this many windows in a row meet it again (or the day ends)."
    )
    sweep: DaySweep | None = Field(default=None, description="Policy parameters to sweep with simlat day --sweep.")

    @model_validator(mode="after")
    def _window_fits(self):
        if self.window_s > self.day_s:
            raise ValueError(f"window_s ({self.window_s:g}) must be <= day_s ({self.day_s:g})")
        return self

    @model_validator(mode="after")
    def _sweep_points_valid(self):
        if self.sweep is None:
            return self
        own = set(type(self).model_fields) - {"kind", "sweep"}
        for key in self.sweep.grid:
            if key not in own:
                raise ValueError(f"sweep.grid.{key}: not a field of a {getattr(self, 'kind', '')!r} policy; one of {', '.join(sorted(own))}")
        base = self.model_dump(exclude={"sweep"})
        try:  # the policy's own rules run after this check (subclass validators come last): say its error as is
            type(self).model_validate(base)
        except ValidationError as err:
            raise ValueError(_first_error(err)) from None
        for point in self.sweep.combinations():
            try:
                type(self).model_validate({**base, **point})
            except ValidationError as err:
                shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise ValueError(f"sweep.grid: the policy {shown} is invalid: {_first_error(err)}") from None
        return self

    def variants(self) -> list[tuple[dict[str, Any], _Day]]:
        """(grid point, the policy with it applied and no sweep) for every point of ``sweep.grid``."""
        if self.sweep is None:
            return [({}, self)]
        base = self.model_dump(exclude={"sweep"})
        return [(p, type(self).model_validate({**base, **p})) for p in self.sweep.combinations()]


class _Bounded(_Day):
    """Replica bounds and the cold start of a new replica."""

    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt
    cold_start_s: Dist | None = Field(
        default=None,
        description="Delay from asking for a replica to it serving (s); default: the service profile's measured "
        f"cold start of the variant (process ready + setup + first call), else {DEFAULT_COLD_START_S:g} s.",
    )

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})")
        return self


class NoAutoscaling(_Day):
    """``fleet.replicas`` all day."""

    kind: Literal["none"] = "none"


class Schedule(_Bounded):
    """Replicas by hour of day: ``[[0, 4], [8, 10], [20, 6]]`` asks for 4 from 00:00, 10 from 08:00, 6 from
    20:00 to 24:00. The first hour must be 0 and hours increase below 24, so the whole day is covered."""

    kind: Literal["schedule"] = "schedule"
    replicas: list[tuple[NonNegativeFloat, PositiveInt]] = Field(min_length=1)

    @model_validator(mode="after")
    def _covers_the_day(self):
        hours = [h for h, _ in self.replicas]
        if hours[0] != 0:
            raise ValueError(f"replicas: the schedule starts at hour {hours[0]:g}; it must start at hour 0 to cover the day")
        if any(b <= a for a, b in zip(hours, hours[1:], strict=False)):
            raise ValueError("replicas: hours must be strictly increasing")
        if hours[-1] >= 24:
            raise ValueError(f"replicas: hour {hours[-1]:g} is outside the day; hours are in [0, 24)")
        for h, n in self.replicas:
            if not self.min_replicas <= n <= self.max_replicas:
                raise ValueError(f"replicas: {n} at hour {h:g} is outside [min_replicas, max_replicas] = "
                                 f"[{self.min_replicas}, {self.max_replicas}]")
        return self

    def at_hour(self, hour: float) -> int:
        """Replicas asked for at ``hour`` (of the day, wrapped into [0, 24))."""
        hour = hour % 24.0
        return [n for h, n in self.replicas if h <= hour][-1]


class TargetUtilization(_Bounded):
    """HPA-like: every ``scrape_interval_s`` the desired count is ``ceil(ready * metric / target)``
    (kept when within ``tolerance`` of the current count), stabilised (scale up to the lowest, down to
    the highest recommendation of the last ``scale_up_stabilization_s`` / ``scale_down_stabilization_s``),
    changed by at most ``max_step_up`` / ``max_step_down`` replicas per decision, within the bounds.

    ``metric``: ``utilization`` (busy fraction of the ready replicas; ``target`` in (0, 1]) or
    ``queue_length`` (requests waiting per ready replica, not yet in service; ``target`` > 0)."""

    kind: Literal["target_utilization"] = "target_utilization"
    metric: Literal["utilization", "queue_length"] = "utilization"
    target: float = Field(gt=0, description="Metric value per ready replica to aim for (utilization: a busy fraction <= 1).")
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="No change while |utilisation / target - 1| <= tolerance.")
    scrape_interval_s: PositiveFloat = 60.0
    scale_up_stabilization_s: NonNegativeFloat = 0.0
    scale_down_stabilization_s: NonNegativeFloat = 300.0
    max_step_up: PositiveInt | None = None
    max_step_down: PositiveInt | None = None

    @model_validator(mode="after")
    def _target_range(self):
        if self.metric == "utilization" and self.target > 1:
            raise ValueError(f"target: {self.target:g} is a utilisation: it must be in (0, 1]")
        return self


class TargetConcurrency(_Bounded):
    """Knative-KPA-like: desired replicas ``ceil(concurrency / target)``, the concurrency (requests in the
    system, all ready replicas together) averaged over ``stable_window_s``; a shorter ``panic_window_s``
    estimate that asks for ``panic_threshold`` x the ready replicas or more enters panic mode: scale up on
    the panic estimate, never down, until a stable window passes without the trigger. Each decision grows
    the fleet at most to ``max_scale_up_rate`` x ready and shrinks it at most to ready / ``max_scale_down_rate``.
    Knative decides every 2 s; the quasi-static day decides once per window, on the window's observation."""

    kind: Literal["target_concurrency"] = "target_concurrency"
    target: float = Field(gt=0, description="Requests in the system per ready replica to aim for.")
    stable_window_s: PositiveFloat = Field(default=60.0, description="Averaging window of the stable mode (s).")
    panic_window_s: PositiveFloat | None = Field(default=None, description="Averaging window of the panic mode (s); default 10% of the stable window.")
    panic_threshold: float = Field(default=2.0, description="Panic when the panic estimate asks for this many times the ready replicas (2.0: 200%); > 1.")
    max_scale_up_rate: float = Field(default=1000.0, description="At most this many times the ready replicas per decision; > 1.")
    max_scale_down_rate: float = Field(default=2.0, description="At least ready / this many replicas per decision; > 1.")

    @model_validator(mode="after")
    def _kpa_rules(self):
        for name in ("panic_threshold", "max_scale_up_rate", "max_scale_down_rate"):
            v = getattr(self, name)
            if not v > 1:
                raise ValueError(f"{name}: {v:g} must be > 1")
        if self.panic_window_s is not None and self.panic_window_s > self.stable_window_s:
            raise ValueError(f"panic_window_s: {self.panic_window_s:g} must be <= stable_window_s ({self.stable_window_s:g})")
        return self

    @property
    def panic_s(self) -> float:
        """The panic window (s): ``panic_window_s``, else 10% of the stable window."""
        return self.panic_window_s if self.panic_window_s is not None else 0.1 * self.stable_window_s


Autoscaling = Annotated[NoAutoscaling | Schedule | TargetUtilization | TargetConcurrency, Field(discriminator="kind")]
