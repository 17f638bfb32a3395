"""The engine's general ``event`` path: routing and admission that depend on the state of the queues.

It handles every experiment (:class:`EventPath` in :mod:`simlat.engine.paths`); the engine takes it
for what the faster paths do not: queue capacity, request timeouts, closed-loop clients, and
state-dependent balancing (join-shortest-queue, power-of-two) with ``on_close`` or adaptive
batching. One SimPy process (the balancer) walks the arrivals in time order; it yields to SimPy
only when a server event (a batch timer or a batch completion) is due before the next arrival, so
events stay per batch while the per-request work is a few list operations: route, admit, append.
Queues dispatch batches by the rules of :mod:`simlat.engine.batching`; server events are SimPy
timeouts with callbacks.

Semantics specific to this path:

- Outstanding requests of a replica = requests waiting in its queue + requests in service on it.
  Join-shortest-queue and power-of-two compare these counts at the arrival instant.
- ``queue_capacity``: an arrival is rejected (dropped) if that many requests already wait in its
  queue (not counting those in service).
- ``timeout_ms``: a request still waiting ``timeout_ms`` after its arrival is dropped and never
  served; the check happens whenever its queue is looked at (arrival, dispatch, completion,
  timer), and in a closed loop also by a timer at the deadline so that its client is told on time.
  A batch is only dispatched with live members; a closed batch whose members all expired vanishes.
- Closed loop: each client sends a request at ``think`` after the previous answer (answer =
  ``done + overhead``, or the drop instant); the first request of each client goes out after
  one think time. The run ends after ``run.requests`` requests or when ``run.duration_s`` passed.
- Arrivals come before the server events of the same instant (a batch holds the requests that
  arrived by its dispatch, as on the static path): at an arrival, ``on_free`` dispatches at once
  only a full batch, and a deadline that falls on the arrival fires as a timer after it. Server
  events at one instant are processed in the order they were scheduled.

Asked for by name (``simulate(..., path="event")``), it also runs what the static and routed paths
take, with the same records: the tests compare them this way.
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque

import numpy as np
import simpy
from simpy.events import URGENT

from simlat import dists
from simlat.engine.balancer import JoinShortestQueue
from simlat.engine.batching import AdaptiveWindow, BatchPolicy
from simlat.engine.log import BatchLog, PathRun
from simlat.engine.progress import RunProgress
from simlat.engine.service import Sampler, ServiceModel, buffered
from simlat.engine.spec import ClosedLoopSpec, EngineSpec, OverheadSpec
from simlat.engine.streams import Streams
from simlat.workload import Requests

INF = float("inf")


class _Wake(simpy.events.Event):
    """A timeout that fires before the other events of its instant (how SimPy's own
    ``Timeout`` is made, with ``URGENT`` priority): the balancer's wake-up at an arrival, so
    that arrivals come before the server events of the same instant."""

    def __init__(self, env: simpy.Environment, delay: float):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


class EventPath:
    """Every experiment: arrivals walked in time order, server events between them (module docstring)."""

    name = "event"
    rule = "every experiment (closed loop, admission control, any balancer and batching)"

    def handles(self, spec: EngineSpec) -> bool:
        return True

    def run(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        progress: bool = False,
    ) -> PathRun:
        """Run to the end: every request served or dropped."""
        engine = EventEngine(spec, requests, service, streams)
        total = len(requests) if requests is not None else (spec.closed_loop.max_requests or 0)
        engine.progress = RunProgress(total, progress and requests is not None)
        try:
            return engine.run()
        finally:
            engine.progress.close()


class _Clients:
    """Closed-loop clients: when each sends next, and the per-request draws they make."""

    def __init__(self, spec: ClosedLoopSpec, overheads: OverheadSpec, streams: Streams):
        from simlat.workload.fanout import sample_items

        rng = np.random.default_rng(streams.clients)
        think, ipr = spec.think_time_ms, spec.items_per_request
        self.think = buffered(lambda n: dists.sample(think, n, rng))
        self.next_items = buffered(lambda n: sample_items(ipr, n, rng).astype(float))
        orng = np.random.default_rng(streams.overheads)
        rtt, ser = overheads.network_rtt_ms, overheads.serialization_ms
        self.next_overhead = buffered(lambda n: dists.sample(rtt, n, orng) + dists.sample(ser, n, orng))
        self.max_requests, self.max_ms = spec.max_requests, spec.max_ms
        self.client: list[int] = []  # the client of each request
        self.overhead: list[float] = []  # each request's overheads
        self.pending: list[tuple[float, int, int]] = []  # heap of (send time, seq, client)
        self.seq = 0
        self.rng = np.random.default_rng(streams.balancer)  # random / power-of-two picks
        for c in range(spec.clients):
            self.schedule(c, self.think())

    def schedule(self, c: int, t: float) -> None:
        heapq.heappush(self.pending, (t, self.seq, c))
        self.seq += 1

    def answered(self, i: int, t: float) -> None:
        """Request ``i`` was answered (or dropped) at ``t``: its client thinks, then sends again."""
        self.schedule(self.client[i], t + self.think())

    def next_send(self, sent: int) -> float:
        """When the next request goes out (INF once the run's length is reached), ``sent`` so far."""
        t = self.pending[0][0] if self.pending else INF
        if (self.max_requests is not None and sent >= self.max_requests) or (
            self.max_ms is not None and t > self.max_ms
        ):
            return INF
        return t


class _Queue:
    """A queue's state: admitted ids in arrival order, the dispatch head, free replicas."""

    __slots__ = (
        "index",
        "ids",
        "head",
        "free",
        "last",
        "W",
        "aw",
        "sampler",
        "timer",
        "timer_at",
        "closed",
        "open_start",
        "log",
    )

    def __init__(self, index: int, replicas: list[int], policy: BatchPolicy, sampler: Sampler):
        self.index = index  # queue number (= replica for per-replica queues)
        self.ids = array("q")  # typed arrays keep memory at 8 bytes a request
        self.head = 0
        self.free = [(0.0, r) for r in replicas]  # heap of (free since, replica)
        self.last = 0.0  # last dispatch time
        self.W: float | None = None if policy.adaptive else policy.max_wait_ms
        self.aw = AdaptiveWindow(policy) if policy.adaptive else None
        self.sampler = sampler
        self.timer = None  # token of the pending batch timer
        self.timer_at = INF
        self.closed: deque = deque()  # on_close: (end position, close time) of closed batches
        self.open_start = 0
        # this queue's batches: members, then per batch size, dispatch, service, replica, tref
        self.log = (array("q"), [], [], [], [], [])


class EventEngine:
    """Runs one experiment through state-dependent routing and admission (see module docstring)."""

    def __init__(self, spec: EngineSpec, requests: Requests | None, service: ServiceModel, streams: Streams):
        policy = spec.policy
        self.policy = policy
        self.streams = streams
        fleet = spec.fleet
        self.R = fleet.replicas
        self.per_replica = fleet.per_replica
        self.balancer = fleet.balancer
        self.cap = spec.admission.queue_capacity
        self.T = spec.admission.timeout_ms
        self.env = simpy.Environment()
        rngs = streams.service_rngs(fleet.queues)
        if self.per_replica:
            self.queues = [_Queue(r, [r], policy, service.batch_sampler(rngs[r])) for r in range(self.R)]
            self.queue_of = list(range(self.R))
        else:
            self.queues = [_Queue(0, list(range(self.R)), policy, service.batch_sampler(rngs[0]))]
            self.queue_of = [0] * self.R
        for q in self.queues:
            heapq.heapify(q.free)
        self.out = [0] * self.R  # outstanding per replica (per-replica queues)
        self.jsq_order = None  # join-shortest-queue picks, valid while no count decreases
        self.horizon = 0.0  # time of the next scheduled SimPy event (kept by the open-loop balancer)
        self.insvc = [0] * self.R  # requests in service per replica
        self.pad = policy.padder()
        self.clients = (
            None if spec.closed_loop is None else _Clients(spec.closed_loop, spec.overheads, streams)
        )
        if self.clients is not None:  # requests are created as the clients send them
            self.arr: list[float] = []
            self.items: list[int] = []
            self.dropped: list[bool] = []
        else:
            self.arr = array("d")
            self.arr.frombytes(np.ascontiguousarray(requests.arrival_ms, dtype=np.float64).tobytes())
            self.requests = requests
            self.items = None if np.all(requests.items == 1) else np.asarray(requests.items).tolist()
            self.dropped = [False] * len(requests)
        self.routed: list[int] | None = None
        self.progress = None

    # -- queue mechanics -----------------------------------------------------------------------
    def _purge(self, q: _Queue, now: float) -> None:
        """Drop waiting requests whose timeout passed (they are the oldest: a prefix)."""
        ids, arr, T = q.ids, self.arr, self.T
        h = q.head
        while h < len(ids) and arr[ids[h]] + T < now:
            i = ids[h]
            self.dropped[i] = True
            if self.per_replica:
                self.out[q.index] -= 1
                self.jsq_order = None
            if self.clients is not None:
                self.clients.answered(i, arr[i] + T)
            h += 1
        q.head = h

    def _start_batch(self, q: _Queue, now: float, m: int, tref: float) -> tuple[int, list, int, float]:
        """Take the ``m`` oldest waiting requests of ``q`` to the replica free first, draw the batch's
        service and log it: (replica, members, items, service ms). Shared by the paths that decide
        differently when the batch ends."""
        tf, r = heapq.heappop(q.free)
        ids = q.ids
        h = q.head
        members = ids[h : h + m]
        q.head = h + m
        if self.items is None:
            k = m
        else:
            items = self.items
            k = 0
            for i in members:
                k += items[i]
        if self.pad is not None:
            k = self.pad(k)
        s = q.sampler(k)
        b_members, b_sizes, b_disp, b_serv, b_repl, b_tref = q.log
        b_members.extend(members)
        b_sizes.append(m)
        b_disp.append(now)
        b_serv.append(s)
        b_repl.append(r)
        b_tref.append(tref)
        q.last = now
        if q.aw is not None:
            q.W = None
        self.insvc[r] = m
        return r, members, k, s

    def _dispatch(self, q: _Queue, now: float, m: int, tref: float) -> None:
        """Start a batch of the ``m`` oldest waiting requests of ``q`` at ``now``."""
        r, members, _, s = self._start_batch(q, now, m, tref)
        done = now + s
        clients = self.clients
        if clients is not None:
            ov = clients.overhead
            for i in members:
                clients.answered(i, done + ov[i])
        ev = self.env.timeout(done - self.env.now)
        ev.callbacks.append(lambda _e, r=r: self._complete(r))
        if done < self.horizon:
            self.horizon = done

    def _complete(self, r: int) -> None:
        now = self.env.now
        q = self.queues[self.queue_of[r]]
        self.out[r] -= self.insvc[r]
        self.insvc[r] = 0
        self.jsq_order = None
        heapq.heappush(q.free, (now, r))
        if self.policy.on_close:
            self._serve_closed(q, now)
        else:
            self._serve_free(q, now)

    def _set_timer(self, q: _Queue, at: float, now: float) -> None:
        if q.timer is not None and q.timer_at == at:
            return
        token = object()
        q.timer = token
        q.timer_at = at
        ev = self.env.timeout(max(0.0, at - self.env.now))
        ev.callbacks.append(lambda _e: self._on_timer(q, token))
        if at < self.horizon:
            self.horizon = at

    def _on_timer(self, q: _Queue, token) -> None:
        if q.timer is not token:
            return
        q.timer = None
        now = self.env.now
        if self.policy.on_close:
            self._close(q, now)
        else:
            self._serve_free(q, now)

    # on_free: a free replica takes what is queued, waiting at most W for the batch to fill
    def _serve_free(self, q: _Queue, now: float, arrival: bool = False) -> None:
        """Dispatch what a free replica takes at ``now``. At an ``arrival`` only a full batch goes at
        once: a deadline that falls on ``now`` fires as a timer, after the arrivals of the instant."""
        B = self.policy.max_batch
        while q.free and q.head < len(q.ids):
            if self.T is not None:
                self._purge(q, now)
                if q.head >= len(q.ids):
                    break
            aj = self.arr[q.ids[q.head]]
            tf = q.free[0][0]
            t = tf if tf > q.last else q.last
            if q.W is None:
                u = t if t > aj else aj
                q.W = q.aw.window(u, len(q.ids))  # admitted so far
            waiting = len(q.ids) - q.head
            deadline = aj + q.W
            if waiting >= B or (now >= deadline and not arrival):
                q.timer = None
                self._dispatch(q, now, B if waiting > B else waiting, t)
            else:
                self._set_timer(q, deadline, now)
                break

    # on_close: batches close at max size or max wait; closed batches queue FIFO
    def _open_arrival(self, q: _Queue, now: float) -> None:
        n_open = len(q.ids) - max(q.open_start, q.head)
        if n_open == 1:
            if q.aw is not None:
                q.W = q.aw.window(now, len(q.ids))
            self._set_timer(q, now + q.W, now)
        if n_open >= self.policy.max_batch:
            q.timer = None
            self._close(q, now)

    def _close(self, q: _Queue, now: float) -> None:
        end = len(q.ids)
        if end > max(q.open_start, q.head):
            q.closed.append((end, now))
        q.open_start = end
        self._serve_closed(q, now)

    def _serve_closed(self, q: _Queue, now: float) -> None:
        while q.free and q.closed:
            if self.T is not None:
                self._purge(q, now)
            end, c = q.closed[0]
            if q.head >= end:
                q.closed.popleft()
                continue
            q.closed.popleft()
            self._dispatch(q, now, end - q.head, c)

    # -- arrivals ------------------------------------------------------------------------------
    def _admit(self, i: int, a: float, q: _Queue) -> bool:
        """Admission control at arrival; False if the request is rejected."""
        if self.T is not None:
            self._purge(q, a)
        if self.cap is not None and len(q.ids) - q.head >= self.cap:
            self.dropped[i] = True
            self.jsq_order = None  # the replica JSQ picked did not get the request
            if self.clients is not None:
                self.clients.answered(i, a)
            return False
        return True

    def _arrive(self, i: int, a: float, r: int) -> None:
        q = self.queues[r] if self.per_replica else self.queues[0]
        if (self.cap is not None or self.T is not None) and not self._admit(i, a, q):
            return
        q.ids.append(i)
        if self.per_replica:
            self.out[r] += 1
        if self.clients is not None and self.T is not None:
            ev = self.env.timeout(float(np.nextafter(a + self.T, INF)) - self.env.now)
            ev.callbacks.append(lambda _e, q=q: self._expire(q))
        if self.policy.on_close:
            self._open_arrival(q, a)
        elif q.free:
            self._serve_free(q, a, True)

    def _expire(self, q: _Queue) -> None:
        now = self.env.now
        self._purge(q, now)
        if self.policy.on_close:
            self._serve_closed(q, now)
        else:
            self._serve_free(q, now)

    def _route_all_purge(self, a: float) -> None:
        for q in self.queues:
            self._purge(q, a)

    def process_open(self):
        """The balancer process for a given arrival array.

        It yields to SimPy only when a server event is due before the next arrival (``horizon``,
        the time of the next scheduled event, is kept up to date by every scheduling call). One
        loop over the arrivals, long on purpose: its state lives in locals.
        """
        env = self.env
        arr = self.arr
        n = len(arr)
        out = self.out
        queues = self.queues
        bal = self.balancer
        per_replica = self.per_replica
        jsq = isinstance(bal, JoinShortestQueue)  # water-filled here: see _water_fill
        pick = None
        if per_replica and not jsq:
            pick = bal.open_picker(n, self.R, np.random.default_rng(self.streams.balancer))
        T = self.T
        purge_all = T is not None and per_replica and not bal.static  # before reading the counts
        # the common case inline: no admission control, on_free batching
        simple = self.cap is None and T is None and not self.policy.on_close
        # where each request was routed: only needed for the ones dropped before any batch
        routed = [-1] * n if per_replica and not simple else None
        B = self.policy.max_batch
        serve_free = self._serve_free
        peek = env.peek
        self.horizon = peek()
        progress = self.progress
        for i in range(n):
            a = arr[i]
            if self.horizon < a:
                yield _Wake(env, a - env.now)
                self.horizon = peek()
            if not i & 0xFFFF and progress is not None:
                progress.advance(i - progress.done)
            if not per_replica:
                r = 0
            else:
                if purge_all:
                    self._route_all_purge(a)
                if jsq:
                    g = self.jsq_order
                    if g is None:
                        g = self.jsq_order = _water_fill(out)
                    r = next(g)
                else:
                    r = pick(i, out)
                if routed is not None:
                    routed[i] = r
            if simple:
                q = queues[r]
                q.ids.append(i)
                out[r] += 1
                if q.free and (q.timer is None or len(q.ids) - q.head >= B):
                    serve_free(q, a, True)
            else:
                self._arrive(i, a, r)
        self.routed = routed

    def process_closed(self):
        """The clients' process: a request is created when its client sends it."""
        env = self.env
        clients = self.clients
        n = 0
        while True:
            t = clients.next_send(n)
            nxt = env.peek()
            if nxt < t or (t == INF and nxt < INF):
                yield env.timeout(nxt - env.now)  # let a server event happen: it may schedule sends
                continue
            if t == INF:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            _, _, c = heapq.heappop(clients.pending)
            now = env.now
            i = len(self.arr)
            self.arr.append(now)
            self.items.append(int(clients.next_items()))
            clients.client.append(c)
            clients.overhead.append(clients.next_overhead())
            self.dropped.append(False)
            n += 1
            r = self.balancer.pick(self.out, i, clients.rng) if self.per_replica else 0
            self._arrive(i, now, r)

    def run(self) -> PathRun:
        """Run to the end: every request served or dropped."""
        env = self.env
        env.process(self.process_closed() if self.clients is not None else self.process_open())
        env.run()
        return self.collect()

    def collect(self) -> PathRun:
        """The per-batch log, the drops and the end of the run, once the environment has run."""
        env = self.env
        # requests still waiting at the end (closed loop stopped): none remain since events drain
        log = BatchLog()
        for q in self.queues:  # queue by queue, as the static path logs (batch ids: see BatchLog)
            members, sizes, disp, serv, repl, tref = q.log
            if sizes:
                log.add(
                    members=np.frombuffer(members, dtype=np.int64),
                    sizes=sizes,
                    dispatch=disp,
                    service=serv,
                    replica=repl,
                    tref=tref,
                )
        if self.clients is not None:
            requests = Requests(
                arrival_ms=np.asarray(self.arr, dtype=float),
                items=np.asarray(self.items, dtype=np.int64),
            )
            overhead = np.asarray(self.clients.overhead, dtype=float)
        else:
            requests, overhead = self.requests, None
        routed = None if self.routed is None else np.asarray(self.routed, dtype=np.int64)
        return PathRun(
            requests=requests,
            log=log,
            end_ms=float(env.now),
            dropped=np.asarray(self.dropped, dtype=bool),
            routed=routed,
            overhead=overhead,
        )


def _water_fill(out: list[int]):
    """Join-shortest-queue picks in order while the counts in ``out`` only grow by the picks.

    Level by level, every replica at or below the level gets the next request, lowest index
    first: the same sequence as picking ``argmin(out)`` (ties to the lowest index) before each
    increment, at a fraction of the cost. The caller increments ``out[r]`` after each pick and
    starts a new sequence when a count decreases.
    """
    level = min(out)
    R = len(out)
    while True:
        for r in range(R):
            if out[r] <= level:
                yield r
        level += 1
