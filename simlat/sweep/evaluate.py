"""One point of a load curve: simulate a configuration at one arrival rate, long enough to decide.

Adaptive run length (as MLPerf LoadGen stops early once a percentile is decided): start with
``min_requests`` and double until the SLO percentile's confidence interval lies entirely below or
above the bound, or its relative half-width is at most ``ci_rel_tolerance``, or ``max_requests``
is reached. An unstable run (the queue grows without bound) stops at once: it is above capacity.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass

from simlat.config import Experiment
from simlat.config.sweep import Sweep
from simlat.sweep.rate import with_rate

MEETS, FAILS, UNSTABLE, ERROR = "meets", "fails", "unstable", "error"

# Latency decomposition: SweepResult column -> Summary field holding its mean.
DECOMPOSITION = {
    "queue_ms": "queue_wait_mean_ms",
    "batch_wait_ms": "batch_wait_mean_ms",
    "service_ms": "service_mean_ms",
    "overhead_ms": "overhead_mean_ms",
    "cache_ms": "cache_mean_ms",
}


@dataclass
class Evaluation:
    """The summary of one (configuration, rate) point, flattened to a table row."""

    rate_rps: float
    requests: int
    requests_run: int
    verdict: str
    stable: bool
    slo_estimate_ms: float
    slo_lo_ms: float
    slo_hi_ms: float
    slo_met_probability: float
    p50_ms: float
    p99_ms: float
    p99_lo_ms: float
    p99_hi_ms: float
    p999_ms: float
    mean_ms: float
    throughput_rps: float
    drop_rate: float
    utilization: float
    mean_batch_size: float
    queue_ms: float
    batch_wait_ms: float
    service_ms: float
    overhead_ms: float
    cache_ms: float
    capacity_rps: float
    simulated: bool
    wall_s: float
    summary_json: str
    quantiles_json: str = ""
    """The target rate only: the post-warm-up latency distribution as quantiles
    (:func:`simlat.metrics.latency_quantiles`), for the report's CDF; "" elsewhere."""

    def row(self) -> dict:
        """As a flat dict (one Parquet row)."""
        return asdict(self)


def _num(x, default=math.nan) -> float:
    try:
        return float(x) if x is not None else default
    except (TypeError, ValueError):
        return default


def _ci(summary, name: str) -> tuple[float, float]:
    ci = getattr(summary, name, None)
    if ci is None:
        return math.nan, math.nan
    return _num(ci[0]), _num(ci[1])


def _mean(values) -> float:
    vals = [float(v) for v in (values or [])]
    return sum(vals) / len(vals) if vals else math.nan


def _decomposition(summary) -> dict[str, float]:
    return {col: _num(getattr(summary, field, None)) for col, field in DECOMPOSITION.items()}


def verdict_of(summary, slo_ms: float, percentile: float, confidence: float) -> str:
    """meets: stable, the CI's upper end within the bound, met with >= ``confidence``, and no more
    requests dropped than the percentile allows; unstable: the run diverged; else fails."""
    if not getattr(summary, "stable", True):
        return UNSTABLE
    lo, hi = _ci(summary, "slo_ci_ms")
    prob = _num(getattr(summary, "slo_met_probability", None), 0.0)
    drops = _num(getattr(summary, "drop_rate", 0.0), 0.0)
    if hi <= slo_ms and prob >= confidence and drops <= (100.0 - percentile) / 100.0:
        return MEETS
    return FAILS


def decided(summary, slo_ms: float, rel_tol: float) -> bool:
    """True when more requests would not change the answer materially."""
    if not getattr(summary, "stable", True):
        return True
    lo, hi = _ci(summary, "slo_ci_ms")
    est = _num(getattr(summary, "slo_estimate_ms", None))
    if math.isnan(lo) or math.isnan(hi):
        return False
    if hi <= slo_ms or lo > slo_ms:
        return True
    return est > 0 and (hi - lo) / 2 / est <= rel_tol


def to_evaluation(
    summary, rate: float, requests_run: int, verdict: str, capacity_rps: float, wall_s: float
) -> Evaluation:
    """Flatten a :class:`simlat.metrics.Summary`."""
    slo_lo, slo_hi = _ci(summary, "slo_ci_ms")
    p99_lo, p99_hi = _ci(summary, "p99_ci_ms")
    dump = summary.model_dump_json() if hasattr(summary, "model_dump_json") else "{}"
    return Evaluation(
        rate_rps=float(rate),
        requests=int(_num(getattr(summary, "requests", 0), 0)),
        requests_run=int(requests_run),
        verdict=verdict,
        stable=bool(getattr(summary, "stable", True)),
        slo_estimate_ms=_num(getattr(summary, "slo_estimate_ms", None)),
        slo_lo_ms=slo_lo,
        slo_hi_ms=slo_hi,
        slo_met_probability=_num(getattr(summary, "slo_met_probability", None)),
        p50_ms=_num(getattr(summary, "p50_ms", None)),
        p99_ms=_num(getattr(summary, "p99_ms", None)),
        p99_lo_ms=p99_lo,
        p99_hi_ms=p99_hi,
        p999_ms=_num(getattr(summary, "p999_ms", None)),
        mean_ms=_num(getattr(summary, "mean_ms", None)),
        throughput_rps=_num(getattr(summary, "throughput_rps", None)),
        drop_rate=_num(getattr(summary, "drop_rate", 0.0), 0.0),
        utilization=_mean(getattr(summary, "utilization", None)),
        mean_batch_size=_num(getattr(summary, "mean_batch_size", None)),
        **_decomposition(summary),
        capacity_rps=capacity_rps,
        simulated=True,
        wall_s=wall_s,
        summary_json=dump,
    )


def skipped(rate: float, capacity_rps: float, verdict: str = UNSTABLE) -> Evaluation:
    """A rate at or above the capacity estimate: unstable by construction, not simulated."""
    nan = math.nan
    return Evaluation(
        rate, 0, 0, verdict, False, nan, nan, nan, 0.0, nan, nan, nan, nan, nan, nan, nan, nan, nan,
        nan, nan, nan, nan, nan, nan, capacity_rps, False, 0.0, "{}",
    )


def failed(rate: float, message: str) -> Evaluation:
    """A configuration the simulator rejected."""
    ev = skipped(rate, math.nan, ERROR)
    ev.summary_json = json.dumps({"error": message})
    return ev


def evaluate(
    experiment: Experiment,
    sweep: Sweep,
    rate: float,
    seed: int,
    max_requests: int | None = None,
    *,
    keep_quantiles: bool = False,
) -> Evaluation:
    """Simulate ``experiment`` at ``rate`` with adaptive run length and flatten the summary.

    ``max_requests`` caps the run length (default ``sweep.max_requests``). ``keep_quantiles``: also
    keep the latency distribution of the final run (the report draws it; nothing re-runs)."""
    from simlat.api import run
    from simlat.metrics import latency_quantiles

    exp = with_rate(experiment, rate)
    slo = experiment.slo
    cap = max(sweep.min_requests, max_requests or sweep.max_requests)
    n = sweep.min_requests
    t0 = time.perf_counter()
    while True:
        res = run(exp, requests=n, seed=seed, keep_records=keep_quantiles)
        summary = res.summary
        capacity = _num(getattr(summary, "capacity_rps", None))
        if decided(summary, slo.latency_ms, sweep.ci_rel_tolerance) or n >= cap:
            break
        n = min(2 * n, cap)
    verdict = verdict_of(summary, slo.latency_ms, slo.percentile, sweep.confidence)
    ev = to_evaluation(summary, rate, n, verdict, capacity, time.perf_counter() - t0)
    if keep_quantiles:
        ev.quantiles_json = json.dumps(latency_quantiles(res.records, exp.run.warmup_fraction))
    return ev
