"""``validate``: measure a real server for an experiment and compare with the simulator's prediction.

The experiment supplies the batching policy (``none`` or ``dynamic``) and, through a
``kind: profile`` service, the model; Poisson arrivals are replayed at fractions of the open-loop
capacity found on this machine. The model is served fp32 eager on ``device``. The prediction uses
the batch times the server itself measured at start-up (same process, same device) and the
frontend fitted from the capacity probes, not the experiment's own ``service`` and ``frontend``:
the point is to test the simulator's model of the stack, calibrated the way a user would.
"""

from __future__ import annotations

from dataclasses import dataclass

from simlat.config import Experiment
from simlat.config.serving import DynamicBatching, NoBatching
from simlat.errors import SimlatError
from simlat.validate.compare import LevelComparison, compare_campaign
from simlat.validate.measure import INPUT_SPEC, MAX_LAG_P99_MS, ServerSpec, campaign


@dataclass
class ValidationResult:
    """The comparison rows, the calibration facts and the raw campaign (for saving)."""

    rows: list[LevelComparison]
    facts: dict
    campaign: dict


def server_spec(experiment: Experiment, model: str | None, device: str) -> ServerSpec:
    """What the server must serve and how it batches, from the experiment (errors name the field)."""
    svc = experiment.service
    if svc.kind == "profile" and svc.variant != "fp32":
        raise SimlatError(f"service.variant: {svc.variant!r}: the validation server serves fp32 eager models only (yet)")
    name = model or (svc.model if svc.kind == "profile" else None)
    if name is None:
        raise SimlatError(f"service.kind: {svc.kind!r} names no model: give --model ({', '.join(INPUT_SPEC)})")
    if name not in INPUT_SPEC:
        raise SimlatError(f"--model: {name!r} cannot be served by the validation server (valid: {', '.join(INPUT_SPEC)})")
    b = experiment.batching
    if isinstance(b, NoBatching):
        return ServerSpec(model=name, device=device)
    if isinstance(b, DynamicBatching):
        if b.buckets:
            raise SimlatError("batching.buckets: padded batches are not served by the validation server (yet)")
        return ServerSpec(model=name, device=device, max_batch=b.max_batch_size, max_wait_ms=b.max_wait_ms,
                          dispatch=b.dispatch)
    raise SimlatError(f"batching.kind: {b.kind!r} is not served by the validation server (valid: none, dynamic)")


def validate(experiment: Experiment, *, loads: list[float], model: str | None = None, device: str = "cpu",
             level_s: float = 10.0, warmup_s: float = 2.0, probe_s: float = 2.5, start_rps: float = 100.0,
             seeds: int = 3, max_probes: int = 11, max_lag_ms: float = MAX_LAG_P99_MS,
             log=print) -> ValidationResult:
    """Start the server, find capacity, measure every load level, calibrate, simulate, compare."""
    if experiment.workload.arrivals.kind != "poisson":
        raise SimlatError(f"workload.arrivals.kind: {experiment.workload.arrivals.kind!r}: validate replays "
                          "Poisson arrivals only (yet)")
    if any(not 0 < x < 1.5 for x in loads):
        raise SimlatError(f"--loads: {loads} must be fractions of capacity in (0, 1.5)")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SimlatError(f"--device: {device!r} asked for, but no CUDA device is available here")
    spec = server_spec(experiment, model, device)
    result = campaign(spec, loads, level_s=level_s, warmup_s=warmup_s, start_rps=start_rps, probe_s=probe_s,
                      seed=experiment.run.seed, max_probes=max_probes, max_lag_ms=max_lag_ms, log=log)
    if result["capacity_rps"] <= 0:
        raise SimlatError(f"the server kept up with no probed rate (lowest {start_rps} req/s): lower --start-rps")
    try:
        rows, facts = compare_campaign(result, seeds=seeds)
    except ValueError as err:
        raise SimlatError(f"calibration from the capacity probes failed: {err}") from None
    return ValidationResult(rows, facts, result)
