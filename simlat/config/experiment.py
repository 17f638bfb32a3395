"""The experiment file: everything one simulation needs, validated strictly."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from simlat.config.base import StrictModel
from simlat.config.cache import Cache
from simlat.config.colocation import Colocation
from simlat.config.frontend import Frontend
from simlat.config.service import ServiceTime
from simlat.config.serving import SLO, Admission, Batching, Fleet, NoBatching, Overheads, Run
from simlat.config.sweep import Sweep
from simlat.config.workload import Workload


class Experiment(StrictModel):
    """One serving configuration under one workload, with its SLO and run length."""

    name: str = Field(min_length=1)
    description: str = ""
    device: str | None = Field(default=None, description="Device the experiment plans for (checked against profiles).")
    workload: Workload
    fleet: Fleet = Fleet()
    batching: Batching = NoBatching()
    admission: Admission = Admission()
    service: ServiceTime
    overheads: Overheads = Overheads()
    slo: SLO
    run: Run = Run()
    cache: Cache | None = None
    frontend: Frontend | None = None
    sweep: Sweep | None = None
    colocated: Colocation | None = Field(
        default=None, description="Other models on the same GPUs (or on GPUs of their own), each with its own SLO."
    )

    @field_validator("name")
    @classmethod
    def _file_name(cls, v: str) -> str:
        """The name names the report (``<reports>/<name>.html``) and the cache folder: one plain file
        name, never a path out of them."""
        if not _NAME.match(v) or v in (".", ".."):
            raise ValueError(
                "must be a plain file name of letters, digits, '_', '-', '.' and spaces (at most 100 characters, "
                "no '/' or '\\', not starting with '.' or a space): it names the report file"
            )
        return v


    @model_validator(mode="after")
    def _colocated(self):
        if self.colocated is None:
            return self
        if self.fleet.contention is None:
            raise ValueError("fleet.contention: required with colocated models (how much their batches slow each other)")
        if self.workload.arrivals.kind == "closed_loop":
            raise ValueError("workload.arrivals: closed_loop is not supported with colocated models (open loop only)")
        if self.frontend is not None:
            raise ValueError("frontend: not supported with colocated models yet (the serving stack is per model)")
        if self.fleet.autoscaling is not None:
            raise ValueError("fleet.autoscaling: not supported with colocated models")
        return self


_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_. -]{0,99}$")


def tenant_experiment(experiment: Experiment, name: str) -> Experiment:
    """The tenant ``name`` of ``experiment.colocated`` as an experiment of its own: its workload,
    service, batching and SLO, on the GPUs its placement gives it, with the experiment's run and
    contention profile (under the tenant's model name)."""
    col = experiment.colocated
    assert col is not None, "only a colocated experiment has tenants"
    t = col.tenants[name]
    c = experiment.fleet.contention
    assert c is not None, "a colocated experiment has a contention profile"
    contention = c.model_copy(update={"model": t.contention_model, "variant": t.contention_variant})
    gpus = experiment.fleet.n_gpus if col.placement == "shared" else t.gpus
    fleet = Fleet(gpus=gpus, instances_per_gpu=t.instances_per_gpu, queue=t.queue, balancer=t.balancer,
                  contention=contention)
    return Experiment(name=f"{experiment.name}.{name}", device=experiment.device, workload=t.workload, fleet=fleet,
                      batching=t.batching, service=t.service, overheads=t.overheads, slo=t.slo, run=experiment.run)
