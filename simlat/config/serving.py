"""How the service is laid out: fleet and balancer, batching policy, admission control, overheads."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from simlat.config.autoscaling import Autoscaling
from simlat.config.base import StrictModel
from simlat.config.dists import ZERO, Dist

MIN_REQUESTS = 100
"""The fewest requests :func:`simlat.api.run` summarises: fewer give no meaningful percentile,
throughput or verdict (the engine itself simulates any number)."""
MAX_REQUESTS = 1_000_000_000
"""The most requests one run may ask for (each takes about 100 bytes of memory per array column)."""
MAX_SEED = 2**63 - 1
"""Seeds are non-negative (numpy's SeedSequence) and fit in 64 bits."""


class Contention(StrictModel):
    """The measured contention profile that says how much slower batches run when several instances
    share one GPU (``simlat calibrate --contention``)."""

    path: str = Field(min_length=1, description="Contention profile file (schema simlat.contention).")
    mode: Literal["processes", "mps", "streams"] = Field(
        default="processes",
        description="Which measured sharing mode the instances run in (time-sliced processes, MPS or CUDA streams).",
    )
    model: str | None = Field(
        default=None, description="The model's name in the profile; default: service.model (kind: profile)."
    )
    variant: str | None = Field(
        default=None, description="The variant's name in the profile; default: service.variant (kind: profile)."
    )


class Fleet(StrictModel):
    """Replicas behind a load balancer, with one shared queue or one queue per replica.

    With ``queue: shared`` the balancer is not used: a free replica takes the next batch. A replica
    is one model instance; ``instances_per_gpu`` instances share each GPU (Triton's
    ``instance_group { count: N }``), and their batches then slow each other down as the
    ``contention`` profile says. ``gpus`` fixes the replica count at ``gpus x instances_per_gpu``.
    """

    replicas: PositiveInt = Field(default=1, description="Servers (model instances), each serving one batch at a time.")
    balancer: Literal["round_robin", "random", "join_shortest_queue", "power_of_two"] = Field(
        default="round_robin",
        description="How a batch picks a replica's queue; ignored (with a warning) when queue is shared.",
    )
    queue: Literal["shared", "per_replica"] = Field(
        default="shared", description="One queue all replicas take from, or one queue per replica behind the balancer."
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="How the replica count follows the load over a day (simlat day); simulate and sweeps run fleet.replicas.",
    )
    gpus: PositiveInt | None = Field(
        default=None,
        description="GPUs; when given, replicas = gpus x instances_per_gpu (leave replicas out). Cost counts GPUs.",
    )
    instances_per_gpu: PositiveInt = Field(
        default=1, description="Model instances on each GPU; their batches contend for it (needs contention when > 1)."
    )
    contention: Contention | None = Field(
        default=None, description="The contention profile, needed when instances share a GPU."
    )

    @model_validator(mode="before")
    @classmethod
    def _replicas_from_gpus(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("gpus") is not None:
            gpus, ipg = data["gpus"], data.get("instances_per_gpu", 1)
            if isinstance(gpus, int) and isinstance(ipg, int) and not isinstance(gpus, bool) and not isinstance(ipg, bool):
                if data.get("replicas") is None:
                    data = {**data, "replicas": gpus * ipg}
                elif data["replicas"] != gpus * ipg:
                    raise ValueError(
                        f"replicas: {data['replicas']!r} must equal gpus x instances_per_gpu ({gpus} x {ipg} = "
                        f"{gpus * ipg}); give gpus or replicas, not both"
                    )
        return data

    @model_validator(mode="after")
    def _whole_gpus(self):
        if self.replicas % self.instances_per_gpu:
            raise ValueError(
                f"replicas: {self.replicas} must be a multiple of instances_per_gpu ({self.instances_per_gpu}): "
                "every GPU runs instances_per_gpu instances"
            )
        if self.instances_per_gpu > 1 and self.contention is None:
            raise ValueError(
                f"contention: required when instances_per_gpu is {self.instances_per_gpu} (> 1): a contention "
                "profile (simlat calibrate --contention) says how much slower batches run side by side"
            )
        if self.autoscaling is not None and self.instances_per_gpu > 1:
            raise ValueError("autoscaling: not supported with instances_per_gpu > 1 (simlat day scales replicas)")
        return self

    @property
    def n_gpus(self) -> int:
        """GPUs the fleet occupies: ``replicas / instances_per_gpu``."""
        return self.replicas // self.instances_per_gpu


class NoBatching(StrictModel):
    """Each request is served alone."""

    kind: Literal["none"] = "none"


class _BucketsMixin(StrictModel):
    buckets: list[PositiveInt] | None = Field(
        default=None,
        description="Pad each batch's items up to the next allowed size (fixed-shape variants, CUDA graphs).",
    )

    @model_validator(mode="after")
    def _sorted_buckets(self):
        b = self.buckets
        if b is not None and any(y <= x for x, y in zip(b, b[1:], strict=False)):
            raise ValueError("buckets must be strictly increasing")
        return self


class DynamicBatching(_BucketsMixin):
    """A batch holds up to ``max_batch_size`` requests and waits at most ``max_wait_ms`` for them.

    ``dispatch``:
    - ``on_close``: a batch closes at max size or when its first request has waited max_wait_ms,
      whatever the servers are doing; closed batches queue for a replica.
    - ``on_free``: a batch forms when a replica is free, taking what is queued (up to max size),
      waiting until the oldest request is max_wait_ms old if the batch is not full (Triton).
    """

    kind: Literal["dynamic"] = "dynamic"
    max_batch_size: PositiveInt
    max_wait_ms: NonNegativeFloat
    dispatch: Literal["on_close", "on_free"] = "on_free"


class AdaptiveBatching(_BucketsMixin):
    """Load-adaptive: the wait grows with the measured arrival rate, from ``min_wait_ms`` at low load
    to ``max_wait_ms`` when the rate fills ``max_batch_size`` within max_wait_ms.

    The rate is an exponentially weighted estimate over ``window_ms``.
    """

    kind: Literal["adaptive"] = "adaptive"
    max_batch_size: PositiveInt
    min_wait_ms: NonNegativeFloat = 0.0
    max_wait_ms: NonNegativeFloat
    window_ms: PositiveFloat = 100.0
    dispatch: Literal["on_close", "on_free"] = "on_free"

    @model_validator(mode="after")
    def _order(self):
        if self.min_wait_ms > self.max_wait_ms:
            raise ValueError(f"min_wait_ms ({self.min_wait_ms}) must be <= max_wait_ms ({self.max_wait_ms})")
        return self


Batching = Annotated[NoBatching | DynamicBatching | AdaptiveBatching, Field(discriminator="kind")]


class Admission(StrictModel):
    """Admission control. ``queue_capacity``: requests waiting (not in service) beyond which arrivals
    are rejected. ``timeout_ms``: a request not dispatched within this time of arrival is dropped."""

    queue_capacity: PositiveInt | None = None
    timeout_ms: PositiveFloat | None = None


class Overheads(StrictModel):
    """Fixed per-request costs outside the queue (added to latency, not occupying a replica), ms."""

    network_rtt_ms: Dist = ZERO
    serialization_ms: Dist = ZERO


class SLO(StrictModel):
    """The service-level objective: ``percentile`` of latency <= ``latency_ms`` at ``target_rate_rps``."""

    percentile: float = Field(default=99.0, gt=0, lt=100)
    latency_ms: PositiveFloat
    target_rate_rps: PositiveFloat | None = None


class Run(StrictModel):
    """How long to simulate. Give ``requests`` or ``duration_s``; warm-up is discarded from metrics."""

    requests: PositiveInt | None = Field(default=None, le=MAX_REQUESTS)
    duration_s: PositiveFloat | None = None
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    replications: PositiveInt = 1
    max_memory_gb: PositiveFloat = Field(
        default=8.0,
        description="Refuse a run whose estimated memory exceeds this (raise it to run larger on purpose).",
    )

    DEFAULT_REQUESTS: ClassVar[int] = 200_000

    @model_validator(mode="after")
    def _one_length(self):
        if self.requests is not None and self.duration_s is not None:
            raise ValueError("give run.requests or run.duration_s, not both")
        return self

    @property
    def n_requests(self) -> int | None:
        """Requests to simulate, or None when the run is bounded by duration_s."""
        if self.duration_s is not None:
            return None
        return self.requests or self.DEFAULT_REQUESTS
