"""A naive SimPy model, one process per request: what a user would write first.

It exists to check the fast engine (identical per-request latencies on the same arrivals and
service draws, see ``tests/test_reference_equivalence.py``) and to measure how much faster the
engine is (``benchmarks/engine_bench.py``). It supports:

- no batching, one shared queue, ``c`` replicas: a ``simpy.Resource`` of capacity ``c``;
- dynamic batching (``on_free`` and ``on_close``, buckets), one shared queue, ``c`` replicas: a
  batcher process and a ``simpy.Store`` of free replicas (on_free) or of closed batches (on_close);
- per-replica queues routed round robin, at random, to the shortest queue (fewest outstanding
  requests, ties to the lowest index) or by power of two choices, each queue as above with one
  replica.

Not supported: adaptive batching, admission control, caches, closed loops. Service draws use
the same streams as the engine (one per queue, in dispatch order), and overheads the same stream.
"""

from __future__ import annotations

import numpy as np
import simpy

from simlat.config import Experiment
from simlat.engine.batching import BatchPolicy
from simlat.engine.service import build_service
from simlat.engine.spec import FleetSpec, OverheadSpec
from simlat.engine.streams import Streams
from simlat.errors import SimlatError
from simlat.workload import Requests


class _NaiveQueue:
    """One queue with its batcher and servers, fed by request processes."""

    def __init__(self, env, replicas, policy: BatchPolicy, sampler, items):
        self.env = env
        self.policy = policy
        self.sampler = sampler
        self.items = items
        self.pad = policy.padder()
        self.waiting: list[tuple[int, simpy.Event]] = []
        self.arrivals: list[float] = []
        self.outstanding = 0
        self._signal = env.event()
        if policy.max_batch == 1 and policy.max_wait_ms == 0 and self.pad is None:
            self.resource = simpy.Resource(env, capacity=len(replicas))
            return
        self.resource = None
        if policy.on_close:
            self.closed = simpy.Store(env)
            for _ in replicas:
                env.process(self._server())
        else:
            self.free = simpy.Store(env)
            for r in replicas:
                self.free.put(r)
        env.process(self._batcher())

    def _service(self, batch) -> float:
        k = sum(self.items[i] for i, _ in batch)
        return self.sampler(self.pad(k) if self.pad is not None else k)

    def request(self, i: int, arrival: float, done: list[float]):
        """A request's life: arrive, wait for its answer."""
        env = self.env
        yield env.timeout(arrival - env.now)
        self.outstanding += 1
        if self.resource is not None:
            with self.resource.request() as req:
                yield req
                yield env.timeout(self.sampler(self.items[i]))
        else:
            answered = env.event()
            self.waiting.append((i, answered))
            self.arrivals.append(env.now)
            signal, self._signal = self._signal, env.event()
            signal.succeed()
            yield answered
        self.outstanding -= 1
        done[i] = env.now

    def _next_batch(self):
        """Wait until the oldest request is W old or B requests wait; return the batch."""
        env, B, W = self.env, self.policy.max_batch, self.policy.max_wait_ms
        while not self.waiting:
            yield self._signal
        deadline = self.arrivals[0] + W
        while len(self.waiting) < B and env.now < deadline:
            yield env.any_of([env.timeout(deadline - env.now), self._signal])
        batch = self.waiting[:B]
        del self.waiting[:B]
        del self.arrivals[:B]
        return batch

    def _serve(self, batch, s: float):
        yield self.env.timeout(s)
        for _, answered in batch:
            answered.succeed()

    def _batcher(self):
        while True:
            if self.policy.on_close:
                batch = yield from self._next_batch()
                yield self.closed.put(batch)
            else:
                replica = yield self.free.get()
                batch = yield from self._next_batch()
                self.env.process(self._serve_and_free(batch, replica))

    def _serve_and_free(self, batch, replica):
        yield from self._serve(batch, self._service(batch))
        yield self.free.put(replica)

    def _server(self):
        while True:
            batch = yield self.closed.get()
            yield from self._serve(batch, self._service(batch))


def _router(fleet: FleetSpec, queues: list[_NaiveQueue], n: int, streams: Streams):
    if len(queues) == 1:
        return lambda i: queues[0]
    pick = fleet.balancer.open_picker(n, fleet.replicas, np.random.default_rng(streams.balancer))
    return lambda i: queues[pick(i, [q.outstanding for q in queues])]


def _arrivals(env, requests: Requests, router, done):
    """Start each request's process at its arrival (one process per request)."""
    arrival = requests.arrival_ms.tolist()
    for i, a in enumerate(arrival):
        yield env.timeout(a - env.now)
        env.process(router(i).request(i, a, done))


def simulate_naive(experiment: Experiment, requests: Requests, *, seed: np.random.SeedSequence) -> np.ndarray:
    """Per-request latencies (``done - arrival + overheads``) from the naive model."""
    if experiment.batching.kind == "adaptive":
        raise SimlatError("batching.kind: adaptive is not supported by the naive reference")
    adm = experiment.admission
    if adm.queue_capacity is not None or adm.timeout_ms is not None or experiment.cache is not None:
        raise SimlatError("the naive reference supports no admission control and no cache")
    streams = Streams.spawn(seed)
    policy = BatchPolicy.from_config(experiment.batching)
    service = build_service(experiment.service)
    fleet = experiment.fleet
    env = simpy.Environment()
    items = np.asarray(requests.items).tolist()
    if fleet.queue == "shared" or fleet.replicas == 1:
        groups = [list(range(fleet.replicas))]
    else:
        groups = [[r] for r in range(fleet.replicas)]
    rngs = streams.service_rngs(len(groups))
    queues = [
        _NaiveQueue(env, g, policy, service.batch_sampler(rng), items)
        for g, rng in zip(groups, rngs, strict=True)
    ]
    n = len(requests)
    done = [float("nan")] * n
    router = _router(FleetSpec.from_config(fleet), queues, n, streams)
    env.process(_arrivals(env, requests, router, done))
    env.run()
    ov = experiment.overheads
    overhead = OverheadSpec(ov.network_rtt_ms, ov.serialization_ms).sample(n, np.random.default_rng(streams.overheads))
    return np.asarray(done) - np.asarray(requests.arrival_ms, dtype=float) + overhead
