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
from typing import Any

from simlat.config import Experiment
from simlat.config.sweep import Sweep
from simlat.metrics import DECOMPOSITION, Interval, Summary
from simlat.sweep.rate import with_rate

MEETS, FAILS, UNSTABLE, ERROR = "meets", "fails", "unstable", "error"

SUMMARY_COLUMNS = (
    "requests",
    "stable",
    "slo_estimate_ms",
    "slo_met_probability",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "mean_ms",
    "throughput_rps",
    "drop_rate",
    "mean_batch_size",
    *DECOMPOSITION,
    "cache_hit_ratio",
)
"""Evaluation columns that are the :class:`~simlat.metrics.Summary` field of the same name (None as NaN)."""

NAN = math.nan


@dataclass
class Evaluation:
    """One (configuration, rate) point as a flat table row (one Parquet row of the result cache).

    The columns in :data:`SUMMARY_COLUMNS` are the Summary's fields of the same name and meaning;
    the others: the rate and the run length, the verdict, the two ends of the SLO percentile's and
    of p99's intervals (``slo_lo_ms`` ...), the SLO percentile's 90% prediction interval
    (``pi_lo_ms``, ``pi_hi_ms``: NaN without a serving profile), the mean utilisation over replicas, the engine's
    capacity estimate, whether the point was simulated (False: skipped above capacity, or
    rejected), the wall time and the whole summary as JSON.
    """

    rate_rps: float
    requests: int
    requests_run: int
    verdict: str
    stable: bool
    slo_estimate_ms: float = NAN
    slo_lo_ms: float = NAN
    slo_hi_ms: float = NAN
    pi_lo_ms: float = NAN
    pi_hi_ms: float = NAN
    slo_met_probability: float = 0.0
    p50_ms: float = NAN
    p99_ms: float = NAN
    p99_lo_ms: float = NAN
    p99_hi_ms: float = NAN
    p999_ms: float = NAN
    mean_ms: float = NAN
    throughput_rps: float = NAN
    drop_rate: float = NAN
    utilization: float = NAN
    mean_batch_size: float = NAN
    queue_wait_ms: float = NAN
    batch_wait_ms: float = NAN
    service_ms: float = NAN
    overhead_ms: float = NAN
    cache_ms: float = NAN
    reply_ms: float = NAN
    cache_hit_ratio: float = NAN
    capacity_rps: float = NAN
    simulated: bool = False
    wall_s: float = 0.0
    summary_json: str = "{}"
    quantiles_json: str = ""
    """The target rate only: the post-warm-up latency distribution as quantiles
    (:func:`simlat.metrics.latency_quantiles`), for the report's CDF; "" elsewhere."""

    def row(self) -> dict[str, Any]:
        """As a flat dict (one Parquet row)."""
        return asdict(self)


def _num(x: float | None) -> float:
    return NAN if x is None else float(x)


def _ci(ci: Interval | None) -> tuple[float, float]:
    return (NAN, NAN) if ci is None else (float(ci[0]), float(ci[1]))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else NAN


def verdict_of(summary: Summary, slo_ms: float, percentile: float, confidence: float) -> str:
    """meets: stable, the CI's upper end within the bound, met with >= ``confidence``, and no more
    requests dropped than the percentile allows; unstable: the run diverged; else fails."""
    if not summary.stable:
        return UNSTABLE
    lo, hi = _ci(summary.slo_ci_ms)
    allowed_drops = (100.0 - percentile) / 100.0
    if hi <= slo_ms and summary.slo_met_probability >= confidence and summary.drop_rate <= allowed_drops:
        return MEETS
    return FAILS


def joint_verdict(summary: Summary, slo_ms: float, percentile: float, confidence: float) -> str:
    """:func:`verdict_of` of the experiment's model and of every colocated model, each against its own
    SLO: meets only when all meet; unstable when any diverged."""
    verdicts = [verdict_of(summary, slo_ms, percentile, confidence)]
    verdicts += [verdict_of(t, t.slo_latency_ms, t.slo_percentile, confidence) for t in summary.tenants.values()]
    for v in (UNSTABLE, FAILS):
        if v in verdicts:
            return v
    return MEETS


def decided(summary: Summary, slo_ms: float, rel_tol: float) -> bool:
    """True when more requests would not change the answer materially."""
    if not summary.stable:
        return True
    lo, hi = _ci(summary.slo_ci_ms)
    est = _num(summary.slo_estimate_ms)
    if math.isnan(lo) or math.isnan(hi):
        return False
    if hi <= slo_ms or lo > slo_ms:
        return True
    return est > 0 and (hi - lo) / 2 / est <= rel_tol


def to_evaluation(
    summary: Summary, rate: float, requests_run: int, verdict: str, capacity_rps: float, wall_s: float
) -> Evaluation:
    """The row of a :class:`~simlat.metrics.Summary`: its :data:`SUMMARY_COLUMNS` by name, plus the rest."""
    slo_lo, slo_hi = _ci(summary.slo_ci_ms)
    p99_lo, p99_hi = _ci(summary.p99_ci_ms)
    pi_lo, pi_hi = _ci(summary.prediction_interval_ms)
    copied: dict[str, Any] = {}
    for name in SUMMARY_COLUMNS:
        value = getattr(summary, name)
        copied[name] = NAN if value is None else value
    return Evaluation(
        rate_rps=float(rate),
        requests_run=int(requests_run),
        verdict=verdict,
        **copied,
        slo_lo_ms=slo_lo,
        slo_hi_ms=slo_hi,
        pi_lo_ms=pi_lo,
        pi_hi_ms=pi_hi,
        p99_lo_ms=p99_lo,
        p99_hi_ms=p99_hi,
        utilization=_mean(summary.utilization),
        capacity_rps=capacity_rps,
        simulated=True,
        wall_s=wall_s,
        summary_json=summary.model_dump_json(),
    )


def skipped(rate: float, capacity_rps: float, verdict: str = UNSTABLE) -> Evaluation:
    """A rate at or above the capacity estimate: unstable by construction, not simulated."""
    return Evaluation(rate, 0, 0, verdict, False, capacity_rps=capacity_rps)


def failed(rate: float, message: str) -> Evaluation:
    """A configuration the simulator rejected."""
    ev = skipped(rate, NAN, ERROR)
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
        capacity = _num(summary.capacity_rps)
        done = decided(summary, slo.latency_ms, sweep.ci_rel_tolerance) and all(
            decided(t, t.slo_latency_ms, sweep.ci_rel_tolerance) for t in summary.tenants.values())
        if done or n >= cap:
            break
        n = min(2 * n, cap)
    verdict = joint_verdict(summary, slo.latency_ms, slo.percentile, sweep.confidence)
    ev = to_evaluation(summary, rate, n, verdict, capacity, time.perf_counter() - t0)
    if keep_quantiles:
        ev.quantiles_json = json.dumps(latency_quantiles(res.records, exp.run.warmup_fraction))
    return ev
