"""The experiment file: everything one simulation needs, validated strictly."""

from __future__ import annotations

from pydantic import Field

from simlat.config.base import StrictModel
from simlat.config.cache import Cache
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
