"""The discrete-event engine: cache -> balancer -> batcher -> servers, per-request records out.

Requests are rows of numpy arrays, never SimPy processes; SimPy processes model the queues
(batcher and servers), and events happen per batch. The map of its modules and of its three paths
(static, routed, event: :data:`simlat.engine.paths.PATHS`) is in :mod:`simlat.engine.simulation`.
"""

from __future__ import annotations

import numpy as np

from simlat.engine import simulation
from simlat.engine.frontend import simulate_with_frontend
from simlat.engine.records import Records, SimResult, write_records

__all__ = ["Records", "SimResult", "simulate", "write_records"]


def simulate(
    experiment,
    requests,
    *,
    seed: np.random.SeedSequence,
    progress: bool = False,
    service=None,
    path: str | None = None,
) -> SimResult:
    """Simulate one replication: the serving stack (``experiment.frontend``) when the experiment has
    one (:mod:`simlat.engine.frontend`), else the batcher and servers alone
    (:func:`simlat.engine.simulation.simulate`, whose arguments these are; ``path`` names one of
    :data:`simlat.engine.paths.PATHS`)."""
    if experiment.frontend is not None and experiment.frontend.kind == "profile":
        from simlat.profiles.serving import read  # a measured serving profile: its fitted stack

        experiment = experiment.model_copy(update={"frontend": read(experiment.frontend.path).params.frontend(
            replicas=experiment.fleet.replicas)})
    if experiment.colocated is not None:
        from simlat.engine.colocated import simulate_colocated

        if service is not None or path not in (None, "shared_gpu"):
            raise ValueError("service and path overrides are not supported with colocated models")
        return simulate_colocated(experiment, requests, seed=seed, progress=progress)
    if experiment.frontend is not None:
        if service is not None:
            raise ValueError("service override is not supported together with a frontend")
        if path is not None:
            raise ValueError("path is not supported together with a frontend")
        return simulate_with_frontend(experiment, requests, seed=seed, progress=progress)
    return simulation.simulate(experiment, requests, seed=seed, progress=progress, service=service, path=path)
