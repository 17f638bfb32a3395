"""Per-replica queues routed by their state, without admission control: the ``routed`` path.

This path (:class:`RoutedPath` in :mod:`simlat.engine.paths`) takes the common case of the general
event path (:mod:`simlat.engine.event_queue`): an open loop over per-replica queues (one replica
each), ``dynamic`` (or no) batching dispatched ``on_free`` with a fixed window, no queue capacity
and no timeout, whatever the balancer (join-shortest-queue and power-of-two read the replicas'
state; round robin and random come here only when the path is asked for by name, since the static
path takes them first). The semantics are the event path's, and the tests hold the two to the
same records:

- a queue holds its admitted requests (ids, arrival times, cumulative items) and a dispatch head;
  its replica is busy until its batch's completion, or free since its last completion;
- a queue has at most one pending server event: its batch's completion while its replica is busy,
  or its batch timer (oldest waiting arrival + W) while the replica is free and requests wait.
  At the event, a free replica takes up to B waiting requests if B wait or the oldest has waited W;
  an arrival to a free replica dispatches at once only if it makes B waiting;
- queues interact only through the outstanding counts (waiting + in service) that routing reads at
  arrivals, so no event calendar is needed: before an arrival at ``a``, every queue whose next
  event is due before ``a`` is advanced to ``a`` on its own, event after event. Arrivals at an
  instant come before the server events of that instant (a batch holds the requests that arrived
  by its dispatch), as in the event path;
- the loop logs each batch (queue, size, dispatch, service) and each request's queue in typed
  arrays; after the run every queue's batches become slices of its requests in arrival order, as in
  :mod:`simlat.engine.static_queue`, and the time a replica became free (the wait split's
  reference) is its previous batch's completion.

Per batch the loop does a few list operations, four appends and one service draw; per arrival, a
routing pick and two or three appends. One SimPy process runs the loop and advances the SimPy
clock every ``CHUNK`` arrivals. :meth:`RoutedQueues.process` is one long function on purpose: its
state lives in locals and the balancers' picks are inlined (a call per arrival or per batch would
cost about a tenth of its speed, ``benchmarks/engine_bench.py`` cases b and d).
"""

from __future__ import annotations

from array import array

import numpy as np
import simpy

from simlat.engine.balancer import Balancer, JoinShortestQueue, PowerOfTwo, pair_draws
from simlat.engine.batching import BatchPolicy
from simlat.engine.log import BatchLog, PathRun
from simlat.engine.progress import RunProgress
from simlat.engine.service import Sampler, ServiceModel
from simlat.engine.spec import EngineSpec
from simlat.engine.streams import Streams
from simlat.workload import Requests

INF = float("inf")
CHUNK = 65536
"""Arrivals handled between two advances of the SimPy clock (and progress reports)."""


class RoutedPath:
    """Open loop, per-replica queues, ``on_free`` batching with a fixed window, no admission
    control: :class:`RoutedQueues`, a loop without an event calendar (see the module docstring)."""

    name = "routed"
    rule = "open loop, per-replica queues, on_free batching with a fixed window, no admission control"

    def handles(self, spec: EngineSpec) -> bool:
        p = spec.policy
        return (
            spec.fleet.per_replica
            and spec.closed_loop is None
            and not spec.admission.active
            and not p.on_close
            and not p.adaptive
        )

    def run(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        progress: bool = False,
    ) -> PathRun:
        assert requests is not None, "an open loop only (see handles)"
        R = spec.fleet.replicas
        arrival = array("d")
        arrival.frombytes(np.ascontiguousarray(requests.arrival_ms, dtype=np.float64).tobytes())
        rq = RoutedQueues(
            arrival,
            np.asarray(requests.items),
            R,
            spec.policy,
            [service.batch_sampler(rng) for rng in streams.service_rngs(R)],
            spec.fleet.balancer,
            np.random.default_rng(streams.balancer),
        )
        env = simpy.Environment()
        rq.progress = RunProgress(len(requests), progress)
        try:
            env.process(rq.process(env))
            env.run()
        finally:
            rq.progress.close()
        log = BatchLog()
        rq.log_into(log)
        return PathRun(requests, log, float(env.now), np.zeros(len(requests), dtype=bool))


class RoutedQueues:
    """``R`` per-replica queues fed by one balancer (see the module docstring).

    ``arrival``: sorted arrival times (an ``array('d')``, copied); ``items``: items per request;
    ``samplers``: one service sampler per replica;
    ``rng``: the balancer's stream (random and power-of-two picks).
    """

    def __init__(
        self,
        arrival: array,
        items: np.ndarray,
        replicas: int,
        policy: BatchPolicy,
        samplers: list[Sampler],
        balancer: Balancer,
        rng: np.random.Generator,
    ):
        self.arr = array("d", arrival)
        self.arr.append(INF)  # sentinel: see process()
        self.unit = 1  # items per request when they are all equal (then ``items`` is None)
        if not len(items) or items.min() == items.max():
            self.unit, self.items = (int(items[0]) if len(items) else 1), None
        else:
            self.items = items.tolist()
        self.R = replicas
        self.policy = policy
        self.samplers = samplers
        self.balancer = balancer
        self.rng = rng
        self.pad = policy.padder()
        self.progress = None  # a RunProgress, if the run shows one
        self.end_ms = 0.0
        R = replicas
        self.routes = array("q")  # the queue of every request
        self.q_arr = [array("d") for _ in range(R)]  # arrival times, per queue
        self.q_cum = None if self.items is None else [[0] for _ in range(R)]  # cumulative items
        # per batch, in the order made: queue, batch size, dispatch, service
        self.b_queue = array("q")
        self.b_size = array("q")
        self.b_disp = array("d")
        self.b_serv = array("d")

    # -- SimPy process -------------------------------------------------------------------------
    def process(self, env):
        """The balancer, batchers and servers: arrivals in time order, queues advanced lazily."""
        arr, items, R = self.arr, self.items, self.R
        n = len(arr) - 1
        B, W = self.policy.max_batch, self.policy.max_wait_ms
        pad, samplers = self.pad, self.samplers
        q_arr, q_cum, unit = self.q_arr, self.q_cum, self.unit
        log_q, log_m, log_d, log_s = (
            self.b_queue.append,
            self.b_size.append,
            self.b_disp.append,
            self.b_serv.append,
        )
        route_to = self.routes.append
        head = [0] * R
        insvc = [0] * R  # requests in service (0: the replica is free)
        nxt = [INF] * R  # the queue's pending event: completion if busy, else batch timer
        out = [0] * R  # outstanding: waiting + in service
        bal = self.balancer  # its picks inlined below (see the module docstring)
        jsq, p2c = isinstance(bal, JoinShortestQueue), isinstance(bal, PowerOfTwo)
        route = bal.route(n, R, self.rng).tolist() if bal.static else None
        first, second, pos = [], [], 0
        progress = self.progress
        hz = INF  # min(nxt), or earlier
        for i0 in range(0, n + 1, CHUNK):
            for i in range(i0, min(n + 1, i0 + CHUNK)):
                a = arr[i]  # arr[n] is an infinite sentinel: the last pass drains every queue
                if hz < a:  # server events due before this arrival, queue by queue
                    for r, t in enumerate(nxt):
                        if t >= a:
                            continue
                        qa = q_arr[r]
                        h = head[r]
                        L = len(qa)
                        while t < a:
                            if insvc[r]:  # completion
                                out[r] -= insvc[r]
                                insvc[r] = 0
                            w = L - h
                            if w == 0:
                                t = INF
                                break
                            dl = qa[h] + W
                            if w < B and t < dl:
                                t = dl  # the batch timer
                                continue
                            m = B if w > B else w
                            if q_cum is None:
                                k = m * unit
                            else:
                                cum = q_cum[r]
                                k = cum[h + m] - cum[h]
                            s = samplers[r](k if pad is None else pad(k))
                            log_q(r)
                            log_m(m)
                            log_d(t)
                            log_s(s)
                            h += m
                            insvc[r] = m
                            t += s
                        head[r] = h
                        nxt[r] = t
                    hz = min(nxt)
                if i == n:
                    break
                if jsq:
                    r = out.index(min(out))
                elif p2c:
                    if pos >= len(first):
                        first, second = pair_draws(R, self.rng)
                        pos = 0
                    r1, r2 = first[pos], second[pos]
                    pos += 1
                    r = r2 if out[r2] < out[r1] else r1
                else:
                    r = route[i]
                route_to(r)
                qa = q_arr[r]
                qa.append(a)
                if q_cum is not None:
                    cum = q_cum[r]
                    cum.append(cum[-1] + items[i])
                out[r] += 1
                if insvc[r]:
                    continue  # busy: its completion takes the queue on
                h = head[r]
                w = len(qa) - h
                if w >= B:  # a full batch goes at once (w == B: a free replica leaves fewer waiting)
                    if q_cum is None:
                        k = w * unit
                    else:
                        cum = q_cum[r]
                        k = cum[h + w] - cum[h]
                    s = samplers[r](k if pad is None else pad(k))
                    log_q(r)
                    log_m(w)
                    log_d(a)
                    log_s(s)
                    head[r] = h + w
                    insvc[r] = w
                    dl = a + s
                else:  # the batch timer; at a deadline that is now, it fires after this instant's arrivals
                    dl = qa[h] + W
                nxt[r] = dl
                if dl < hz:
                    hz = dl
            if progress is not None:
                progress.advance(min(n, i0 + CHUNK) - progress.done)
            if i0 + CHUNK <= n:
                yield env.timeout(max(0.0, arr[i0 + CHUNK - 1] - env.now))
        if len(self.b_disp):
            self.end_ms = max(map(float.__add__, self.b_disp, self.b_serv))  # the last completion
            yield env.timeout(max(0.0, self.end_ms - env.now))

    # -- results -------------------------------------------------------------------------------
    def log_into(self, log: BatchLog) -> None:
        """Append every queue's batches to ``log``, queue by queue."""
        if not len(self.b_queue):
            return
        routes = np.frombuffer(self.routes, dtype=np.int64)
        queue = np.frombuffer(self.b_queue, dtype=np.int64)
        size = np.frombuffer(self.b_size, dtype=np.int64)
        disp = np.frombuffer(self.b_disp, dtype=np.float64)
        serv = np.frombuffer(self.b_serv, dtype=np.float64)
        by_queue = np.argsort(routes, kind="stable")  # each queue's requests, in arrival order
        order = np.argsort(queue, kind="stable")  # each queue's batches, in dispatch order
        done = disp + serv
        first = np.r_[True, queue[order][1:] != queue[order][:-1]]
        prev_done = np.r_[0.0, done[order][:-1]]
        log.add(
            members=by_queue,
            sizes=size[order],
            dispatch=disp[order],
            service=serv[order],
            replica=queue[order],
            tref=np.where(first, 0.0, prev_done),  # the replica was free since its last done
        )
