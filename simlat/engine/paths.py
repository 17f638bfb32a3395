"""The engine's paths: three implementations of the same batching semantics, one registry.

Every path turns the requests that reach the balancer into a per-batch log
(:class:`simlat.engine.log.PathRun`), with the dispatch rules of :mod:`simlat.engine.batching`. They
differ in what they can handle and in speed; on what two of them both handle they give the same
records (``tests/test_routed.py``, ``tests/test_engine.py``), and all of them the naive reference's
(``tests/test_reference_equivalence.py``). The engine takes the first path in ``PATHS`` whose
``handles(spec)`` is true; ``simulate(..., path=name)`` asks for one by name (tests, benchmarks).

=========  ==========================================================  ===============================
path       handles(spec)                                               how
=========  ==========================================================  ===============================
static     open loop, no admission control, and one shared queue or    one process per queue, one
           a static balancer (round_robin, random)                     event per batch, routes drawn
                                                                       up front
                                                                       (:mod:`~simlat.engine.static_queue`)
routed     open loop, per-replica queues, ``on_free`` batching with a  one loop over arrivals, queues
           fixed window, no admission control                          advanced lazily, no event
                                                                       calendar (:mod:`~simlat.engine.routed`)
event      every experiment (closed loop, admission control, any       arrivals in time order, server
           balancer and batching)                                      events between them
                                                                       (:mod:`~simlat.engine.event_queue`)
shared_gpu instances that share GPUs (``fleet.instances_per_gpu > 1``;     the event path's queues; batch
           the only path that takes them), open loop                   ends rescheduled as batches
                                                                       start and end on a GPU
                                                                       (:mod:`~simlat.engine.shared_gpu`)
=========  ==========================================================  ===============================

An experiment whose instances share GPUs runs on ``shared_gpu`` only: the other paths know nothing
of contention. Asked for by name, ``shared_gpu`` also runs a fleet of one instance per GPU, with the
event path's records.
"""

from __future__ import annotations

from typing import Protocol

from simlat.engine.event_queue import EventPath
from simlat.engine.log import PathRun
from simlat.engine.registry import by_name
from simlat.engine.routed import RoutedPath
from simlat.engine.service import ServiceModel
from simlat.engine.shared_gpu import SharedGpuPath
from simlat.engine.spec import EngineSpec
from simlat.engine.static_queue import StaticPath
from simlat.engine.streams import Streams
from simlat.errors import SimlatError
from simlat.workload import Requests


class Path(Protocol):
    """One way through the queues."""

    name: str
    rule: str
    """``handles`` in words, for the map and for errors."""

    def handles(self, spec: EngineSpec) -> bool:
        """True when this path can run ``spec``."""

    def run(
        self,
        spec: EngineSpec,
        requests: Requests | None,
        service: ServiceModel,
        streams: Streams,
        progress: bool,
    ) -> PathRun:
        """Run ``requests`` (None: the closed loop's clients make them) through the queues."""


PATHS: dict[str, Path] = by_name("engine paths", StaticPath(), RoutedPath(), EventPath(), SharedGpuPath())
"""The paths, fastest first: the engine takes the first that handles a spec (``shared_gpu`` only, and
always, when instances share a GPU)."""

SHARED = "shared_gpu"


def choose_path(spec: EngineSpec, name: str | None = None) -> Path:
    """The path named ``name``, or the first in ``PATHS`` that handles ``spec``."""
    if spec.devices is not None:
        if name is not None and name != SHARED and name in PATHS:
            raise SimlatError(f"path: {name!r} does not model GPUs shared by several instances "
                              f"(fleet.instances_per_gpu {spec.devices.instances_per_gpu}); only {SHARED!r} does")
        if spec.closed_loop is not None:
            raise SimlatError("workload.arrivals: closed_loop is not supported when instances share a GPU "
                              f"(fleet.instances_per_gpu {spec.devices.instances_per_gpu}); use an open-loop workload")
        name = SHARED
    if name is None:
        return next(p for p in PATHS.values() if p.handles(spec))
    if name not in PATHS:
        raise SimlatError(f"path: {name!r} is not one of {', '.join(PATHS)}")
    path = PATHS[name]
    if not path.handles(spec):
        raise SimlatError(f"path: {name!r} does not handle this experiment; it needs {path.rule}")
    return path
