"""``simulate``: run one experiment's requests through cache, balancer, batcher and servers.

Randomness: the engine's ``SeedSequence`` is spawned into named streams (``STREAMS``), so a
change in one part (say the overhead model) never shifts another's draws, and the same seed
gives the same bytes out.

Two ways through the same semantics (:mod:`simlat.engine.batching` defines them):

- :mod:`simlat.engine.static_queue` when queue membership is known up front (one shared queue;
  per-replica queues with round-robin or random routing; no admission control; open loop):
  one process per queue, one event per batch, no per-request Python work.
- :mod:`simlat.engine.event_queue` otherwise (join-shortest-queue, power-of-two, queue capacity,
  timeouts, closed-loop clients): arrivals are walked in time order and routed from the
  replicas' state, with server events (dispatches, completions) processed between them.

Service draws come from one stream per queue (the shared queue, or each replica's own queue), in
dispatch order, so both paths and the naive reference (:mod:`simlat.engine.reference`) see the
same draws for the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from simlat import dists
from simlat.config import Experiment
from simlat.engine.balancer import STATIC, route_static
from simlat.engine.batching import BatchPolicy
from simlat.engine.log import BatchLog
from simlat.engine.records import Records, SimResult
from simlat.engine.service import ServiceModel, build_service
from simlat.engine.static_queue import StaticQueue
from simlat.errors import SimlatError
from simlat.workload import Requests

STREAMS = ("service", "overheads", "balancer", "cache", "clients")
"""Named random streams spawned, in this order, from the engine's SeedSequence."""


@dataclass(frozen=True)
class Streams:
    """One SeedSequence per part of the engine."""

    service: np.random.SeedSequence
    overheads: np.random.SeedSequence
    balancer: np.random.SeedSequence
    cache: np.random.SeedSequence
    clients: np.random.SeedSequence

    @classmethod
    def spawn(cls, seed: np.random.SeedSequence) -> Streams:
        """Spawn the named streams from ``seed``."""
        return cls(*seed.spawn(len(STREAMS)))

    def service_rngs(self, queues: int) -> list[np.random.Generator]:
        """One generator per queue for service draws."""
        return [np.random.default_rng(s) for s in self.service.spawn(queues)]


def uses_static_path(experiment: Experiment) -> bool:
    """True when queue membership is known before the run (see the module docstring)."""
    fleet, adm = experiment.fleet, experiment.admission
    if experiment.workload.arrivals.kind == "closed_loop":
        return False
    if adm.queue_capacity is not None or adm.timeout_ms is not None:
        return False
    return fleet.queue == "shared" or fleet.replicas == 1 or fleet.balancer in STATIC


def capacity_rps(service: ServiceModel, policy: BatchPolicy, replicas: int, mean_items: float) -> float:
    """Fleet throughput with every replica serving full batches of mean-sized requests back to back."""
    b = policy.max_batch
    items = b * mean_items
    if policy.buckets is not None:
        fit = [x for x in policy.buckets if x >= items]
        items = fit[0] if fit else policy.buckets[-1]
    ms = service.mean_ms(items)
    return math.inf if ms <= 0 else replicas * b / ms * 1000.0


def _offered_rps(arrival: np.ndarray) -> float | None:
    n = len(arrival)
    if n < 2 or arrival[-1] <= arrival[0]:
        return None
    return (n - 1) / (arrival[-1] - arrival[0]) * 1000.0


def _overheads(experiment: Experiment, n: int, rng: np.random.Generator) -> np.ndarray:
    ov = experiment.overheads
    out = np.zeros(n)
    for dist in (ov.network_rtt_ms, ov.serialization_ms):
        if not dists.is_zero(dist):
            out += dists.sample(dist, n, rng)
    return out


def _run_static(experiment, requests, ids, policy, service, streams, progress) -> tuple[BatchLog, float]:
    fleet = experiment.fleet
    R = fleet.replicas
    arrival = requests.arrival_ms[ids]
    items = None if np.all(requests.items[ids] == 1) else requests.items[ids]
    env = simpy.Environment()
    if fleet.queue == "shared" or R == 1:
        groups = [(ids, arrival, items, list(range(R)))]
    else:
        route = route_static(fleet.balancer, len(ids), R, np.random.default_rng(streams.balancer))
        groups = []
        for r in range(R):
            sel = np.flatnonzero(route == r)
            groups.append((ids[sel], arrival[sel], None if items is None else items[sel], [r]))
    rngs = streams.service_rngs(len(groups))
    queues = [
        StaticQueue(g_ids, g_arr, g_items, reps, policy, service.batch_sampler(rng))
        for (g_ids, g_arr, g_items, reps), rng in zip(groups, rngs, strict=True)
    ]
    for q in queues:
        env.process(q.process(env))
    env.run()
    log = BatchLog()
    for q in queues:
        q.log_into(log)
    return log, env.now


def simulate(
    experiment: Experiment,
    requests: Requests | None,
    *,
    seed: np.random.SeedSequence,
    progress: bool = False,
) -> SimResult:
    """Simulate ``requests`` (None for a closed-loop workload) through the experiment's service.

    Every request ends exactly once: served (``done_ms`` set) or dropped (``dropped`` True,
    latency NaN). ``latency_ms = done_ms - arrival_ms + overhead_ms``.
    """
    streams = Streams.spawn(seed)
    service = build_service(experiment.service)
    policy = BatchPolicy.from_config(experiment.batching)
    fleet = experiment.fleet
    closed = experiment.workload.arrivals.kind == "closed_loop"

    if closed:
        if requests is not None:
            raise SimlatError("workload.arrivals: closed_loop generates its own requests; pass requests=None")
        from simlat.engine.event_queue import run_events

        ev = run_events(experiment, None, policy, service, streams, progress)
        requests = ev.requests
    else:
        if requests is None:
            raise SimlatError(
                f"workload.arrivals: {experiment.workload.arrivals.kind} needs generated requests"
            )
        ev = None

    n = len(requests)
    arrival = np.asarray(requests.arrival_ms, dtype=float)
    cache_cols = None
    queued = np.arange(n, dtype=np.int64)
    if experiment.cache is not None:
        cache_cols, queued = _apply_cache(experiment, requests, streams)

    if ev is None:
        if uses_static_path(experiment):
            log, end = _run_static(experiment, requests, queued, policy, service, streams, progress)
            dropped = np.zeros(n, dtype=bool)
        else:
            from simlat.engine.event_queue import run_events

            ev = run_events(experiment, requests, policy, service, streams, progress, ids=queued)
            log, end, dropped = ev.log, ev.end_ms, ev.dropped
    else:
        log, end, dropped = ev.log, ev.end_ms, ev.dropped

    cols = log.expand(n, arrival, policy.on_close)
    overhead = (
        ev.overhead
        if (ev is not None and ev.overhead is not None)
        else _overheads(experiment, n, np.random.default_rng(streams.overheads))
    )
    busy = np.bincount(cols.pop("busy_replica"), weights=cols.pop("busy_service"), minlength=fleet.replicas)
    items = np.asarray(requests.items, dtype=np.int64)
    key = np.full(n, -1, dtype=np.int64) if requests.key is None else np.asarray(requests.key, dtype=np.int64)
    cache_ms = np.zeros(n)
    l1 = np.zeros(n, dtype=bool)
    l2 = np.zeros(n, dtype=bool)
    done = cols["done_ms"]
    if cache_cols is not None:
        cache_ms, l1, l2, served = (
            cache_cols["cache_ms"],
            cache_cols["l1_hit"],
            cache_cols["l2_hit"],
            cache_cols["served"],
        )
        done = np.where(served, arrival + cache_ms, done + cache_ms)
        for name in ("queue_wait_ms", "batch_wait_ms", "service_ms"):
            cols[name] = np.where(served, 0.0, cols[name])
        end = max(end, float(np.max(done[served]))) if served.any() else end
    latency = done - arrival + overhead
    latency[dropped] = np.nan
    records = Records(
        arrival_ms=arrival,
        dispatch_ms=cols["dispatch_ms"],
        batch_id=cols["batch_id"],
        batch_size=cols["batch_size"],
        items=items,
        replica=cols["replica"]
        if ev is None or ev.routed is None
        else np.where(cols["replica"] >= 0, cols["replica"], ev.routed),
        queue_wait_ms=cols["queue_wait_ms"],
        batch_wait_ms=cols["batch_wait_ms"],
        service_ms=cols["service_ms"],
        overhead_ms=overhead,
        cache_ms=cache_ms,
        done_ms=done,
        latency_ms=latency,
        dropped=dropped,
        key=key,
        l1_hit=l1,
        l2_hit=l2,
    )
    mean_items = float(items.mean()) if n else 1.0
    return SimResult(
        records=records,
        busy_ms=busy,
        end_ms=float(end),
        capacity_rps=capacity_rps(service, policy, fleet.replicas, mean_items),
        offered_rps=None if closed else _offered_rps(arrival),
        n_replicas=fleet.replicas,
    )


def _apply_cache(experiment, requests, streams):
    """Run the cache model; returns its per-request columns and the ids that still need the service."""
    try:
        from simlat.engine.cache import apply_cache
    except ImportError as err:
        raise SimlatError(
            "cache: the prediction-cache model is not available in this version of simlat"
        ) from err
    outcome = apply_cache(experiment.cache, requests, np.random.default_rng(streams.cache))
    served = np.asarray(outcome.served, dtype=bool)
    cols = {
        "served": served,
        "cache_ms": np.asarray(outcome.lookup_ms, dtype=float),
        "l1_hit": np.asarray(outcome.l1_hit, dtype=bool),
        "l2_hit": np.asarray(outcome.l2_hit, dtype=bool),
    }
    return cols, np.flatnonzero(~served)
