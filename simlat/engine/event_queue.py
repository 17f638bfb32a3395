"""The engine's general path: routing and admission that depend on the state of the queues.

Used for join-shortest-queue and power-of-two balancing, queue capacity, request timeouts and
closed-loop clients. One SimPy process (the balancer) walks the arrivals in time order; it
yields to SimPy only when a server event (a batch timer or a batch completion) is due before the
next arrival, so events stay per batch while the per-request work is a few list operations:
route, admit, append. Queues dispatch batches by the rules of :mod:`simlat.engine.batching`;
server events are SimPy timeouts with callbacks.

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
- The common case (open loop, per-replica queues, ``on_free`` with a fixed window, no admission
  control) runs in :mod:`simlat.engine.routed`, a loop without an event calendar that gives the
  same records (``run_events(..., fast=False)`` keeps it here, to compare).
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import URGENT

from simlat import dists
from simlat.engine import routed as fast_loop
from simlat.engine.balancer import pair_draws, route_static
from simlat.engine.batching import AdaptiveWindow, BatchPolicy
from simlat.engine.log import BatchLog
from simlat.engine.progress import RunProgress
from simlat.engine.service import Sampler, ServiceModel
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


@dataclass
class EventRun:
    """What the event path hands back to :func:`simlat.engine.simulation.simulate`."""

    requests: Requests
    log: BatchLog
    end_ms: float
    dropped: np.ndarray
    routed: np.ndarray | None  # replica each request was routed to (per-replica queues), else None
    overhead: np.ndarray | None  # per-request overheads when the engine drew them (closed loop)


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

    def __init__(
        self,
        experiment,
        requests: Requests | None,
        policy: BatchPolicy,
        service: ServiceModel,
        streams,
        fast: bool = True,
    ):
        self.exp = experiment
        self.fast = fast  # use simlat.engine.routed where it applies
        self.policy = policy
        self.service = service
        self.streams = streams
        fleet = experiment.fleet
        self.R = fleet.replicas
        self.per_replica = fleet.queue == "per_replica" and self.R > 1
        self.balancer = fleet.balancer if self.per_replica else None
        adm = experiment.admission
        self.cap = adm.queue_capacity
        self.T = adm.timeout_ms
        self.closed_loop = requests is None
        self.env = simpy.Environment()
        nq = self.R if self.per_replica else 1
        rngs = streams.service_rngs(nq)
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
        if self.closed_loop:
            self._init_closed_loop()
        else:
            self.arr = array("d")
            self.arr.frombytes(np.ascontiguousarray(requests.arrival_ms, dtype=np.float64).tobytes())
            self.requests = requests
            if self.fast and fast_loop.handles(policy, self.per_replica, False, self.cap, self.T):
                self.items = np.asarray(requests.items)  # the fast loop's input (see _run_routed)
            else:
                self.items = None if np.all(requests.items == 1) else np.asarray(requests.items).tolist()
                self.dropped = [False] * len(requests)
        self.routed: list[int] | None = None
        self.progress = None

    # -- closed loop ---------------------------------------------------------------------------
    def _init_closed_loop(self) -> None:
        exp = self.exp
        cl = exp.workload.arrivals
        run = exp.run
        self.limit_n = run.n_requests
        self.limit_t = None if run.duration_s is None else run.duration_s * 1000.0
        rng = np.random.default_rng(self.streams.clients)
        think, ipr = cl.think_time_ms, exp.workload.items_per_request
        from simlat.engine.service import buffered
        from simlat.workload.fanout import sample_items

        self.think = buffered(lambda n: dists.sample(think, n, rng))
        self.next_items = buffered(lambda n: sample_items(ipr, n, rng).astype(float))
        orng = np.random.default_rng(self.streams.overheads)
        ov = exp.overheads
        self.next_overhead = buffered(
            lambda n: dists.sample(ov.network_rtt_ms, n, orng) + dists.sample(ov.serialization_ms, n, orng)
        )
        self.arr: list[float] = []
        self.items: list[int] = []
        self.client: list[int] = []
        self.overhead: list[float] = []
        self.dropped: list[bool] = []
        self.pending: list[tuple[float, int, int]] = []  # heap of (send time, seq, client)
        self.seq = 0
        self._cl_rng = np.random.default_rng(self.streams.balancer)  # random / power-of-two picks
        for c in range(cl.clients):
            self._schedule_client(c, self.think())

    def _schedule_client(self, c: int, t: float) -> None:
        heapq.heappush(self.pending, (t, self.seq, c))
        self.seq += 1

    def _answered(self, i: int, t: float) -> None:
        """Request ``i`` was answered (or dropped) at ``t``: its client thinks, then sends again."""
        self._schedule_client(self.client[i], t + self.think())

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
            if self.closed_loop:
                self._answered(i, arr[i] + T)
            h += 1
        q.head = h

    def _dispatch(self, q: _Queue, now: float, m: int, tref: float) -> None:
        """Start a batch of the ``m`` oldest waiting requests of ``q`` at ``now``."""
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
        done = now + s
        if self.closed_loop:
            ov = self.overhead
            for i in members:
                self._answered(i, done + ov[i])
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
            if self.closed_loop:
                self._answered(i, a)
            return False
        return True

    def _arrive(self, i: int, a: float, r: int) -> None:
        q = self.queues[r] if self.per_replica else self.queues[0]
        if (self.cap is not None or self.T is not None) and not self._admit(i, a, q):
            return
        q.ids.append(i)
        if self.per_replica:
            self.out[r] += 1
        if self.closed_loop and self.T is not None:
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
        the time of the next scheduled event, is kept up to date by every scheduling call).
        """
        env = self.env
        arr = self.arr
        n = len(arr)
        R = self.R
        out = self.out
        queues = self.queues
        bal = self.balancer
        per_replica = self.per_replica
        route = None
        if bal in ("round_robin", "random"):
            route = route_static(bal, n, R, np.random.default_rng(self.streams.balancer)).tolist()
        rng = np.random.default_rng(self.streams.balancer)
        p2c_first, p2c_second, p2c_pos = [], [], 0
        jsq = bal == "join_shortest_queue"
        p2c = bal == "power_of_two"
        T = self.T
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
                if T is not None and (jsq or p2c):
                    self._route_all_purge(a)
                if jsq:
                    g = self.jsq_order
                    if g is None:
                        g = self.jsq_order = _water_fill(out)
                    r = next(g)
                elif p2c:
                    if p2c_pos >= len(p2c_first):
                        p2c_first, p2c_second = pair_draws(R, rng)
                        p2c_pos = 0
                    r1, r2 = p2c_first[p2c_pos], p2c_second[p2c_pos]
                    p2c_pos += 1
                    r = r2 if out[r2] < out[r1] else r1
                else:
                    r = route[i]
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
        pending = self.pending
        n = 0
        while True:
            t = pending[0][0] if pending else INF
            if (self.limit_n is not None and n >= self.limit_n) or (
                self.limit_t is not None and t > self.limit_t
            ):
                t = INF
            nxt = env.peek()
            if nxt < t or (t == INF and nxt < INF):
                yield env.timeout(nxt - env.now)  # let a server event happen: it may schedule sends
                continue
            if t == INF:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            _, _, c = heapq.heappop(pending)
            now = env.now
            i = len(self.arr)
            self.arr.append(now)
            self.items.append(int(self.next_items()))
            self.client.append(c)
            self.overhead.append(self.next_overhead())
            self.dropped.append(False)
            n += 1
            self._arrive(i, now, self._route_closed(i) if self.per_replica else 0)

    def _route_closed(self, i: int) -> int:
        out = self.out
        if self.balancer == "join_shortest_queue":
            return out.index(min(out))
        if self.balancer == "round_robin":
            return i % self.R
        if self.balancer == "random":
            return int(self._cl_rng.integers(self.R))
        r1, r2 = (int(x) for x in self._cl_rng.choice(self.R, size=2, replace=False))
        return r2 if out[r2] < out[r1] else r1

    def run(self) -> EventRun:
        """Run to the end: every request served or dropped."""
        env = self.env
        if self.fast and fast_loop.handles(self.policy, self.per_replica, self.closed_loop, self.cap, self.T):
            return self._run_routed()
        env.process(self.process_closed() if self.closed_loop else self.process_open())
        env.run()
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
        if self.closed_loop:
            requests = Requests(
                arrival_ms=np.asarray(self.arr, dtype=float),
                items=np.asarray(self.items, dtype=np.int64),
            )
            overhead = np.asarray(self.overhead, dtype=float)
        else:
            requests, overhead = self.requests, None
        routed = None if self.routed is None else np.asarray(self.routed, dtype=np.int64)
        return EventRun(
            requests=requests,
            log=log,
            end_ms=float(env.now),
            dropped=np.asarray(self.dropped, dtype=bool),
            routed=routed,
            overhead=overhead,
        )

    def _run_routed(self) -> EventRun:
        """The common case, through :class:`simlat.engine.routed.RoutedQueues`."""
        rq = fast_loop.RoutedQueues(
            self.arr,
            self.items,
            self.R,
            self.policy,
            [q.sampler for q in self.queues],
            self.balancer,
            np.random.default_rng(self.streams.balancer),
        )
        rq.progress = self.progress
        self.env.process(rq.process(self.env))
        self.env.run()
        log = BatchLog()
        rq.log_into(log)
        return EventRun(
            requests=self.requests,
            log=log,
            end_ms=float(self.env.now),
            dropped=np.zeros(len(self.requests), dtype=bool),
            routed=None,
            overhead=None,
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


def run_events(
    experiment, requests, policy, service, streams, progress: bool = False, fast: bool = True
) -> EventRun:
    """Run the general path (see the module docstring); ``fast=False`` keeps even its common case
    (:mod:`simlat.engine.routed`) on the general event loop, to compare the two."""
    engine = EventEngine(experiment, requests, policy, service, streams, fast=fast)
    total = len(requests) if requests is not None else (experiment.run.n_requests or 0)
    engine.progress = RunProgress(total, progress and requests is not None)
    try:
        return engine.run()
    finally:
        engine.progress.close()
