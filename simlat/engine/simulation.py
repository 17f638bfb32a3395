"""``simulate``: run one experiment's requests through cache, balancer, batcher and servers.

The map of the engine (one module per stage; ``simulate`` is the boundary where the config stops):

```
simulate(experiment, requests, seed, path=None)                      simlat.engine.simulation
  |-- EngineSpec.from_experiment(experiment)                         simlat.engine.spec
  |     fleet (+ balancer object, simlat.engine.balancer), BatchPolicy (simlat.engine.batching),
  |     admission, overheads, closed-loop clients, cache (+ warm-up source, simlat.workload.warmup)
  |-- Streams.spawn(seed): one random stream per part                simlat.engine.streams
  |-- cache stage: requests the caches serve; misses go on later     simlat.engine.cache
  |-- choose_path(spec, path): the first path that handles the spec  simlat.engine.paths
  |     static  one shared queue or a static balancer, open loop     simlat.engine.static_queue
  |     routed  per-replica queues, on_free, fixed window, open loop simlat.engine.routed
  |     event   everything (admission control, closed loop, ...)     simlat.engine.event_queue
  |     -> PathRun: the per-batch log (simlat.engine.log), drops
  `-- records: the log expanded per request, cache and overhead columns  -> SimResult
                                                                      simlat.engine.records
```

:func:`simlat.engine.simulate` wraps this with the serving stack (:mod:`simlat.engine.frontend`)
when the experiment has one; :mod:`simlat.engine.reference` is the naive per-request model the
paths are tested against.

Randomness: the engine's ``SeedSequence`` is spawned into named streams
(:data:`simlat.engine.streams.STREAMS`), so a change in one part (say the overhead model) never
shifts another's draws, and the same seed gives the same bytes out, whichever path runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simlat import dists
from simlat.config import Experiment
from simlat.engine.batching import BatchPolicy
from simlat.engine.log import PathRun
from simlat.engine.paths import PATHS, choose_path
from simlat.engine.records import CacheCounts, Records, SimResult
from simlat.engine.service import ServiceModel, build_service
from simlat.engine.spec import CacheSpec, EngineSpec
from simlat.engine.streams import STREAMS, Streams
from simlat.errors import SimlatError
from simlat.workload import Requests

__all__ = ["PATHS", "STREAMS", "EngineSpec", "Streams", "capacity_rps", "run_spec", "simulate"]


def _padded_mean_ms(service: ServiceModel, policy: BatchPolicy, items: float) -> float:
    if policy.buckets is not None:
        fit = [x for x in policy.buckets if x >= items]
        items = fit[0] if fit else policy.buckets[-1]
    return service.mean_ms(items)


def capacity_rps(service: ServiceModel, policy: BatchPolicy, replicas: float, mean_items: float) -> float:
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


@dataclass
class _Queued:
    """The engine's view of the requests that reach the balancer (after the cache)."""

    requests: Requests  # arrival at the balancer, items to compute
    ids: np.ndarray  # their positions in the full request table

    @classmethod
    def everything(cls, requests: Requests) -> _Queued:
        return cls(requests, np.arange(len(requests), dtype=np.int64))


def simulate(
    experiment: Experiment,
    requests: Requests | None,
    *,
    seed: np.random.SeedSequence,
    progress: bool = False,
    service: ServiceModel | None = None,
    path: str | None = None,
) -> SimResult:
    """Simulate ``requests`` (None for a closed-loop workload) through the experiment's service.

    ``service`` replaces the model built from ``experiment.service``; ``path`` names the engine path
    (``static``, ``routed`` or ``event``, see :mod:`simlat.engine.paths`) instead of the first that
    handles the experiment: the records are the same, only the speed differs. This is the batcher
    and the servers alone; :func:`simlat.engine.simulate` adds the serving stack
    (``experiment.frontend``, :mod:`simlat.engine.frontend`) around it when the experiment has one.

    Every request ends exactly once: served (``done_ms`` set) or dropped (``dropped`` True,
    latency NaN). ``latency_ms = done_ms - arrival_ms + overhead_ms``. With a cache, requests it
    serves skip the queue (``done = arrival + cache_ms``); the others reach the balancer at
    ``arrival + cache_ms`` with the items the cache could not answer.
    """
    if experiment.frontend is not None:
        raise SimlatError("frontend: simulate through simlat.engine.simulate, which models the serving stack")
    service = service or build_service(experiment.service)
    _check_inputs(experiment, requests)
    spec = EngineSpec.from_experiment(experiment)
    return run_spec(spec, requests, seed=seed, service=service, progress=progress, path=path)


def run_spec(
    spec: EngineSpec,
    requests: Requests | None,
    *,
    seed: np.random.SeedSequence,
    service: ServiceModel,
    progress: bool = False,
    path: str | None = None,
) -> SimResult:
    """:func:`simulate` below the boundary: the engine's spec instead of the experiment."""
    streams = Streams.spawn(seed)
    chosen = choose_path(spec, path)
    cache = None
    if spec.closed_loop is not None:
        run = chosen.run(spec, None, service, streams, progress)
        requests = run.requests
        queued = _Queued.everything(requests)
    else:
        cache, queued = cache_stage(spec, requests, streams)
        run = chosen.run(spec, queued.requests, service, streams, progress)
    return result_of(spec, requests, service, streams, cache, queued, run)


def cache_stage(spec: EngineSpec, requests: Requests, streams: Streams) -> tuple[_CacheStage | None, _Queued]:
    """The cache stage of an open loop (None without a cache) and the requests it passes on."""
    if spec.cache is not None:
        cache = _apply_cache(spec.cache, requests, streams)
        return cache, cache.queued
    return None, _Queued.everything(requests)


def result_of(spec: EngineSpec, requests: Requests, service: ServiceModel, streams: Streams,
              cache: _CacheStage | None, queued: _Queued, run: PathRun) -> SimResult:
    """The :class:`SimResult` of a path's run: the per-request records and the fleet-level facts."""
    records, busy, end = _records(spec, requests, queued, run, cache, streams)
    q_items = np.asarray(queued.requests.items)
    mean_items = float(q_items.mean()) if len(q_items) else 1.0
    n = len(requests)
    warnings = ([] if cache is None else list(cache.warnings)) + list(run.warnings)
    return SimResult(
        records=records,
        busy_ms=busy,
        end_ms=float(end),
        # in arriving requests: with a cache, only the misses (a fraction of them) load the fleet
        capacity_rps=capacity_rps(service, spec.policy, _effective_replicas(spec, mean_items), mean_items)
        * n
        / max(1, len(queued.ids)),
        offered_rps=None
        if spec.closed_loop is not None
        else _offered_rps(np.asarray(requests.arrival_ms, dtype=float)),
        n_replicas=spec.fleet.replicas,
        cache=None if cache is None else cache.counts,
        warnings=warnings,
    )


def _effective_replicas(spec: EngineSpec, mean_items: float) -> float:
    """Replicas for the capacity estimate: with instances sharing GPUs, each runs at ``1 / s`` of its
    speed alone when all of its GPU's instances are busy with full batches (``s``: their slowdown)."""
    dev = spec.devices
    if dev is None:
        return spec.fleet.replicas
    from simlat.engine.contention import SlowdownModel
    from simlat.profiles.contention import read

    model = SlowdownModel(read(dev.profile), dev.mode)
    items = max(1, round(spec.policy.max_batch * mean_items))
    sig = (dev.model, items)
    s = model.slowdown(sig, (sig,) * (dev.instances_per_gpu - 1))
    return spec.fleet.replicas / s


def _queue_columns(spec: EngineSpec, n: int, queued: _Queued, run: PathRun, cache: _CacheStage | None):
    """The path's per-batch log as per-request columns over all ``n`` requests (those the cache
    served get no batch), the dropped flags, and the busy time per replica."""
    qcols = run.log.expand(
        len(queued.ids), np.asarray(queued.requests.arrival_ms, dtype=float), spec.policy.on_close
    )
    busy = np.bincount(
        qcols.pop("busy_replica"), weights=qcols.pop("busy_service"), minlength=spec.fleet.replicas
    ).astype(float)
    if run.routed is not None:
        qcols["replica"] = np.where(qcols["replica"] >= 0, qcols["replica"], run.routed)
    if cache is None:  # every request went through the queues, in order
        return qcols, np.asarray(run.dropped, dtype=bool), busy
    cols = {}
    for name, v in qcols.items():
        full = np.full(n, -1 if v.dtype.kind == "i" else np.nan, dtype=v.dtype)
        if name == "batch_size":
            full[:] = 0
        full[queued.ids] = v
        cols[name] = full
    dropped = np.zeros(n, dtype=bool)
    dropped[queued.ids] = run.dropped
    return cols, dropped, busy


def _records(spec, requests, queued, run: PathRun, cache, streams) -> tuple[Records, np.ndarray, float]:
    """The per-request table of one run, the busy time per replica, and the run's end."""
    n = len(requests)
    arrival = np.asarray(requests.arrival_ms, dtype=float)
    cols, dropped, busy = _queue_columns(spec, n, queued, run, cache)
    end = run.end_ms
    if run.overhead is not None:
        overhead = run.overhead
    else:
        overhead = spec.overheads.sample(n, np.random.default_rng(streams.overheads))
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
        items=np.asarray(requests.items, dtype=np.int64),
        replica=cols["replica"],
        queue_wait_ms=cols["queue_wait_ms"],
        batch_wait_ms=cols["batch_wait_ms"],
        service_ms=cols["service_ms"],
        overhead_ms=overhead,
        cache_ms=cache_ms,
        done_ms=done,
        latency_ms=latency,
        dropped=dropped,
        key=np.full(n, -1, dtype=np.int64)
        if requests.key is None
        else np.asarray(requests.key, dtype=np.int64),
        l1_hit=l1,
        l2_hit=l2,
    )
    return records, busy, end


def _check_inputs(experiment: Experiment, requests: Requests | None) -> None:
    """Requests given exactly for an open loop, and a combination the engine supports."""
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


def _apply_cache(cache: CacheSpec, requests: Requests, streams: Streams) -> _CacheStage:
    """Run the cache model (:mod:`simlat.engine.cache`); misses reach the balancer after their lookups."""
    from simlat.engine.cache import apply_cache

    out = apply_cache(
        cache.config,
        requests,
        np.random.default_rng(streams.cache),
        warmup=cache.warmup,
        replicas=cache.replicas,
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
