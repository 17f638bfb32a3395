"""Scaling policies: given the time, the asked-for and ready replica counts and the last scraped
:class:`Observation`, the replica count to ask for next. One class per ``fleet.autoscaling.kind``,
mapped in :data:`POLICIES`. A policy only sees observations (and the clock), never the engine, so the
same policy object drives the quasi-static day and an event-level one.

The HPA-like rule (``target_utilization``), as Kubernetes' horizontal pod autoscaler states it:

- every ``scrape_interval_s``: ``recommendation = ceil(ready * utilisation / target)``, or the current
  count when ``|utilisation / target - 1| <= tolerance``; no scale-down while replicas are starting
  (their utilisation is not yet known), clamped to ``[min_replicas, max_replicas]``;
- stabilisation: scale up to the *lowest* recommendation of the last ``scale_up_stabilization_s``,
  down to the *highest* of the last ``scale_down_stabilization_s`` (the current decision included);
- at most ``max_step_up`` more or ``max_step_down`` fewer replicas per decision.

Utilisation is the ready replicas' busy fraction, which saturates at 1: an overloaded fleet grows at
most by the factor ``1 / target`` per decision, as a CPU-utilisation HPA does. With
``metric: queue_length`` the metric is the requests waiting (not in service) per ready replica, which
does not saturate.

The KPA-like rule (``target_concurrency``), as Knative Serving's autoscaler documents it
(https://knative.dev/docs/serving/autoscaling/kpa-specific/ and the ``config-autoscaler`` defaults):

- the metric is concurrency: requests in the system (queued or in service), all ready replicas
  together, averaged over the stable window (default 60 s) and over the panic window (default 10%
  of it, 6 s);
- ``stable desired = ceil(stable concurrency / target)`` and ``panic desired = ceil(panic
  concurrency / target)``, each clamped to ``[ready / max_scale_down_rate, ready x max_scale_up_rate]``
  (defaults 2 and 1000);
- panic starts when ``ceil(panic concurrency / target) >= panic_threshold x ready`` (default 200%;
  the estimate before the rate clamp, as Knative compares it); in panic the fleet scales to
  ``max(stable desired, panic desired, the highest count asked for in this panic)``: up only, never down;
  panic ends once a whole stable window has passed since the trigger last fired;
- the result is clamped to ``[min_replicas, max_replicas]``. Scale to zero is not modelled
  (``min_replicas >= 1``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from simlat.config import Experiment
from simlat.config.autoscaling import NoAutoscaling, Schedule, TargetConcurrency, TargetUtilization


@dataclass(frozen=True)
class Observation:
    """What a scrape at the end of a stretch of time sees, over that stretch (all ready replicas).

    ``utilization``: mean busy fraction of the ready replicas; ``concurrency``: mean requests in the
    system (queued or in service, end to end: the overheads' time included), all replicas together; ``queue_length``: mean requests waiting, not
    yet in service, all replicas together."""

    utilization: float = 0.0
    concurrency: float = 0.0
    queue_length: float = 0.0


class Fixed:
    """``fleet.replicas`` all day."""

    def __init__(self, cfg: NoAutoscaling, experiment: Experiment):
        self.replicas = experiment.fleet.replicas

    def initial(self) -> int:
        return self.replicas

    def decide(self, t_s: float, spec: int, ready: int, obs: Observation | None) -> int:
        return spec


class Scheduled:
    """The schedule's count for the hour of day (``fleet.autoscaling.replicas``)."""

    def __init__(self, cfg: Schedule, experiment: Experiment):
        self.cfg = cfg

    def initial(self) -> int:
        return self.cfg.at_hour(0.0)

    def decide(self, t_s: float, spec: int, ready: int, obs: Observation | None) -> int:
        return self.cfg.at_hour(t_s / 3600.0)


class TargetTracking:
    """HPA-like tracking of a utilisation or queue-length target (see the module doc)."""

    def __init__(self, cfg: TargetUtilization, experiment: Experiment):
        self.cfg = cfg
        self.start = min(max(experiment.fleet.replicas, cfg.min_replicas), cfg.max_replicas)
        self.history: deque[tuple[float, int]] = deque()
        self.next_scrape = cfg.scrape_interval_s

    def initial(self) -> int:
        return self.start

    def recommend(self, spec: int, ready: int, obs: Observation | None) -> int:
        """The raw recommendation, before stabilisation and step limits."""
        c = self.cfg
        if obs is None:
            value = 0.0
        elif c.metric == "utilization":
            value = obs.utilization
        else:
            value = obs.queue_length / max(ready, 1)
        ratio = value / c.target
        if abs(ratio - 1.0) <= c.tolerance:
            rec = spec
        else:
            rec = math.ceil(ready * ratio - 1e-9)
            if rec < spec and ready < spec:
                rec = spec  # replicas still starting: their load is unknown, do not scale down yet
        return min(max(rec, c.min_replicas), c.max_replicas)

    def decide(self, t_s: float, spec: int, ready: int, obs: Observation | None) -> int:
        c = self.cfg
        if t_s + 1e-9 < self.next_scrape:
            return spec
        while self.next_scrape <= t_s + 1e-9:
            self.next_scrape += c.scrape_interval_s
        self.history.append((t_s, self.recommend(spec, ready, obs)))
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


class ConcurrencyTracking:
    """KPA-like tracking of a concurrency target with a panic mode (see the module doc).

    Each :meth:`decide` records the observation as covering the time since the previous one; the
    stable and panic estimates are the time-weighted means of the observations overlapping the last
    ``stable_window_s`` / panic window (the latest one at least, when the decisions are further apart
    than a window, as in the quasi-static day's windows)."""

    def __init__(self, cfg: TargetConcurrency, experiment: Experiment):
        self.cfg = cfg
        self.start = min(max(experiment.fleet.replicas, cfg.min_replicas), cfg.max_replicas)
        self.seen: deque[tuple[float, float, float]] = deque()  # (from_s, to_s, concurrency)
        self.last_t: float | None = None
        self.panic_since: float | None = None  # when the trigger last fired, while in panic
        self.panic_max = 0

    def initial(self) -> int:
        return self.start

    @property
    def in_panic(self) -> bool:
        return self.panic_since is not None

    def _mean(self, t_s: float, window_s: float) -> float:
        lo = t_s - window_s
        total = weight = 0.0
        for a, b, v in self.seen:
            w = min(b, t_s) - max(a, lo)
            if w > 0:
                total, weight = total + w * v, weight + w
        if weight == 0.0:
            return self.seen[-1][2] if self.seen else 0.0
        return total / weight

    def decide(self, t_s: float, spec: int, ready: int, obs: Observation | None) -> int:
        c = self.cfg
        if obs is not None:
            since = self.last_t if self.last_t is not None else t_s - c.stable_window_s
            self.seen.append((since, t_s, obs.concurrency))
        self.last_t = t_s
        while self.seen and self.seen[0][1] < t_s - c.stable_window_s - 1e-9 and len(self.seen) > 1:
            self.seen.popleft()
        base = max(ready, 1)
        up, down = math.ceil(c.max_scale_up_rate * base), math.floor(base / c.max_scale_down_rate)

        def raw(window_s: float) -> int:
            return math.ceil(self._mean(t_s, window_s) / c.target - 1e-9)

        stable_raw, panic_raw = raw(c.stable_window_s), raw(c.panic_s)
        stable, panic = min(max(stable_raw, down), up), min(max(panic_raw, down), up)
        # Knative compares the panic estimate before the rate clamp: with max_scale_up_rate below the
        # threshold the clamped count could never reach it
        trigger = panic_raw / base >= c.panic_threshold
        if trigger:
            if self.panic_since is None:
                self.panic_max = spec
            self.panic_since = t_s
        elif self.panic_since is not None and self.panic_since + c.stable_window_s <= t_s + 1e-9:
            self.panic_since = None
        if self.in_panic:
            new = max(stable, panic, self.panic_max, spec)  # the larger estimate, up only while in panic
            self.panic_max = new
        else:
            new = stable
        return min(max(new, c.min_replicas), c.max_replicas)


POLICIES = {NoAutoscaling: Fixed, Schedule: Scheduled, TargetUtilization: TargetTracking, TargetConcurrency: ConcurrencyTracking}
"""Config class -> policy implementation."""
