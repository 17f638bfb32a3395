"""A batch queue whose members are known up front: the engine's fast path.

Used for one shared queue, and for per-replica queues when routing does not depend on state
(round robin, random): every queue then sees a fixed, sorted list of arrivals and serves it with
its replicas, independently of the other queues.

The queue is one SimPy process. A batch's membership is a contiguous slice of the queue's
arrivals, found with ``bisect`` (no per-request Python work); the per-request columns are
expanded from the per-batch log with numpy after the run. Replicas are a heap of free times: a
batch goes to the replica that is free first (ties: lowest index). Arrivals are padded with
``B`` infinite sentinels so the arrival of "the B-th waiting request" needs no bounds check.

Without batching, the queue is a FIFO loop over the requests: one server is the recursion
``done_n = max(arrival_n, done_{n-1}) + service_n``; several take turns through the heap.

The batch loops are specialised by hand (on_free / on_close, one replica / several, FIFO without
batching) and kept long on purpose: each keeps its state in locals, so a batch costs a few list
operations and one ``bisect``; a shared helper would cost a call per batch (this path runs at
about 20 M requests per CPU-second, ``benchmarks/engine_bench.py`` case a).

:class:`StaticPath` is this path's entry in :mod:`simlat.engine.paths`.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from itertools import repeat

import numpy as np
import simpy

from simlat.engine.batching import AdaptiveWindow, BatchPolicy
from simlat.engine.log import BatchLog, PathRun
from simlat.engine.progress import RunProgress
from simlat.engine.service import Sampler, ServiceModel
from simlat.engine.spec import EngineSpec
from simlat.engine.streams import Streams
from simlat.workload import Requests

INF = float("inf")
CHUNK = 4096
"""Batches computed between two advances of the SimPy clock."""


def _typed(values: np.ndarray) -> array:
    """A float64 numpy array as an ``array('d')``: one copy, and indexing is as fast as a list's."""
    out = array("d")
    out.frombytes(memoryview(np.ascontiguousarray(values, dtype=np.float64)).cast("B"))
    return out


class StaticQueue:
    """One queue: its requests (global ids ``ids``, sorted arrivals) served by ``replicas``.

    ``items`` is None when every request has one item (then batch items = batch size).
    """

    def __init__(
        self,
        ids: np.ndarray,
        arrival_ms: np.ndarray,
        items: np.ndarray | None,
        replicas: list[int],
        policy: BatchPolicy,
        sampler: Sampler,
    ):
        self.ids = ids
        self.arrival = arrival_ms
        self.items = items
        self.replicas = replicas
        self.policy = policy
        self.sampler = sampler
        self.pad = policy.padder()
        self.progress = None  # a RunProgress, if the run shows one
        self._reported = 0
        # per-batch log, typed arrays (8 bytes an entry, no float objects kept alive)
        self._starts = array("q")
        self._disp = array("d")
        self._serv = array("d")
        self._repl = array("q")
        self._tref = array("d")

    # -- SimPy process -------------------------------------------------------------------------
    def process(self, env):
        """The batcher-and-servers process.

        Nothing else interacts with a static queue, so it computes ``CHUNK`` batches at a time and
        then advances the SimPy clock to the last of their dispatch times.
        """
        if len(self.arrival) == 0:
            return
        p = self.policy
        if p.max_batch == 1 and self.pad is None:
            self._single_fifo() if len(self.replicas) == 1 else self._fifo_many()
            self._report(len(self.arrival))
            yield env.timeout(max(0.0, float(np.max(self._disp)) - env.now))
            return
        if len(self.replicas) == 1:
            loop = self._on_close_one(env) if p.on_close else self._on_free_one(env)
        else:
            loop = self._on_close_many(env) if p.on_close else self._on_free_many(env)
        yield from loop

    def _report(self, j: int) -> None:
        if self.progress is not None:
            self.progress.advance(j - self._reported)
            self._reported = j

    def _setup(self):
        """Arrivals padded with ``B`` infinite sentinels, cumulative items (or None)."""
        B = self.policy.max_batch
        n = len(self.arrival)
        # a typed array: made by one copy, unlike a list of float objects; bisect reads it directly
        arr = _typed(self.arrival)
        arr.extend(repeat(INF, B))
        cum = None if self.items is None else [0, *np.cumsum(self.items).tolist()]
        aw = AdaptiveWindow(self.policy) if self.policy.adaptive else None
        return arr, n, cum, B, self.policy.max_wait_ms, aw

    def _on_free_one(self, env):
        arr, n, cum, B, W, aw = self._setup()
        sampler, pad = self.sampler, self.pad
        starts, disp, serv = self._starts, self._disp, self._serv
        tf = 0.0  # when the replica is next free
        j = 0
        while j < n:
            for _ in range(CHUNK):
                aj = arr[j]
                if aw is not None:
                    u = tf if tf > aj else aj
                    W = aw.window(u, bisect_right(arr, u, j))
                close = aj + W
                ab = arr[j + B - 1]
                if ab < close:
                    close = ab
                d = tf if tf > close else close
                e = bisect_right(arr, d, j, j + B)
                k = e - j if cum is None else cum[e] - cum[j]
                s = sampler(k if pad is None else pad(k))
                starts.append(j)
                disp.append(d)
                serv.append(s)
                tf = d + s
                j = e
                if j >= n:
                    break
            self._report(j)
            yield env.timeout(max(0.0, disp[-1] - env.now))
        done = np.add(disp, serv)
        self._tref = np.concatenate(([0.0], done[:-1]))  # the replica became free at the previous done
        self._repl = np.full(len(starts), self.replicas[0])

    def _on_close_one(self, env):
        arr, n, cum, B, W, aw = self._setup()
        sampler, pad = self.sampler, self.pad
        starts, disp, serv, tref = self._starts, self._disp, self._serv, self._tref
        tf = 0.0
        j = 0
        while j < n:
            for _ in range(CHUNK):
                aj = arr[j]
                if aw is not None:
                    W = aw.window(aj, bisect_right(arr, aj, j))
                close = aj + W
                ab = arr[j + B - 1]
                if ab < close:
                    close = ab
                e = bisect_right(arr, close, j, j + B)
                d = tf if tf > close else close
                k = e - j if cum is None else cum[e] - cum[j]
                s = sampler(k if pad is None else pad(k))
                starts.append(j)
                disp.append(d)
                serv.append(s)
                tref.append(close)
                tf = d + s
                j = e
                if j >= n:
                    break
            self._report(j)
            yield env.timeout(max(0.0, disp[-1] - env.now))
        self._repl = np.full(len(starts), self.replicas[0])

    def _on_free_many(self, env):
        arr, n, cum, B, W, aw = self._setup()
        free = [(0.0, r) for r in self.replicas]  # heap of (free since, replica)
        heapq.heapify(free)
        sampler, pad = self.sampler, self.pad
        starts, disp, serv, repl, tref = self._starts, self._disp, self._serv, self._repl, self._tref
        pop, push = heapq.heappop, heapq.heappush
        last = 0.0  # the batcher forms one batch at a time
        j = 0
        while j < n:
            for _ in range(CHUNK):
                tf, r = pop(free)
                t = tf if tf > last else last
                aj = arr[j]
                if aw is not None:
                    u = t if t > aj else aj
                    W = aw.window(u, bisect_right(arr, u, j))
                close = aj + W
                ab = arr[j + B - 1]
                if ab < close:
                    close = ab
                d = t if t > close else close
                e = bisect_right(arr, d, j, j + B)
                k = e - j if cum is None else cum[e] - cum[j]
                s = sampler(k if pad is None else pad(k))
                starts.append(j)
                disp.append(d)
                serv.append(s)
                repl.append(r)
                tref.append(t)
                push(free, (d + s, r))
                last = d
                j = e
                if j >= n:
                    break
            self._report(j)
            yield env.timeout(max(0.0, disp[-1] - env.now))

    def _on_close_many(self, env):
        arr, n, cum, B, W, aw = self._setup()
        free = [(0.0, r) for r in self.replicas]
        heapq.heapify(free)
        sampler, pad = self.sampler, self.pad
        starts, disp, serv, repl, tref = self._starts, self._disp, self._serv, self._repl, self._tref
        pop, push = heapq.heappop, heapq.heappush
        j = 0
        while j < n:
            for _ in range(CHUNK):
                aj = arr[j]
                if aw is not None:
                    W = aw.window(aj, bisect_right(arr, aj, j))
                close = aj + W
                ab = arr[j + B - 1]
                if ab < close:
                    close = ab
                e = bisect_right(arr, close, j, j + B)
                tf, r = pop(free)
                d = tf if tf > close else close
                k = e - j if cum is None else cum[e] - cum[j]
                s = sampler(k if pad is None else pad(k))
                starts.append(j)
                disp.append(d)
                serv.append(s)
                repl.append(r)
                tref.append(close)
                push(free, (d + s, r))
                j = e
                if j >= n:
                    break
            self._report(j)
            yield env.timeout(max(0.0, disp[-1] - env.now))

    def _single_fifo(self) -> None:
        """One server, no batching: the FIFO recursion ``d = max(arrival, previous done)``."""
        sampler = self.sampler
        items = repeat(1, len(self.arrival)) if self.items is None else self.items.tolist()
        serv = array("d", map(sampler, items))
        disp = array("d")
        append = disp.append
        done = 0.0
        for a, s in zip(_typed(self.arrival), serv, strict=True):
            d = a if a > done else done
            append(d)
            done = d + s
        n = len(disp)
        self._starts = np.arange(n)
        self._disp = disp
        self._serv = serv
        self._repl = np.full(n, self.replicas[0])
        # on_free: the server became available to request n at max(arrival, previous done);
        # on_close: a batch of one closes at its arrival
        self._tref = self.arrival if self.policy.on_close else np.asarray(disp)

    def _fifo_many(self) -> None:
        """Several servers, no batching: each request goes to the replica free first."""
        sampler = self.sampler
        items = repeat(1, len(self.arrival)) if self.items is None else self.items.tolist()
        free = [(0.0, r) for r in self.replicas]
        heapq.heapify(free)
        replace = heapq.heapreplace
        disp, serv, repl, tref = self._disp, self._serv, self._repl, self._tref
        last = 0.0
        for a, k in zip(_typed(self.arrival), items, strict=True):
            tf, r = free[0]
            t = tf if tf > last else last
            d = a if a > t else t
            s = sampler(k)
            replace(free, (d + s, r))
            disp.append(d)
            serv.append(s)
            repl.append(r)
            tref.append(t)
            last = d
        self._starts = np.arange(len(disp))
        if self.policy.on_close:
            self._tref = self.arrival  # a batch of one closes at its arrival

    # -- results -------------------------------------------------------------------------------
    def log_into(self, log: BatchLog) -> None:
        """Append this queue's batches to ``log``."""
        starts = np.asarray(self._starts, dtype=np.int64)
        if len(starts) == 0:
            return
        sizes = np.diff(np.append(starts, len(self.ids)))
        log.add(
            members=self.ids,
            sizes=sizes,
            dispatch=np.asarray(self._disp, dtype=float),
            service=np.asarray(self._serv, dtype=float),
            replica=np.asarray(self._repl, dtype=np.int64),
            tref=np.asarray(self._tref, dtype=float),
        )


class StaticPath:
    """Queue membership known before the run: one shared queue, or per-replica queues routed by a
    static balancer; open loop, no admission control. One :class:`StaticQueue` process per queue."""

    name = "static"
    rule = "open loop, no admission control, and one shared queue or a static balancer (round_robin, random)"

    def handles(self, spec: EngineSpec) -> bool:
        fleet = spec.fleet
        return (
            spec.closed_loop is None
            and not spec.admission.active
            and (not fleet.per_replica or fleet.balancer.static)
        )

    def run(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        progress: bool = False,
    ) -> PathRun:
        """Route every request up front, then run each queue on its own."""
        assert requests is not None, "an open loop only (see handles)"
        bar = RunProgress(len(requests), progress)
        try:
            queues = self._queues(spec, requests, service, streams)
            env = simpy.Environment()
            for q in queues:
                q.progress = bar
                env.process(q.process(env))
            env.run()
        finally:
            bar.close()
        log = BatchLog()
        for q in queues:
            q.log_into(log)
        return PathRun(requests, log, env.now, np.zeros(len(requests), dtype=bool))

    @staticmethod
    def _queues(
        spec: EngineSpec, requests: Requests, service: ServiceModel, streams: Streams
    ) -> list[StaticQueue]:
        fleet = spec.fleet
        R = fleet.replicas
        ids = np.arange(len(requests), dtype=np.int64)
        arrival = np.asarray(requests.arrival_ms, dtype=float)
        items = None if np.all(requests.items == 1) else np.asarray(requests.items, dtype=np.int64)
        if not fleet.per_replica:
            groups = [(ids, arrival, items, list(range(R)))]
        else:
            route = fleet.balancer.route(len(ids), R, np.random.default_rng(streams.balancer))
            groups = []
            for r in range(R):
                sel = np.flatnonzero(route == r)
                groups.append((ids[sel], arrival[sel], None if items is None else items[sel], [r]))
        rngs = streams.service_rngs(len(groups))
        return [
            StaticQueue(g_ids, g_arr, g_items, reps, spec.policy, service.batch_sampler(rng))
            for (g_ids, g_arr, g_items, reps), rng in zip(groups, rngs, strict=True)
        ]
