"""The engine's view of an experiment: small frozen specs, reduced from the config at the boundary.

:func:`simlat.engine.simulation.simulate` takes an :class:`simlat.config.Experiment` and turns it
into one :class:`EngineSpec` (as :meth:`simlat.engine.batching.BatchPolicy.from_config` does for
batching); below that point no engine module reads the experiment. A spec holds what the engine
needs and nothing else: the fleet and its balancer object, the batch policy, admission control,
overheads, the closed loop's clients, the cache with its warm-up source, and the GPUs that
instances share (the workload itself
stays in :mod:`simlat.workload`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simlat import dists
from simlat.engine.balancer import Balancer, balancer_for
from simlat.engine.batching import BatchPolicy
from simlat.engine.cache import WarmupSource, warmup_source

if TYPE_CHECKING:
    from simlat.config import Experiment
    from simlat.config.cache import Cache
    from simlat.config.dists import Dist


@dataclass(frozen=True)
class FleetSpec:
    """``replicas`` servers behind one shared queue, or one queue each routed by ``balancer``."""

    replicas: int
    per_replica: bool
    """One queue per replica (and more than one replica); else one shared queue."""
    balancer: Balancer | None
    """Routes requests to the per-replica queues; None with one shared queue."""

    @classmethod
    def from_config(cls, fleet) -> FleetSpec:
        per_replica = fleet.queue == "per_replica" and fleet.replicas > 1
        return cls(fleet.replicas, per_replica, balancer_for(fleet.balancer) if per_replica else None)

    @property
    def queues(self) -> int:
        return self.replicas if self.per_replica else 1


@dataclass(frozen=True)
class AdmissionSpec:
    """Admission control (see :mod:`simlat.engine.event_queue` for the rules)."""

    queue_capacity: int | None = None
    timeout_ms: float | None = None

    @property
    def active(self) -> bool:
        """True when arrivals can be rejected or waiting requests can expire."""
        return self.queue_capacity is not None or self.timeout_ms is not None


@dataclass(frozen=True)
class OverheadSpec:
    """Per-request costs outside the queue: distributions of the network round trip and serialization."""

    network_rtt_ms: Dist
    serialization_ms: Dist

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` overheads (ms): the sum of the non-zero parts, drawn in that order."""
        out = np.zeros(n)
        for dist in (self.network_rtt_ms, self.serialization_ms):
            if not dists.is_zero(dist):
                out += dists.sample(dist, n, rng)
        return out


@dataclass(frozen=True)
class ClosedLoopSpec:
    """``clients`` users that send, wait for the answer, think and send again, until ``max_requests``
    requests were sent or ``max_ms`` passed (one of them is set)."""

    clients: int
    think_time_ms: Dist
    items_per_request: int | Dist
    max_requests: int | None
    max_ms: float | None


@dataclass(frozen=True)
class CacheSpec:
    """The cache stage: its config (:mod:`simlat.engine.cache` models it), the fleet's replica count
    (``l1.copies: replicas``) and what warms it before the run."""

    config: Cache
    replicas: int
    warmup: WarmupSource | None


@dataclass(frozen=True)
class DeviceSpec:
    """GPUs shared by several model instances: replica ``r`` runs on GPU ``r // instances_per_gpu``,
    and the batches on one GPU slow each other down as the contention profile says
    (:mod:`simlat.engine.shared_gpu`)."""

    gpus: int
    instances_per_gpu: int
    model: tuple[str, str]
    """(model, variant): the name the contention profile knows the service by."""
    profile: str
    """Path of the contention profile."""
    mode: str = "processes"

    @classmethod
    def from_config(cls, experiment: Experiment) -> DeviceSpec | None:
        """The layout of ``experiment.fleet``; None when every GPU runs one instance (nothing shared)."""
        fleet = experiment.fleet
        if fleet.instances_per_gpu == 1 or fleet.contention is None:
            return None
        c, svc = fleet.contention, experiment.service
        model = c.model or getattr(svc, "model", None)
        variant = c.variant or getattr(svc, "variant", None)
        if model is None or variant is None:
            from simlat.errors import SimlatError

            raise SimlatError(
                f"fleet.contention.model: needed with service kind {svc.kind!r} (only kind: profile names its "
                "model and variant): give fleet.contention.model and fleet.contention.variant"
            )
        return cls(fleet.n_gpus, fleet.instances_per_gpu, (model, variant), c.path, c.mode)


@dataclass(frozen=True)
class EngineSpec:
    """Everything the engine reads of an experiment (see the module docstring)."""

    fleet: FleetSpec
    policy: BatchPolicy
    admission: AdmissionSpec
    overheads: OverheadSpec
    closed_loop: ClosedLoopSpec | None = None
    cache: CacheSpec | None = None
    devices: DeviceSpec | None = None
    """Instances that share GPUs (None: one instance per GPU, no contention)."""

    @classmethod
    def from_experiment(cls, experiment: Experiment) -> EngineSpec:
        """Reduce ``experiment`` to the engine's spec (the only place the engine reads the config)."""
        wl, run = experiment.workload, experiment.run
        closed = None
        if wl.arrivals.kind == "closed_loop":
            closed = ClosedLoopSpec(
                clients=wl.arrivals.clients,
                think_time_ms=wl.arrivals.think_time_ms,
                items_per_request=wl.items_per_request,
                max_requests=run.n_requests,
                max_ms=None if run.duration_s is None else run.duration_s * 1000.0,
            )
        cache = None
        if experiment.cache is not None and closed is None:
            cache = CacheSpec(
                experiment.cache, experiment.fleet.replicas, warmup_source(experiment.cache, wl)
            )
        adm, ov = experiment.admission, experiment.overheads
        return cls(
            fleet=FleetSpec.from_config(experiment.fleet),
            policy=BatchPolicy.from_config(experiment.batching),
            admission=AdmissionSpec(adm.queue_capacity, adm.timeout_ms),
            overheads=OverheadSpec(ov.network_rtt_ms, ov.serialization_ms),
            closed_loop=closed,
            cache=cache,
            devices=DeviceSpec.from_config(experiment),
        )
