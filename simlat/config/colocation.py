"""Other models on the same GPUs: the feed ranker beside the ads model.

``colocated`` lists the other models (tenants) that run beside the experiment's own, each with its
own workload, service, batching and SLO, and says where they run: ``placement: shared`` puts
``instances_per_gpu`` instances of every tenant on each of the experiment's ``fleet.gpus`` GPUs
(their batches contend, as ``fleet.contention`` says); ``separate`` gives each tenant ``gpus`` GPUs
of its own. Cost counts the GPUs: the experiment's, plus each tenant's own when separate.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from simlat.config.base import StrictModel
from simlat.config.service import ServiceTime
from simlat.config.serving import SLO, Batching, NoBatching, Overheads
from simlat.config.workload import Workload


class Tenant(StrictModel):
    """Another model served beside the experiment's own, with its own traffic and SLO."""

    workload: Workload
    service: ServiceTime
    batching: Batching = NoBatching()
    overheads: Overheads = Overheads()
    slo: SLO
    instances_per_gpu: PositiveInt = Field(default=1, description="Its instances on each GPU it runs on.")
    gpus: PositiveInt | None = Field(
        default=None, description="Its own GPUs with placement: separate (unused when shared)."
    )
    queue: Literal["shared", "per_replica"] = "shared"
    balancer: Literal["round_robin", "random", "join_shortest_queue", "power_of_two"] = "round_robin"
    contention_model: str | None = Field(
        default=None, description="Its model's name in the contention profile; default: service.model."
    )
    contention_variant: str | None = Field(
        default=None, description="Its variant's name in the contention profile; default: service.variant."
    )

    @model_validator(mode="after")
    def _open_loop(self):
        if self.workload.arrivals.kind == "closed_loop":
            raise ValueError("workload.arrivals: closed_loop is not supported for a colocated model (open loop only)")
        return self


class Colocation(StrictModel):
    """Where the other models run: on the experiment's GPUs (shared) or on GPUs of their own (separate)."""

    placement: Literal["shared", "separate"] = "shared"
    tenants: dict[str, Tenant] = Field(min_length=1, description="The other models, by name.")

    @field_validator("tenants")
    @classmethod
    def _names(cls, v: dict[str, Tenant]) -> dict[str, Tenant]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"{name!r}: a tenant name is letters, digits, '_' and '-' (it names its results)")
        return v

    @model_validator(mode="after")
    def _separate_needs_gpus(self):
        if self.placement == "separate":
            missing = [n for n, t in self.tenants.items() if t.gpus is None]
            if missing:
                raise ValueError(f"tenants.{missing[0]}.gpus: required with placement: separate (its own GPUs)")
        return self

    def gpus(self, own: int) -> int:
        """GPUs in all, the experiment's ``own`` included."""
        if self.placement == "shared":
            return own
        return own + sum(t.gpus or 0 for t in self.tenants.values())


_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
