"""The ``shared_gpu`` path: several model instances on one GPU, their batches slowing each other down.

A batch's alone time ``S`` is drawn from the service model at dispatch, as on every path. While it
runs, it progresses at rate ``1 / s(t)``, where ``s(t)`` is its slowdown given the batches running
on its GPU at ``t`` (:class:`simlat.engine.contention.SlowdownModel`). The set of running batches
changes only when a batch starts or ends on the device, so the rates are piecewise constant and the
completion times are exact: at every start or end on a GPU, each running batch's remaining alone
work is advanced (``left -= dt / s``), the slowdowns are recomputed for the new set, and every
batch whose slowdown changed is rescheduled at ``now + left * s`` (its earlier completion event is
discarded by a version number). Processor sharing is the special case ``s = k``.

The queues, batching and admission are those of the ``event`` path (:class:`SharedGpuEngine` is an
:class:`simlat.engine.event_queue.EventEngine` whose batches end when the device says so), with the
same service draws in the same order: with one instance per GPU, a batch is always alone (``s = 1``)
and the records are the event path's, bit for bit (``tests/test_shared_gpu.py``). ``service_ms`` in
the records is the batch's time on the device with contention (its alone time when it never
shared). Several tenants (models with their own queues) can share one set of GPUs: their engines
run in one SimPy environment over one :class:`DeviceSet` (:func:`run_engines`).

Not modelled: closed-loop clients (their next send is fixed at dispatch, before the end is known).
"""

from __future__ import annotations

import simpy

from simlat.engine.contention import Key, SlowdownModel
from simlat.engine.event_queue import EventEngine, _Queue
from simlat.engine.log import PathRun
from simlat.engine.progress import RunProgress
from simlat.engine.service import ServiceModel
from simlat.engine.spec import EngineSpec
from simlat.engine.streams import Streams
from simlat.profiles.contention import read
from simlat.workload import Requests


class _Batch:
    """A batch on a device: its remaining alone work and current slowdown."""

    __slots__ = ("engine", "queue", "replica", "sig", "left", "slow", "t", "ver", "log_i", "start", "alone",
                 "stretched")

    def __init__(self, engine, queue, replica, sig, alone, now, log_i):
        self.engine = engine
        self.queue = queue
        self.replica = replica
        self.sig = sig  # (model key, items)
        self.left = alone  # alone work still to do (ms)
        self.slow = 1.0
        self.t = now  # when ``left`` was last advanced
        self.ver = 0
        self.log_i = log_i  # index of its row in the queue's log
        self.start = now
        self.alone = alone
        self.stretched = False


class _Horizon:
    """The time of the next scheduled event, shared by the engines of one environment."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 0.0


class _NoContention:
    """Every batch alone: the slowdown model of a fleet with one instance per GPU."""

    warnings: set[str] = set()

    def slowdown(self, focal, others) -> float:
        if others:
            raise AssertionError("two batches on one GPU of a fleet with one instance per GPU")
        return 1.0


class DeviceSet:
    """The GPUs and the batches running on each (see the module docstring).

    ``trace``: when True, each device's piecewise-constant progress is kept as
    ``(device, t0, t1, sum of rates)`` rows, and each batch's ``(device, alone, start, end)``, so a
    test can check that the work done equals the work drawn.
    """

    def __init__(self, n: int, model: SlowdownModel | _NoContention, trace: bool = False):
        self.running: list[list[_Batch]] = [[] for _ in range(n)]
        self.model = model
        self.last = [0.0] * n
        self.segments: list[tuple[int, float, float, float]] | None = [] if trace else None
        self.batches: list[tuple[int, float, float, float]] | None = [] if trace else None

    def _advance(self, d: int, now: float) -> None:
        run = self.running[d]
        if self.segments is not None and run and now > self.last[d]:
            self.segments.append((d, self.last[d], now, sum(1.0 / b.slow for b in run)))
        self.last[d] = now
        for b in run:
            if b.t < now:
                b.left -= (now - b.t) / b.slow
                b.t = now

    def _rerate(self, d: int, now: float, new: _Batch | None) -> None:
        run = self.running[d]
        if len(run) == 1 and run[0] is new:  # alone: s = 1, as on the event path
            new.engine._schedule_end(new, now + new.left)
            return
        sigs = [b.sig for b in run]
        slowdown = self.model.slowdown
        for i, b in enumerate(run):
            s = slowdown(sigs[i], tuple(sorted(sigs[:i] + sigs[i + 1:])))
            if s != b.slow or b is new:
                if s != 1.0 or b.slow != 1.0:
                    b.stretched = True
                b.slow = s
                b.ver += 1
                left = b.left if b.left > 0.0 else 0.0
                b.engine._schedule_end(b, now + left * s)

    def start(self, d: int, b: _Batch, now: float) -> None:
        self._advance(d, now)
        self.running[d].append(b)
        self._rerate(d, now, b)

    def finish(self, d: int, b: _Batch, now: float) -> None:
        self._advance(d, now)
        self.running[d].remove(b)
        if self.batches is not None:
            self.batches.append((d, b.alone, b.start, now))
        if self.running[d]:
            self._rerate(d, now, None)


class SharedGpuEngine(EventEngine):
    """The event path's queues, with batch ends decided by the :class:`DeviceSet` (module docstring)."""

    def __init__(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        *,
        env: simpy.Environment,
        horizon: _Horizon,
        devices: DeviceSet,
        device_of: list[int],
        key: Key,
    ):
        self._h = horizon
        super().__init__(spec, requests, service, streams)
        self.env = env
        self.devices = devices
        self.device_of = device_of
        self.key = key

    @property
    def horizon(self) -> float:
        return self._h.t

    @horizon.setter
    def horizon(self, t: float) -> None:
        self._h.t = t

    def _dispatch(self, q: _Queue, now: float, m: int, tref: float) -> None:
        """Start a batch of the ``m`` oldest waiting requests of ``q`` at ``now`` on its replica's GPU."""
        r, _, k, s = self._start_batch(q, now, m, tref)
        b = _Batch(self, q, r, (self.key, k), s, now, len(q.log[3]) - 1)
        self.devices.start(self.device_of[r], b, now)

    def _schedule_end(self, b: _Batch, done: float) -> None:
        ev = self.env.timeout(done - self.env.now)
        ver = b.ver

        def end(_e: simpy.events.Event, b: _Batch = b, ver: int = ver) -> None:
            self._end(b, ver)

        ev.callbacks.append(end)
        if done < self.horizon:
            self.horizon = done

    def _end(self, b: _Batch, ver: int) -> None:
        if b.ver != ver:
            return  # rescheduled since
        now = self.env.now
        self.devices.finish(self.device_of[b.replica], b, now)
        if b.stretched:
            b.queue.log[3][b.log_i] = now - b.start
        self._complete(b.replica)

    def collect(self) -> PathRun:
        """The per-batch log once the environment has run (the second half of ``EventEngine.run``)."""
        run = super().collect()
        run.warnings = tuple(sorted(self.devices.model.warnings))
        return run

    def run(self) -> PathRun:
        self.env.process(self.process_open())
        self.env.run()
        return self.collect()


def device_set(spec: EngineSpec, trace: bool = False) -> tuple[DeviceSet, list[int], Key]:
    """The GPUs of one experiment's fleet: replica ``r`` on GPU ``r // instances_per_gpu``."""
    dev = spec.devices
    R = spec.fleet.replicas
    if dev is None:  # one instance per GPU: nothing is shared, no profile is read
        return DeviceSet(R, _NoContention(), trace), list(range(R)), ("", "")
    model = SlowdownModel(read(dev.profile), dev.mode)
    model.check([[dev.model] * dev.instances_per_gpu])
    ipg = dev.instances_per_gpu
    return DeviceSet(dev.gpus, model, trace), [r // ipg for r in range(R)], dev.model


class SharedGpuPath:
    """Instances that share GPUs, open loop (module docstring)."""

    name = "shared_gpu"
    rule = "an open-loop workload (it is taken first when instances share a GPU: fleet.instances_per_gpu > 1)"

    def handles(self, spec: EngineSpec) -> bool:
        return spec.closed_loop is None

    def run(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        progress: bool = False,
    ) -> PathRun:
        devices, device_of, key = device_set(spec)
        engine = SharedGpuEngine(spec, requests, service, streams, env=simpy.Environment(), horizon=_Horizon(),
                                 devices=devices, device_of=device_of, key=key)
        bar = RunProgress(len(requests) if requests is not None else 0, progress)
        engine.progress = bar  # type: ignore[assignment]  # EventEngine declares it None until a path sets it
        try:
            return engine.run()
        finally:
            bar.close()
