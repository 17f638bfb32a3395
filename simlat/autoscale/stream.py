"""The exact day (``simlat day --engine exact``): one event-level run through the whole day, with
replicas joining and leaving, streamed segment by segment.

The day is cut into segments of one decision step (the policy's ``scrape_interval_s``; 2 s for
``target_concurrency``, Knative's tick; 60 s for ``none`` and ``schedule``). For each segment ``[T, T + step)``:

1. the arrivals of the segment are generated (:mod:`simlat.autoscale.arrivals`: exact non-homogeneous
   Poisson for the rate kinds, the trace replayed and scaled) and appended to the requests still
   waiting; only one segment's arrivals are in memory;
2. batches are formed from ONE shared FIFO queue exactly as the engine's static path does
   (:mod:`simlat.engine.static_queue`: ``on_free`` / ``on_close``, ``max_batch_size``,
   ``max_wait_ms``; no batching is ``B = 1, W = 0``), each going to the replica free first, until the
   next batch would be dispatched at or after ``T + step``; that batch and the rest wait for the next
   segment, so queues carry over. A batch dispatched before the boundary needs only arrivals before
   it, so the cut changes nothing: the batches are those of one run through the day;
3. at the boundary the policy (:data:`simlat.autoscale.policy.POLICIES`) sees the ready replicas'
   busy fraction over the segment and asks for a replica count. A new replica is routed nothing
   until it is ready (its entry in the free-replica heap is its ready time, after the delay to ready
   of :func:`simlat.autoscale.coldstart.ready_delay`), and its first batch takes at least the
   profile's measured first call (``first_call_ms``); a batch starting on a replica idle for at least
   the profile's ``idle_gap_ms`` draws from the profile's after-idle curve (the model's part; the
   engine's other paths do not model it). Removed replicas are the starting ones first
   (latest ready first), then the ready ones (latest ready first, then highest index): a removed
   replica takes no more batches, finishes the one in service (it drains) and is billed until then.

Per request, only numpy per segment: the batch log is expanded to done times, the latency is
``done - arrival + overhead`` (the engine's overheads), and each request lands in its arrival
window's fixed log-spaced latency histogram (:mod:`simlat.autoscale.windows`, 0.5% bins); windowed
percentiles come from the histograms (within 0.25%) with an order-statistic binomial interval. The Python loop costs one iteration per batch.

Exact where theory allows: with ``kind: none`` and the engine's sampler, the batches, dispatch and
done times are those of :func:`simlat.engine.simulation.simulate` on the same arrivals, bit for bit
(same service stream, same heap order); a fleet whose size changes at known times matches a naive
per-batch reference (``tests/test_day_stream.py``). A profile service is drawn by
:func:`vector_profile_sampler` (the same law, other draws) and with its after-idle curve, which the
engine does not model. The serving stack (``frontend``) runs as :mod:`simlat.autoscale.stack` says:
the loop in front of the batcher (its work per request over the replicas ready at the arrival, for
a measured profile), the hand-off in each batch, the reply's wait for the loop and the network
delay; with a fixed fleet and no reply work the engine's frontend path bit for bit
(``tests/test_day_stack.py``); reply work is kept off the loop (an approximation, with a warning).
Not modelled: caches, admission control, per-replica queues, adaptive batching, renewal and modulated arrivals and
per-request item counts are refused.
"""

from __future__ import annotations

import heapq
import math
import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from simlat.autoscale.arrivals import arrival_source
from simlat.autoscale.coldstart import first_call_ms, ready_delay
from simlat.autoscale.day import DayResult, _day_result, check_one_model_per_gpu
from simlat.autoscale.policy import POLICIES, Observation
from simlat.autoscale.stack import DayStack, Loop, day_stack
from simlat.autoscale.windows import N_BINS, Windows, hist_quantile, latency_bins
from simlat.config import Experiment
from simlat.config.autoscaling import NoAutoscaling
from simlat.engine.batching import BatchPolicy
from simlat.engine.service import Sampler, build_service
from simlat.engine.spec import EngineSpec
from simlat.engine.static_queue import _typed
from simlat.engine.streams import Streams
from simlat.errors import SimlatError

INF = float("inf")
DEFAULT_STEP_S = 60.0
"""Decision step (and segment) of the ``none`` and ``schedule`` policies (s)."""
KPA_TICK_S = 2.0
"""Decision step of ``target_concurrency`` (s): Knative's autoscaler decides every 2 s, which its 6-s
panic window needs."""
MAX_HIST_BYTES = 2 * 2**30
"""Most memory the exact day's window histograms may take (bytes)."""
MAX_OVERRUN_STEPS = 100_000
"""Segments run after the day's end to serve the requests still waiting, at most."""


# -- the fleet ---------------------------------------------------------------------------------------


@dataclass
class FleetLog:
    """Each replica's life (ms): asked for, ready, removed (inf: never), done draining (inf: never)."""

    ask: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    removed: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)

    def add(self, ask: float, ready: float) -> int:
        self.ask.append(ask)
        self.ready.append(ready)
        self.removed.append(INF)
        self.done.append(INF)
        return len(self.ask) - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.ask), np.asarray(self.ready), np.asarray(self.removed), np.asarray(self.done))

    def counts_at(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """Ready, starting and draining replicas at each time of ``t`` (ms)."""
        ask, ready, removed, done = (x[:, None] for x in self.arrays())
        tt = np.asarray(t, float)[None, :]
        served = ready < removed  # became ready before it was removed
        return {
            "ready": ((ready <= tt) & (tt < removed)).sum(axis=0),
            "starting": ((ask <= tt) & (tt < np.minimum(ready, removed))).sum(axis=0),
            "draining": (served & (removed <= tt) & (tt < done)).sum(axis=0),
        }

    def overlap(self, edges: np.ndarray, which: str) -> np.ndarray:
        """Replica-ms in each ``[edges[i], edges[i+1])``: ``billed`` (asked for to removed, or done
        draining) or ``ready`` (ready to removed)."""
        ask, ready, removed, done = self.arrays()
        if which == "billed":
            a, b = ask, np.where(ready < removed, np.maximum(done, removed), removed)
        else:
            a, b = ready, removed
        lo, hi = edges[:-1][None, :], edges[1:][None, :]
        return np.clip(np.minimum(b[:, None], hi) - np.maximum(a[:, None], lo), 0.0, None).sum(axis=0)


# -- the engine --------------------------------------------------------------------------------------


@dataclass
class StreamRecords:
    """Per-request records of a run (tests and short runs only: ``keep_records``)."""

    arrival_ms: list[np.ndarray] = field(default_factory=list)
    dispatch_ms: list[np.ndarray] = field(default_factory=list)
    service_ms: list[np.ndarray] = field(default_factory=list)
    replica: list[np.ndarray] = field(default_factory=list)
    batch_size: list[np.ndarray] = field(default_factory=list)
    latency_ms: list[np.ndarray] = field(default_factory=list)

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.__dict__.items()}


@dataclass
class StreamRun:
    """What :func:`run_stream` hands back."""

    fleet: FleetLog
    windows: list[Windows]
    served: int
    unserved: int
    end_ms: float
    decisions: list[tuple[float, int, int, float | None]]
    """(time ms, replicas asked for, ready, utilisation seen) at each decision."""
    records: StreamRecords | None = None


def run_stream(
    source,
    *,
    horizon_ms: float,
    step_ms: float,
    policy,
    batch: BatchPolicy,
    sampler: Sampler,
    items_per_request: int = 1,
    overhead=None,
    delay_s=None,
    first_call: float | None = None,
    idle: tuple[Sampler, float] | None = None,
    windows: list[Windows] | None = None,
    keep_records: bool = False,
    stack: DayStack | None = None,
) -> StreamRun:
    """The event-level day (see the module doc).

    ``source.take(t0_ms, t1_ms)``: sorted arrivals in ``[t0, t1)``; ``policy``: ``initial()`` and
    ``decide(t_s, spec, ready, observation)``; ``sampler``: the engine's batch sampler (items -> ms),
    called once per batch in dispatch order; ``overhead(n)``: the next ``n`` requests' overheads (ms,
    in arrival order) or None; ``delay_s(k)``: ``k`` delays to ready (s) for new replicas;
    ``first_call``: a new replica's first batch takes at least this (ms); ``idle``: (sampler, gap ms):
    a batch starting after its replica was idle for at least the gap draws from this sampler instead;
    ``stack``: the serving stack (:mod:`simlat.autoscale.stack`): the loop in front of the batcher,
    the reply's wait for the loop and the network delay in the latency (the samplers give the replica
    time: with a stack, the hand-off and per-item costs in it, :meth:`DayStack.service`).
    """
    B, W = batch.max_batch, batch.max_wait_ms
    if batch.adaptive:
        raise SimlatError("batching.kind: adaptive is not supported by the exact day engine; use dynamic or none")
    on_close = batch.on_close
    pad = batch.padder()
    k0 = int(items_per_request)
    fc = -INF if first_call is None else float(first_call)
    idle_sampler, gap = (sampler, INF) if idle is None else idle
    loop = None if stack is None else Loop()
    held: list[dict[str, np.ndarray]] = []  # served requests whose reply waits for a later segment's loop
    windows = windows or []
    fleet = FleetLog()
    spec = int(policy.initial())
    free: list[tuple[float, int]] = [(0.0, fleet.add(0.0, 0.0)) for _ in range(spec)]  # warm at the start
    heapq.heapify(free)
    live = set(range(spec))  # routable replicas (not removed)
    fresh: set[int] = set()  # replicas that have not served their first batch
    pending = np.zeros(0)  # the batcher's arrivals still waiting (with a stack: the loop's departures)
    pending_a = pending  # their arrival times
    last = 0.0
    served = 0
    busy_acc, carry_in = 0.0, 0.0
    insys_acc, wait_acc = 0.0, 0.0  # request-ms in the system / waiting, of the requests dispatched this step
    decisions: list[tuple[float, int, int, float | None]] = []
    recs = StreamRecords() if keep_records else None
    T = 0.0
    steps = 0
    while True:
        end = T + step_ms
        if T < horizon_ms:
            new = source.take(T, min(end, horizon_ms))
            for w in windows:
                w.arrived(new)
            if loop is not None:
                pending_a = np.concatenate((pending_a, new)) if len(pending_a) else new
                assert stack is not None
                new = loop.run(new, _ingress(stack, fleet, live, new))
            pending = np.concatenate((pending, new)) if len(pending) else new
            if loop is None:
                pending_a = pending
        elif loop is not None:
            loop.run(np.zeros(0), np.zeros(0))
        if held and loop is not None:  # replies whose loop is now known (all of it once no request arrives any more)
            held = _reply(held, loop, end if end < horizon_ms else INF, windows, recs)
        if T >= horizon_ms and (not len(pending) or steps > MAX_OVERRUN_STEPS):
            break
        steps += 1
        n = len(pending)
        arr = _typed(pending)
        arr.extend(repeat(INF, B))
        starts, disp, serv, repl = array("q"), array("d"), array("d"), array("q")
        j = 0
        # -- batches of this segment: one iteration per batch, locals only ----------------------
        if free:
            replace = heapq.heapreplace
            sa, da, va, ra = starts.append, disp.append, serv.append, repl.append
            Bm1 = B - 1
            if not on_close:
                while j < n:
                    tf, r = free[0]
                    t = tf if tf > last else last
                    aj = arr[j]
                    close = aj + W
                    ab = arr[j + Bm1]
                    if ab < close:
                        close = ab
                    d = t if t > close else close
                    if d >= end:
                        break
                    e = bisect_right(arr, d, j, j + B)
                    items = (e - j) * k0
                    s = (sampler if d - tf < gap else idle_sampler)(items if pad is None else pad(items))
                    if fresh and r in fresh:
                        fresh.discard(r)
                        if s < fc:
                            s = fc
                    sa(j)
                    da(d)
                    va(s)
                    ra(r)
                    replace(free, (d + s, r))
                    last = d
                    j = e
            else:
                while j < n:
                    aj = arr[j]
                    close = aj + W
                    ab = arr[j + Bm1]
                    if ab < close:
                        close = ab
                    tf, r = free[0]
                    d = tf if tf > close else close
                    if d >= end:
                        break
                    e = bisect_right(arr, close, j, j + B)
                    items = (e - j) * k0
                    s = (sampler if d - tf < gap else idle_sampler)(items if pad is None else pad(items))
                    if fresh and r in fresh:
                        fresh.discard(r)
                        if s < fc:
                            s = fc
                    sa(j)
                    da(d)
                    va(s)
                    ra(r)
                    replace(free, (d + s, r))
                    j = e
        # -- the segment's requests, with numpy -------------------------------------------------
        if j:
            st = np.frombuffer(starts, dtype=np.int64)
            dn = np.frombuffer(disp, dtype=np.float64)
            sv = np.frombuffer(serv, dtype=np.float64)
            busy_acc += float(sv.sum())
            sizes = np.diff(np.append(st, j))
            a = pending_a[:j]
            lat = np.repeat(dn + sv, sizes)
            lat -= a
            # Little's law: the time before this segment of requests that waited across its start was
            # counted at the earlier boundaries (``left``), so only the time from the segment's start here
            before = np.maximum(T - a, 0.0)
            insys_acc += float(lat.sum() - before.sum())
            wait_acc += float((np.repeat(dn, sizes) - a).sum() - before.sum())
            if loop is not None and stack is not None:
                for w in windows:
                    w.batches(dn, sv)
                ovh = overhead(j) if overhead is not None else np.zeros(j)
                insys_acc += float(ovh.sum())  # end to end, as the quasi-static day's rate x mean latency
                part = {"a": a, "net": stack.network(j), "ovh": ovh, "end": dn + sv, "sizes": sizes}
                if stack.reply is not None:
                    part["rep"] = stack.reply(j)
                if recs is not None:
                    part.update(dispatch=dn.copy(), service=sv.copy(), replica=np.frombuffer(repl, dtype=np.int64).copy())
                held = _reply(held + [part], loop, end if end < horizon_ms else INF, windows, recs)
            else:
                if overhead is not None:
                    ov = overhead(j)
                    lat += ov
                    insys_acc += float(ov.sum())  # end to end, as the quasi-static day's rate x mean latency
                bins = latency_bins(lat)
                for w in windows:
                    w.served(a, lat, bins)
                    w.batches(dn, sv)
            if recs is not None and loop is None:
                recs.arrival_ms.append(a.copy())
                recs.dispatch_ms.append(np.repeat(dn, sizes))
                recs.service_ms.append(np.repeat(sv, sizes))
                recs.replica.append(np.repeat(np.frombuffer(repl, dtype=np.int64), sizes))
                recs.batch_size.append(np.repeat(sizes, sizes))
                recs.latency_ms.append(lat)
            served += j
        pending = pending[j:]
        pending_a = pending_a[j:] if loop is not None else pending
        # -- the decision at the segment's end ---------------------------------------------------
        T = end
        carry_out = 0.0
        for tf, r in free:
            if tf > T:
                carry_out += tf - max(T, fleet.ready[r])
        ready_ms = 0.0
        for r in live:
            ready_ms += max(0.0, T - max(T - step_ms, fleet.ready[r]))
        util = None if ready_ms <= 0 else min(1.0, (busy_acc + carry_in - carry_out) / ready_ms)
        # Little's law over the step: the dispatched requests' time in the system and in the queue since
        # the step's start (their service past its end included), plus the waiting within the step of
        # those still queued at its end: each request-ms is counted once over the run
        left = float(np.sum(T - np.maximum(pending_a, T - step_ms))) if len(pending_a) else 0.0
        obs = None if util is None else Observation(utilization=util, concurrency=(insys_acc + left) / step_ms,
                                                    queue_length=(wait_acc + left) / step_ms)
        busy_acc, carry_in = 0.0, carry_out
        insys_acc, wait_acc = 0.0, 0.0
        ready_now = sum(1 for r in live if fleet.ready[r] <= T)
        want = int(policy.decide(T / 1000.0, spec, ready_now, obs))
        decisions.append((T, want, ready_now, util))
        if want > spec:
            assert delay_s is not None, "only policies with a cold start grow the fleet"
            for x in delay_s(want - spec):
                r = fleet.add(T, T + float(x) * 1000.0)
                live.add(r)
                fresh.add(r)
                heapq.heappush(free, (fleet.ready[r], r))
        elif want < spec:
            order = sorted(live, key=lambda r: (fleet.ready[r], r))
            gone = set(order[want:])
            for tf, r in free:
                if r in gone:
                    fleet.removed[r] = T
                    fleet.done[r] = max(T, tf) if fleet.ready[r] <= T else T
                    if tf > T and fleet.ready[r] <= T:
                        carry_in -= tf - T  # its batch's end is drain time, not a ready replica's busy time
            free = [x for x in free if x[1] not in gone]
            heapq.heapify(free)
            live -= gone
            fresh -= gone
        spec = want
    if held and loop is not None:
        loop.run(np.zeros(0), np.zeros(0))
        _reply(held, loop, INF, windows, recs)
    for tf, r in free:  # the run's end: replicas still serving finish their batch
        fleet.done[r] = min(fleet.done[r], max(tf, T))
    return StreamRun(fleet=fleet, windows=windows, served=served, unserved=len(pending), end_ms=T,
                     decisions=decisions, records=recs)


def _ingress(stack: DayStack, fleet: FleetLog, live: set[int], a: np.ndarray) -> np.ndarray:
    """Each arrival's ingress work on the loop: a per-replica loop's work over the replicas ready at
    the arrival (at least one), or the one loop's work."""
    if not stack.per_replica:
        return np.full(len(a), stack.loop_ms)
    ready = np.sort([fleet.ready[r] for r in live])
    n = np.maximum(np.searchsorted(ready, a, side="right"), 1)
    return stack.loop_ms / n


PER_REQUEST = ("a", "net", "ovh", "rep")
"""The per-request arrays of a served part (the others are per batch)."""


def _reply(parts: list[dict[str, np.ndarray]], loop: Loop, known_ms: float, windows: list[Windows],
           recs: StreamRecords | None) -> list[dict[str, np.ndarray]]:
    """Finish the requests of ``parts`` (per request: ``a``, ``net``, ``ovh``; per batch: ``end``,
    ``sizes`` and, for the records, ``dispatch``, ``service``, ``replica``) whose batch's model finished
    before ``known_ms`` (the loop's jobs are known up to there): the reply starts when the loop is free
    of the ingress jobs released by then; latency = reply - arrival + network + overheads. Return the
    rest (arrival order kept)."""
    keep = []
    for p in parts:
        if known_ms < INF:
            now = p["end"] < known_ms
            if not now.all():
                per_req = np.repeat(now, p["sizes"])
                keep.append({k: v[~(per_req if k in PER_REQUEST else now)] for k, v in p.items()})
                p = {k: v[per_req if k in PER_REQUEST else now] for k, v in p.items()}
        if not len(p["a"]):
            continue
        sizes = p["sizes"]
        lat = np.repeat(loop.reply_start(p["end"]), sizes)
        if "rep" in p:  # the batch's replies leave one after another (no loop contention: an approximation)
            cum = np.cumsum(p["rep"])
            first = np.r_[0, np.cumsum(sizes)[:-1]]
            lat += cum - np.repeat(cum[first] - p["rep"][first], sizes)
        lat -= p["a"]
        lat += p["net"]
        lat += p["ovh"]
        bins = latency_bins(lat)
        for w in windows:
            w.served(p["a"], lat, bins)
        if recs is not None:
            recs.arrival_ms.append(p["a"].copy())
            recs.dispatch_ms.append(np.repeat(p["dispatch"], sizes))
            recs.service_ms.append(np.repeat(p["service"], sizes))
            recs.replica.append(np.repeat(p["replica"], sizes))
            recs.batch_size.append(np.repeat(sizes, sizes))
            recs.latency_ms.append(lat)
    return keep


# -- the day -----------------------------------------------------------------------------------------


def check_supported(experiment: Experiment) -> list[str]:
    """Refuse what the exact day engine does not model; return the warnings for what it leaves out."""
    warnings: list[str] = []
    if experiment.workload.arrivals.kind == "closed_loop":
        raise SimlatError("workload.arrivals.kind: 'closed_loop' has no offered rate over the day; simlat day needs an open workload")
    check_one_model_per_gpu(experiment)  # the exact engine would also leave out the contention and the tenants
    if experiment.fleet.queue != "shared":
        raise SimlatError(f"fleet.queue: {experiment.fleet.queue!r} is not supported by the exact day engine, which "
                          "models one shared queue; use queue: shared or --engine quasi-static")
    if experiment.cache is not None:
        raise SimlatError("cache: not supported by the exact day engine; use --engine quasi-static")
    if experiment.admission.queue_capacity is not None or experiment.admission.timeout_ms is not None:
        raise SimlatError("admission: admission control is not supported by the exact day engine; use --engine quasi-static")
    if experiment.batching.kind == "adaptive":
        raise SimlatError("batching.kind: adaptive is not supported by the exact day engine; use dynamic or none")
    if not isinstance(experiment.workload.items_per_request, int):
        raise SimlatError("workload.items_per_request: a distribution is not supported by the exact day engine; give a number")
    if getattr(experiment.workload.arrivals, "items_column", None) is not None:
        raise SimlatError("workload.arrivals.items_column: per-request items are not supported by the exact day engine")
    from simlat.autoscale import stack

    warnings += stack.check(experiment)
    return warnings


def _day_span(cfg, window_s: float | None, hours: float | None) -> tuple[float, float]:
    """The window length and the day simulated (s), checked: ``--hours`` cuts the day, and must cover a window."""
    W = float(window_s if window_s is not None else cfg.window_s)
    day_s = cfg.day_s if hours is None else min(cfg.day_s, hours * 3600.0)
    if hours is not None and not hours > 0:
        raise SimlatError(f"--hours: {hours:g} is invalid: it must be > 0")
    if hours is not None and W > day_s and W <= cfg.day_s:
        raise SimlatError(f"--hours: {hours:g} ({day_s:g} s) is invalid: it must cover at least one window "
                          f"({W:g} s; --window-s sets the window)")
    if not W > 0 or W > day_s:
        raise SimlatError(f"--window-s: {W:g} is invalid: it must be > 0 and <= the day ({day_s:g} s)")
    return W, day_s


def _day_windows(W: float, day_s: float, slo_ms: float) -> tuple[Windows, Windows | None]:
    """The windows' histograms, and the 1-minute ones when windows are not minutes; refused when the
    histograms would take more than :data:`MAX_HIST_BYTES`."""
    n_win = math.ceil(day_s / W - 1e-9)
    hist_bytes = (n_win + (0 if W == 60.0 else math.ceil(day_s / 60.0))) * N_BINS * 8
    if hist_bytes > MAX_HIST_BYTES:
        least = day_s * N_BINS * 8 / (MAX_HIST_BYTES - math.ceil(day_s / 60.0) * N_BINS * 8)
        raise SimlatError(f"--window-s: {W:g} s gives {n_win} windows; the exact day keeps one latency histogram "
                          f"per window ({N_BINS * 8 // 1024} KiB each, {hist_bytes / 2**30:.1f} GiB in all, more than "
                          f"{MAX_HIST_BYTES / 2**30:g} GiB): use windows of at least {math.ceil(least):g} s")
    minute = Windows(math.ceil(day_s / 60.0 - 1e-9), 60_000.0, slo_ms) if W != 60.0 else None
    return Windows(n_win, W * 1000.0, slo_ms), minute


def _offered_rates(experiment: Experiment, rows: list[dict], W: float, day_s: float) -> None:
    """Each window row's ``offered_rps``: the workload's mean rate over the window where it has one
    (a rate curve, Poisson), else the requests that arrived in it."""
    from simlat.autoscale.rates import window_rates

    edges = np.minimum(np.arange(len(rows) + 1) * W, day_s)
    try:
        rates = window_rates(experiment.workload.arrivals, edges)
    except SimlatError:
        rates = np.array([r["requests"] / (r["end_s"] - r["start_s"]) for r in rows])
    for r, rate in zip(rows, rates, strict=True):
        r["offered_rps"] = float(rate)


def simulate_day_exact(experiment: Experiment, *, window_s: float | None = None, hours: float | None = None,
                       progress=None, keep_records: bool = False) -> tuple[DayResult, StreamRun]:
    """The day of ``experiment`` as one event-level run (see the module doc): the window table and
    the day's totals (as :func:`simlat.autoscale.day.simulate_day`), and the run itself.

    ``hours`` runs the first hours of the day only.
    """
    t0 = time.perf_counter()
    warnings = check_supported(experiment)
    cfg = experiment.fleet.autoscaling or NoAutoscaling()
    W, day_s = _day_span(cfg, window_s, hours)
    step_s = float(getattr(cfg, "scrape_interval_s", KPA_TICK_S if cfg.kind == "target_concurrency" else DEFAULT_STEP_S))
    policy = POLICIES[type(cfg)](cfg, experiment)
    delay, cold_source = ready_delay(experiment) if cfg.kind != "none" else (None, "none (fixed replicas)")
    seq = np.random.SeedSequence(experiment.run.seed)
    cold_seq, wl_seq, engine_seq, stack_seq = seq.spawn(4)  # the first three as before the stack
    streams = Streams.spawn(engine_seq)
    service = build_service(experiment.service)
    from simlat.config.service import ProfileService

    rng = streams.service_rngs(1)[0]
    stack = day_stack(experiment, np.random.default_rng(stack_seq))
    if isinstance(experiment.service, ProfileService):
        sampler = _profile_sampler(experiment.service, rng, stack)
    else:
        sampler = service.batch_sampler(rng) if stack is None else stack.service(service.batch_sampler(rng))
    idle = idle_service(experiment, streams, stack)
    spec = EngineSpec.from_experiment(experiment)
    ov_rng = np.random.default_rng(streams.overheads)
    cold_rng = np.random.default_rng(cold_seq)
    from simlat import dists

    win, minute = _day_windows(W, day_s, experiment.slo.latency_ms)
    source = arrival_source(experiment.workload.arrivals, np.random.default_rng(wl_seq))
    run = run_stream(
        source, horizon_ms=day_s * 1000.0, step_ms=step_s * 1000.0, policy=policy,
        batch=BatchPolicy.from_config(experiment.batching), sampler=sampler,
        items_per_request=ipr if isinstance(ipr := experiment.workload.items_per_request, int) else 1,
        overhead=lambda k: spec.overheads.sample(k, ov_rng),
        delay_s=None if delay is None else (lambda k: dists.sample(delay, k, cold_rng)),
        first_call=first_call_ms(experiment) if cfg.kind != "none" else None, idle=idle,
        windows=[win] if minute is None else [win, minute], keep_records=keep_records,
        stack=stack,
    )
    if run.unserved:
        warnings.append(f"{run.unserved} requests were still waiting {MAX_OVERRUN_STEPS} steps after the day's end "
                        "(their windows count them as missing the SLO)")
    rows = window_rows(experiment, run, win, day_s)
    _offered_rates(experiment, rows, W, day_s)
    if minute is not None:
        mrows = window_rows(experiment, run, minute, day_s)
        share = float(np.mean([r["meets_slo"] for r in mrows]))
    else:
        share = float(np.mean([r["meets_slo"] for r in rows]))
    cfg_day = cfg.model_copy(update={"day_s": day_s})
    result = _day_result(experiment, cfg_day, W, rows, delay, cold_source, t0, method="exact",
                         extra_warnings=warnings)
    result.summary.slo_minutes_share = share
    result.summary.served_requests = run.served
    if progress is not None:
        progress(1, 1)
    return result, run


def simulate_day_exact_result(experiment: Experiment, window_s: float | None = None) -> DayResult:
    """:func:`simulate_day_exact`'s day alone (the signature a policy sweep runs each policy with)."""
    return simulate_day_exact(experiment, window_s=window_s)[0]


VECTOR_DRAWS = 4096
"""Service times drawn at once per batch size by :func:`vector_profile_sampler`."""


def vector_profile_sampler(curves, rng: np.random.Generator, stack: DayStack | None = None) -> Sampler:
    """``items -> ms`` for a profile service: the sum of one draw from each measured curve, as the
    engine's sampler (:func:`simlat.profiles.sampling.make_sampler`) draws it (a uniform read off the
    curve's quantile table at ``items``, linearly interpolated), but made :data:`VECTOR_DRAWS` at a
    time per batch size with numpy. Same distribution, other draws: the engine's sampler costs about
    0.5 us per curve per batch in Python, which dominates a day of small batches. With ``stack``, the
    replica time of :meth:`DayStack.service` (hand-off + draw x slowdown + per-item cost), computed
    on the vector."""
    from simlat.profiles.sampling import DENSE_GRID

    nexts: dict[int, object] = {}
    tables: dict[int, list[np.ndarray]] = {}

    def refill(items: int):
        ts = tables.get(items)
        if ts is None:
            ts = [np.append(c.table(items), c.table(items)[-1]) for c in curves]  # guard for x == n
            tables[items] = ts
        v = np.zeros(VECTOR_DRAWS)
        for t in ts:
            x = rng.random(VECTOR_DRAWS) * DENSE_GRID
            k = x.astype(np.int64)
            a = t[k]
            v += a + (x - k) * (t[k + 1] - a)
        if stack is not None:
            v = stack.handoff_ms + v * stack.slowdown + stack.item_ms * items
        f = iter(v.tolist()).__next__
        nexts[items] = f
        return f

    def sample(items: int) -> float:
        f = nexts.get(items)
        if f is not None:
            try:
                return f()  # type: ignore[operator]
            except StopIteration:
                pass
        return refill(items)()

    return sample


def _profile_sampler(svc, rng: np.random.Generator, stack: DayStack | None = None) -> Sampler:
    from simlat.profiles.sampling import profile_curves

    curves = profile_curves(svc)
    for c in curves:
        c.table(1)  # a bad curve fails here, as in the engine
    return vector_profile_sampler(curves, rng, stack)


def idle_service(experiment: Experiment, streams: Streams, stack: DayStack | None = None) -> tuple[Sampler, float] | None:
    """The profile's after-idle service (its ``idle`` curve, the model's part only) and the idle gap
    it was measured after (ms), when the variant has both; its draws come from their own stream."""
    from simlat.config.service import ProfileService
    from simlat.profiles.schema import load_profile

    svc = experiment.service
    if not isinstance(svc, ProfileService) or svc.condition != "steady":
        return None
    try:
        variant = {v.name: v for v in load_profile(svc.path).model(svc.model).variants}[svc.variant]
    except (SimlatError, KeyError):
        return None
    if not variant.idle or variant.idle_gap_ms is None:
        return None
    rng = np.random.default_rng(streams.service.spawn(1)[0])  # after the queue's: that one is the engine's
    return _profile_sampler(svc.model_copy(update={"condition": "idle"}), rng, stack), float(variant.idle_gap_ms)


def window_rows(experiment: Experiment, run: StreamRun, win: Windows, day_s: float) -> list[dict]:
    """One row per window of ``win``: the columns of the quasi-static table, and ``t_s``, ``requests``,
    ``drops``."""
    W = win.w
    edges = np.minimum(np.arange(win.n + 1) * W, day_s * 1000.0)
    counts = run.fleet.counts_at(edges[:-1])
    dur = np.diff(edges)
    billed = run.fleet.overlap(edges, "billed") / dur
    ready_ms = run.fleet.overlap(edges, "ready")
    q = experiment.slo.percentile / 100.0
    rows = []
    for i in range(win.n):
        h = win.hist[i]
        nreq = int(win.requests[i])
        served = int(h.sum())
        p50, p99, pslo = hist_quantile(h, 0.5), hist_quantile(h, 0.99), hist_quantile(h, q)
        complete = served == nreq
        meets = bool(complete and (pslo is None or pslo[0] <= experiment.slo.latency_ms))
        rows.append(dict(
            window=i, t_s=edges[i] / 1000.0, start_s=edges[i] / 1000.0, end_s=edges[i + 1] / 1000.0,
            offered_rps=nreq / (dur[i] / 1000.0), offered_requests=float(nreq), simulated_requests=nreq,
            requests=nreq, drops=0, ready=int(counts["ready"][i]), starting=int(counts["starting"][i]),
            draining=int(counts["draining"][i]), billed=float(billed[i]),
            utilization=float(min(1.0, win.busy[i] / ready_ms[i])) if ready_ms[i] > 0 else 0.0,
            p50_ms=None if p50 is None else p50[0], p50_lo_ms=None if p50 is None else p50[1],
            p50_hi_ms=None if p50 is None else p50[2],
            p99_ms=None if p99 is None else p99[0], p99_lo_ms=None if p99 is None else p99[1],
            p99_hi_ms=None if p99 is None else p99[2],
            slo_estimate_ms=None if pslo is None else pslo[0], drop_rate=0.0, stable=complete, meets_slo=meets,
            within_slo_share=float(win.within[i]) / nreq if nreq else 1.0, seed=experiment.run.seed,
        ))
    return rows
