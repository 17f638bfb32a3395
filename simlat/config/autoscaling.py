"""Autoscaling: how the fleet's replica count follows the load over a day (``fleet.autoscaling``).

Used by ``simlat day`` (:mod:`simlat.autoscale`; quasi-static or ``--engine exact``) only; ``simlat simulate`` and sweeps run the
fixed ``fleet.replicas``. Every policy kind shares the day's settings (length, window, requests
simulated per window, prices); ``schedule`` and ``target_utilization`` also bound the replica
count and say how long a new replica takes to become ready (its cold start).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.config.dists import Dist

DEFAULT_COLD_START_S = 60.0
"""A new replica's delay to ready (s) when neither ``cold_start_s`` nor the service profile gives one."""


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

    @model_validator(mode="after")
    def _window_fits(self):
        if self.window_s > self.day_s:
            raise ValueError(f"window_s ({self.window_s:g}) must be <= day_s ({self.day_s:g})")
        return self


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
    """HPA-like: every ``scrape_interval_s`` the desired count is ``ceil(ready * utilisation / target)``
    (kept when within ``tolerance`` of the current count), stabilised (scale up to the lowest, down to
    the highest recommendation of the last ``scale_up_stabilization_s`` / ``scale_down_stabilization_s``),
    changed by at most ``max_step_up`` / ``max_step_down`` replicas per decision, within the bounds."""

    kind: Literal["target_utilization"] = "target_utilization"
    target: float = Field(gt=0, le=1, description="Busy fraction of the ready replicas to aim for.")
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="No change while |utilisation / target - 1| <= tolerance.")
    scrape_interval_s: PositiveFloat = 60.0
    scale_up_stabilization_s: NonNegativeFloat = 0.0
    scale_down_stabilization_s: NonNegativeFloat = 300.0
    max_step_up: PositiveInt | None = None
    max_step_down: PositiveInt | None = None


Autoscaling = Annotated[NoAutoscaling | Schedule | TargetUtilization, Field(discriminator="kind")]
