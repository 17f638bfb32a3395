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
  replicas' state, with server events (dispatches, completions) processed between them; its
  common case (per-replica queues, on_free, no admission control) in
  :mod:`simlat.engine.routed`.

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
from simlat.engine.progress import RunProgress
from simlat.engine.records import CacheCounts, Records, SimResult
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
        """The named streams of ``seed``: its first children, whatever it spawned before (so the
        same seed object gives the same streams every time)."""
        return cls(
            *(
                np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size)
                for i in range(len(STREAMS))
            )
        )

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


def _padded_mean_ms(service: ServiceModel, policy: BatchPolicy, items: float) -> float:
    if policy.buckets is not None:
        fit = [x for x in policy.buckets if x >= items]
        items = fit[0] if fit else policy.buckets[-1]
    return service.mean_ms(items)


def capacity_rps(service: ServiceModel, policy: BatchPolicy, replicas: int, mean_items: float) -> float:
    """The engine's estimate of the fleet's maximum throughput, requests per second.

    ``on_free`` (and no batching): every replica serves full batches of mean-sized requests back
    to back, ``replicas * B / mean_ms(B * items)``. ``on_close``: batches close on time whatever
    the load, so they are not full: with Poisson arrivals at rate ``l`` a batch holds
    ``b = min(B, 1 + Poisson(l * W))`` requests, and the capacity is the largest ``l`` with
    ``l * E[mean_ms(b * items)] / E[b] <= replicas`` (found by bisection; adaptive batching uses
    its window at that rate).
    """
    B = policy.max_batch
    ms = _padded_mean_ms(service, policy, B * mean_items)
    full = math.inf if ms <= 0 else replicas * B / ms  # per ms
    if not policy.on_close or B == 1 or not math.isfinite(full):
        return full * 1000.0
    from scipy.stats import poisson

    sizes = np.arange(1, B + 1)
    batch_ms = np.array([_padded_mean_ms(service, policy, k * mean_items) for k in sizes])

    def load(rate: float) -> float:  # busy replicas needed at ``rate`` requests per ms
        W = policy.max_wait_ms
        if policy.adaptive:
            f = min(1.0, rate * policy.max_wait_ms / B)
            W = policy.min_wait_ms + (policy.max_wait_ms - policy.min_wait_ms) * f
        pmf = poisson.pmf(sizes - 1, rate * W)
        pmf[-1] += max(0.0, 1.0 - pmf.sum())  # min(B, .): the tail piles up at B
        return rate * float(pmf @ batch_ms) / float(pmf @ sizes)

    if load(full) <= replicas:
        return full * 1000.0
    lo, hi = 0.0, full
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if load(mid) <= replicas else (lo, mid)
    return lo * 1000.0


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


def _run_static(experiment, requests, policy, service, streams, progress=None) -> tuple[BatchLog, float]:
    fleet = experiment.fleet
    R = fleet.replicas
    ids = np.arange(len(requests), dtype=np.int64)
    arrival = np.asarray(requests.arrival_ms, dtype=float)
    items = None if np.all(requests.items == 1) else np.asarray(requests.items, dtype=np.int64)
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
        q.progress = progress
        env.process(q.process(env))
    env.run()
    log = BatchLog()
    for q in queues:
        q.log_into(log)
    return log, env.now


@dataclass
class _Queued:
    """The engine's view of the requests that reach the balancer (after the cache)."""

    requests: Requests  # arrival at the balancer, items to compute
    ids: np.ndarray  # their positions in the full request table


def simulate(
    experiment: Experiment,
    requests: Requests | None,
    *,
    seed: np.random.SeedSequence,
    progress: bool = False,
    service: ServiceModel | None = None,
) -> SimResult:
    """Simulate ``requests`` (None for a closed-loop workload) through the experiment's service.

    ``service`` replaces the model built from ``experiment.service``. This is the batcher and the
    servers alone; :func:`simlat.engine.simulate` adds the serving stack (``experiment.frontend``,
    :mod:`simlat.engine.frontend`) around it when the experiment has one.

    Every request ends exactly once: served (``done_ms`` set) or dropped (``dropped`` True,
    latency NaN). ``latency_ms = done_ms - arrival_ms + overhead_ms``. With a cache, requests it
    serves skip the queue (``done = arrival + cache_ms``); the others reach the balancer at
    ``arrival + cache_ms`` with the items the cache could not answer.
    """
    if experiment.frontend is not None:
        raise SimlatError("frontend: simulate through simlat.engine.simulate, which models the serving stack")
    streams = Streams.spawn(seed)
    service = service or build_service(experiment.service)
    policy = BatchPolicy.from_config(experiment.batching)
    fleet = experiment.fleet
    closed = experiment.workload.arrivals.kind == "closed_loop"
    kind = experiment.workload.arrivals.kind
    if closed and requests is not None:
        raise SimlatError("workload.arrivals: closed_loop generates its own requests; pass requests=None")
    if not closed and requests is None:
        raise SimlatError(f"workload.arrivals: {kind} needs generated requests (requests=None given)")
    if closed and experiment.cache is not None:
        raise SimlatError("cache: not supported with workload.arrivals.kind closed_loop")
    if requests is not None:
        _check_requests(requests)
    if closed:
        _check_closed_loop(experiment)

    cache = None
    if closed:
        from simlat.engine.event_queue import run_events

        ev = run_events(experiment, None, policy, service, streams, progress)
        requests = ev.requests
        queued = _Queued(requests, np.arange(len(requests), dtype=np.int64))
    else:
        ev = None
        if experiment.cache is not None:
            cache = _apply_cache(experiment, requests, streams)
            queued = cache.queued
        else:
            queued = _Queued(requests, np.arange(len(requests), dtype=np.int64))
        if uses_static_path(experiment):
            bar = RunProgress(len(queued.ids), progress)
            try:
                log, end = _run_static(experiment, queued.requests, policy, service, streams, bar)
            finally:
                bar.close()
            q_dropped = np.zeros(len(queued.ids), dtype=bool)
            routed = None
        else:
            from simlat.engine.event_queue import run_events

            ev = run_events(experiment, queued.requests, policy, service, streams, progress)
    if ev is not None:
        log, end, q_dropped, routed = ev.log, ev.end_ms, ev.dropped, ev.routed

    n = len(requests)
    arrival = np.asarray(requests.arrival_ms, dtype=float)
    qcols = log.expand(len(queued.ids), np.asarray(queued.requests.arrival_ms, dtype=float), policy.on_close)
    busy = np.bincount(
        qcols.pop("busy_replica"), weights=qcols.pop("busy_service"), minlength=fleet.replicas
    ).astype(float)
    if routed is not None:
        qcols["replica"] = np.where(qcols["replica"] >= 0, qcols["replica"], routed)
    if cache is None:  # every request went through the queues, in order
        cols, dropped = qcols, np.asarray(q_dropped, dtype=bool)
    else:
        cols = {}
        for name, v in qcols.items():
            full = np.full(n, -1 if v.dtype.kind == "i" else np.nan, dtype=v.dtype)
            if name == "batch_size":
                full[:] = 0
            full[queued.ids] = v
            cols[name] = full
        dropped = np.zeros(n, dtype=bool)
        dropped[queued.ids] = q_dropped

    if ev is not None and ev.overhead is not None:
        overhead = ev.overhead
    else:
        overhead = _overheads(experiment, n, np.random.default_rng(streams.overheads))
    items = np.asarray(requests.items, dtype=np.int64)
    key = np.full(n, -1, dtype=np.int64) if requests.key is None else np.asarray(requests.key, dtype=np.int64)
    done = cols["done_ms"]
    if cache is not None:
        cache_ms, l1, l2, served = cache.cache_ms, cache.l1_hit, cache.l2_hit, cache.served
        done[served] = arrival[served] + cache_ms[served]
        for name in ("queue_wait_ms", "batch_wait_ms", "service_ms"):
            cols[name][served] = 0.0
        if served.any():
            end = max(end, float(np.max(done[served])))
    else:
        cache_ms = np.zeros(n)
        l1 = np.zeros(n, dtype=bool)
        l2 = np.zeros(n, dtype=bool)
    if len(done) and not np.all(np.isnan(done)):
        end = max(end, float(np.nanmax(done)))  # the last completion
    latency = np.subtract(done, arrival)
    latency += overhead
    latency[dropped] = np.nan
    records = Records(
        arrival_ms=arrival,
        dispatch_ms=cols["dispatch_ms"],
        batch_id=cols["batch_id"],
        batch_size=cols["batch_size"],
        items=items,
        replica=cols["replica"],
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
    q_items = np.asarray(queued.requests.items)
    mean_items = float(q_items.mean()) if len(q_items) else 1.0
    return SimResult(
        records=records,
        busy_ms=busy,
        end_ms=float(end),
        # in arriving requests: with a cache, only the misses (a fraction of them) load the fleet
        capacity_rps=capacity_rps(service, policy, fleet.replicas, mean_items) * n / max(1, len(queued.ids)),
        offered_rps=None if closed else _offered_rps(arrival),
        n_replicas=fleet.replicas,
        cache=None if cache is None else cache.counts,
        warnings=[] if cache is None else list(cache.warnings),
    )


def _check_requests(requests: Requests) -> None:
    """The engine relies on sorted arrivals and on at least one item per request."""
    arrival, items = np.asarray(requests.arrival_ms), np.asarray(requests.items)
    if len(items) != len(arrival):
        raise ValueError(f"requests: {len(arrival)} arrivals but {len(items)} item counts")
    if len(arrival) > 1 and not np.all(arrival[1:] >= arrival[:-1]):
        raise ValueError("requests.arrival_ms must be sorted (non-decreasing)")
    if len(items) and items.min() < 1:
        raise ValueError(f"requests.items must be >= 1, found {items.min()}")


def _check_closed_loop(experiment: Experiment) -> None:
    """Refuse a closed loop whose rejected clients would resend at the same instant forever."""
    cl, cap = experiment.workload.arrivals, experiment.admission.queue_capacity
    think = cl.think_time_ms
    if cap is not None and cl.clients > cap and dists.is_zero(think):
        raise SimlatError(
            f"workload.arrivals.think_time_ms: 0 with {cl.clients} clients and admission.queue_capacity "
            f"{cap}: a rejected client would resend at the same instant forever; "
            "give a positive think time or at most queue_capacity clients"
        )


@dataclass
class _CacheStage:
    """The cache's per-request columns and the requests it passes on."""

    served: np.ndarray
    cache_ms: np.ndarray
    l1_hit: np.ndarray
    l2_hit: np.ndarray
    queued: _Queued
    counts: CacheCounts
    warnings: tuple[str, ...]


def _apply_cache(experiment, requests, streams) -> _CacheStage:
    """Run the cache model (:mod:`simlat.engine.cache`); misses reach the balancer after their lookups."""
    from simlat.engine.cache import apply_cache

    out = apply_cache(
        experiment.cache, requests, np.random.default_rng(streams.cache), workload=experiment.workload,
        replicas=experiment.fleet.replicas,
    )
    served = np.asarray(out.served, dtype=bool)
    cache_ms = np.asarray(out.cache_ms, dtype=float)
    miss = np.flatnonzero(~served)
    q_arr = np.asarray(requests.arrival_ms, dtype=float)[miss] + cache_ms[miss]
    order = np.argsort(q_arr, kind="stable")
    miss = miss[order]
    q_items = np.maximum(np.asarray(out.items_to_compute, dtype=np.int64)[miss], 1)
    return _CacheStage(
        served=served,
        cache_ms=cache_ms,
        l1_hit=np.asarray(out.l1_hit, dtype=bool),
        l2_hit=np.asarray(out.l2_hit, dtype=bool),
        queued=_Queued(Requests(arrival_ms=q_arr[order], items=q_items), miss),
        counts=CacheCounts(lookups=out.lookups, l1_items=out.l1_items, l2_items=out.l2_items),
        warnings=tuple(out.warnings),
    )
