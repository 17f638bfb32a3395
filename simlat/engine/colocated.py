"""Several models on one set of GPUs: each with its own queues, all batches on one device set.

:func:`simulate_colocated` runs the experiment's own model and every ``colocated`` tenant
(:mod:`simlat.config.colocation`) in one SimPy environment: one
:class:`~simlat.engine.shared_gpu.SharedGpuEngine` per model (its batcher, queues and service
draws), over one :class:`~simlat.engine.shared_gpu.DeviceSet`, so a batch of the feed ranker slows
down while an ads batch runs on its GPU and the other way round (the slowdowns of
:mod:`simlat.engine.contention`). With ``placement: separate`` each tenant has GPUs of its own and
the models do not interact.

The experiment's own requests are the ones passed in; a tenant's are generated here, at its own
rate, over the same span of time. Random streams: the experiment's model draws from the engine
seed's streams exactly as it would alone; tenant ``j`` (in file order) draws its arrivals and its
engine streams from children ``1000 + j`` and ``2000 + j`` of the same seed.
"""

from __future__ import annotations

import numpy as np
import simpy

from simlat.config.experiment import tenant_experiment
from simlat.engine.contention import Key, SlowdownModel
from simlat.engine.progress import RunProgress
from simlat.engine.records import SimResult
from simlat.engine.service import build_service
from simlat.engine.shared_gpu import DeviceSet, SharedGpuEngine, _Horizon
from simlat.engine.simulation import cache_stage, result_of
from simlat.engine.spec import EngineSpec
from simlat.engine.streams import Streams
from simlat.errors import SimlatError
from simlat.profiles.contention import read
from simlat.workload import Requests, generate


def _child(seed: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size)


def model_key(experiment) -> Key:
    """The name the contention profile knows an experiment's model by: (model, variant)."""
    c, svc = experiment.fleet.contention, experiment.service
    model = (c.model if c is not None else None) or getattr(svc, "model", None)
    variant = (c.variant if c is not None else None) or getattr(svc, "variant", None)
    if model is None or variant is None:
        raise SimlatError(
            f"{experiment.name}: fleet.contention.model (contention_model for a tenant): needed with service kind "
            f"{svc.kind!r} (only kind: profile names its model and variant)"
        )
    return (model, variant)


def layout(experiment) -> tuple[list, list[list[int]], int]:
    """The models (the experiment's, then each tenant's), the GPU of each of their replicas, and the
    number of GPUs."""
    col = experiment.colocated
    exps = [experiment.model_copy(update={"colocated": None})]
    exps += [tenant_experiment(experiment, name) for name in col.tenants]
    device_of, offset = [], 0
    for e in exps:
        ipg = e.fleet.instances_per_gpu
        device_of.append([offset + r // ipg for r in range(e.fleet.replicas)])
        if col.placement == "separate":
            offset += e.fleet.n_gpus
    return exps, device_of, offset if col.placement == "separate" else exps[0].fleet.n_gpus


def simulate_colocated(experiment, requests: Requests, *, seed: np.random.SeedSequence,
                       progress: bool = False) -> SimResult:
    """The experiment's result, with each tenant's under ``tenants`` (see the module docstring)."""
    col = experiment.colocated
    exps, device_of, n_gpus = layout(experiment)
    keys = [model_key(e) for e in exps]
    c = experiment.fleet.contention
    model = SlowdownModel(read(c.path), c.mode)
    on_device: list[list[Key]] = [[] for _ in range(n_gpus)]
    for key, devs in zip(keys, device_of, strict=True):
        for d in devs:
            on_device[d].append(key)
    model.check(on_device)

    span_s = float(np.asarray(requests.arrival_ms)[-1]) / 1000.0 if len(requests) else 0.0
    all_requests = [requests]
    seeds = [seed]
    for j, e in enumerate(exps[1:]):
        if span_s <= 0:
            raise SimlatError("colocated: the experiment's run spans no time, so its tenants get no requests")
        all_requests.append(generate(e.workload, n=None, duration_s=span_s, seed=_child(seed, 1000 + j)))
        seeds.append(_child(seed, 2000 + j))

    env, horizon = simpy.Environment(), _Horizon()
    devices = DeviceSet(n_gpus, model)
    parts = []
    for e, reqs, s, devs, key in zip(exps, all_requests, seeds, device_of, keys, strict=True):
        spec = EngineSpec.from_experiment(e)
        service = build_service(e.service)
        streams = Streams.spawn(s)
        cache, queued = cache_stage(spec, reqs, streams)
        engine = SharedGpuEngine(spec, queued.requests, service, streams, env=env, horizon=horizon,
                                 devices=devices, device_of=devs, key=key)
        parts.append((spec, reqs, service, streams, cache, queued, engine))
    bar = RunProgress(len(requests), progress)
    parts[0][-1].progress = bar  # type: ignore[assignment]  # EventEngine declares it None until set
    try:
        for *_, engine in parts:
            env.process(engine.process_open())
        env.run()
    finally:
        bar.close()
    results = [result_of(spec, reqs, service, streams, cache, queued, engine.collect())
               for spec, reqs, service, streams, cache, queued, engine in parts]
    out = results[0]
    out.tenants = dict(zip(col.tenants, results[1:], strict=True))
    return out
