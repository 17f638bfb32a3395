"""Scaling policies: given the time, the asked-for and ready replica counts and the last scraped
utilisation, the replica count to ask for next. One class per ``fleet.autoscaling.kind``, mapped in
:data:`POLICIES`.

The HPA-like rule (``target_utilization``), as Kubernetes' horizontal pod autoscaler states it:

- every ``scrape_interval_s``: ``recommendation = ceil(ready * utilisation / target)``, or the current
  count when ``|utilisation / target - 1| <= tolerance``; no scale-down while replicas are starting
  (their utilisation is not yet known), clamped to ``[min_replicas, max_replicas]``;
- stabilisation: scale up to the *lowest* recommendation of the last ``scale_up_stabilization_s``,
  down to the *highest* of the last ``scale_down_stabilization_s`` (the current decision included);
- at most ``max_step_up`` more or ``max_step_down`` fewer replicas per decision.

Utilisation is the ready replicas' busy fraction, which saturates at 1: an overloaded fleet grows at
most by the factor ``1 / target`` per decision, as a CPU-utilisation HPA does.
"""

from __future__ import annotations

import math
from collections import deque

from simlat.config import Experiment
from simlat.config.autoscaling import NoAutoscaling, Schedule, TargetUtilization


class Fixed:
    """``fleet.replicas`` all day."""

    def __init__(self, cfg: NoAutoscaling, experiment: Experiment):
        self.replicas = experiment.fleet.replicas

    def initial(self) -> int:
        return self.replicas

    def decide(self, t_s: float, spec: int, ready: int, utilization: float | None) -> int:
        return spec


class Scheduled:
    """The schedule's count for the hour of day (``fleet.autoscaling.replicas``)."""

    def __init__(self, cfg: Schedule, experiment: Experiment):
        self.cfg = cfg

    def initial(self) -> int:
        return self.cfg.at_hour(0.0)

    def decide(self, t_s: float, spec: int, ready: int, utilization: float | None) -> int:
        return self.cfg.at_hour(t_s / 3600.0)


class TargetTracking:
    """HPA-like tracking of a utilisation target (see the module doc)."""

    def __init__(self, cfg: TargetUtilization, experiment: Experiment):
        self.cfg = cfg
        self.start = min(max(experiment.fleet.replicas, cfg.min_replicas), cfg.max_replicas)
        self.history: deque[tuple[float, int]] = deque()
        self.next_scrape = cfg.scrape_interval_s

    def initial(self) -> int:
        return self.start

    def recommend(self, spec: int, ready: int, utilization: float | None) -> int:
        """The raw recommendation, before stabilisation and step limits."""
        c = self.cfg
        ratio = (utilization or 0.0) / c.target
        if abs(ratio - 1.0) <= c.tolerance:
            rec = spec
        else:
            rec = math.ceil(ready * ratio - 1e-9)
            if rec < spec and ready < spec:
                rec = spec  # replicas still starting: their load is unknown, do not scale down yet
        return min(max(rec, c.min_replicas), c.max_replicas)

    def decide(self, t_s: float, spec: int, ready: int, utilization: float | None) -> int:
        c = self.cfg
        if t_s + 1e-9 < self.next_scrape:
            return spec
        while self.next_scrape <= t_s + 1e-9:
            self.next_scrape += c.scrape_interval_s
        self.history.append((t_s, self.recommend(spec, ready, utilization)))
        keep = max(c.scale_up_stabilization_s, c.scale_down_stabilization_s)
        while self.history and self.history[0][0] < t_s - keep - 1e-9:
            self.history.popleft()
        up = min(r for t, r in self.history if t >= t_s - c.scale_up_stabilization_s - 1e-9)
        down = max(r for t, r in self.history if t >= t_s - c.scale_down_stabilization_s - 1e-9)
        new = spec
        if spec < up:
            new = up
        elif spec > down:
            new = down
        if c.max_step_up is not None:
            new = min(new, spec + c.max_step_up)
        if c.max_step_down is not None:
            new = max(new, spec - c.max_step_down)
        return min(max(new, c.min_replicas), c.max_replicas)


POLICIES = {NoAutoscaling: Fixed, Schedule: Scheduled, TargetUtilization: TargetTracking}
"""Config class -> policy implementation."""
