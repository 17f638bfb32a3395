"""The day loop: windows in order, the policy deciding at each window's start, each window simulated
alone with the engine (:func:`simlat.api.run`) at its mean offered rate with the replicas ready then.

Per window ``i`` on ``[t_i, t_i + W)``:

1. the policy sees window ``i-1``'s :class:`~simlat.autoscale.policy.Observation` (the scrape:
   utilisation; concurrency and queue length by Little's law, the window's completed rate times its
   mean latency, resp. its mean queue and batch wait) and asks for a replica count; new
   replicas become ready ``cold_start`` after ``t_i`` and serve from the first window starting at or
   after that time (a replica ready mid-window does not help that window: conservative); removed
   replicas are the starting ones first (latest first), then ready ones, which drain: they serve no
   more but are billed until the window ends;
2. the window is simulated as Poisson arrivals at its mean rate with ``ready`` replicas, for
   ``min(rate * W, requests_per_window)`` requests (at least 100), seed ``seed_i`` (recorded);
3. billed replicas (ready + starting + draining) x W make the replica-hours.

The table carries :data:`simlat.autoscale.metrics.WINDOW_COLUMNS` (``requests`` is the window's
offered count ``rate x W``, ``drops`` that times the simulated drop rate, ``p99_lo_ms``/``p99_hi_ms``
the run's confidence interval of the p99), and the day's totals come from it alone
(:func:`simlat.autoscale.metrics.day_metrics`).

A window meets the SLO when its run is stable and its SLO percentile estimate is within the SLO; an
unstable window's requests all count as missing it (a queue that grows for a whole window is not
measured by a bounded run).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from simlat.autoscale.coldstart import cold_start
from simlat.autoscale.metrics import day_metrics, largest_step
from simlat.autoscale.policy import POLICIES, Observation
from simlat.autoscale.rates import window_rates
from simlat.config import Experiment
from simlat.config.autoscaling import NoAutoscaling
from simlat.config.serving import MIN_REQUESTS
from simlat.config.workload import Poisson
from simlat.errors import SimlatError

if TYPE_CHECKING:
    import pandas as pd

IDLE_RPS = 1e-9
"""A window offering less than this (requests/s) is idle: not simulated, and meets the SLO."""


@dataclass
class DaySummary:
    """The day in numbers (see the module doc for how each is computed)."""

    experiment: str
    policy: str
    windows: int
    window_s: float
    day_s: float
    offered_requests: float
    slo_minutes_share: float
    slo_windows_share: float
    slo_requests_share: float
    unstable_windows: int
    dropped_requests: float
    replica_hours: float
    price_per_replica_hour: float | None
    cost_usd: float | None
    ready_min: int
    ready_max: int
    ready_mean: float
    breaches: int
    recovery_s: float | None
    recovery_from_s: float | None
    recovered: bool
    largest_step_at_s: float | None
    largest_step_rps: float
    step_recovery_s: float | None
    cold_start: str
    cold_start_mean_s: float | None
    elapsed_s: float
    method: str = "quasi-static"
    served_requests: int | None = None
    """Requests simulated through the day (the exact engine; None: quasi-static)."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DayResult:
    """The day summary and one row per window (a pandas DataFrame)."""

    summary: DaySummary
    windows: pd.DataFrame


def _price(experiment: Experiment) -> float | None:
    """USD per replica-hour: the autoscaling block's prices, else the sweep's, looked up as sweeps do."""
    from simlat.sweep.cost import device_names

    for block in (experiment.fleet.autoscaling, experiment.sweep):
        if block is None:
            continue
        for name in device_names(experiment):
            if name in block.prices:
                return float(block.prices[name])
        if block.cost_per_replica_hour is not None:
            return float(block.cost_per_replica_hour)
    return None


def _window_experiment(experiment: Experiment, rate: float, ready: int, requests: int, seed: int) -> Experiment:
    """The plain experiment one window runs: Poisson at ``rate``, ``ready`` replicas, no autoscaling."""
    fleet = experiment.fleet.model_copy(update={"replicas": ready, "autoscaling": None})
    workload = experiment.workload.model_copy(update={"arrivals": Poisson(rate_rps=rate)})
    run = experiment.run.model_copy(update={"requests": requests, "duration_s": None, "seed": seed, "replications": 1})
    return experiment.model_copy(update={"fleet": fleet, "workload": workload, "run": run})


def _simulate_window(experiment: Experiment, rate_rps: float) -> dict:
    """One window's engine run (Poisson at ``rate_rps``), reduced to the row's numbers."""
    from simlat.api import run
    from simlat.metrics import warmup_mask

    res = run(experiment, keep_records=True)
    s = res.summary
    rec = res.records[0]
    measured = ~warmup_mask(rec, experiment.run.warmup_fraction)
    lat = np.asarray(rec.records.latency_ms, float)[measured]
    done = ~np.asarray(rec.records.dropped, bool)[measured] & np.isfinite(lat)
    within = float(np.count_nonzero(done & (lat <= experiment.slo.latency_ms))) / max(len(lat), 1)
    meets = bool(s.stable and s.slo_estimate_ms is not None and s.slo_estimate_ms <= experiment.slo.latency_ms)

    def ci(name):
        v = getattr(s, name)
        return (None, None) if v is None else (float(v[0]), float(v[1]))

    (p50_lo, p50_hi), (p99_lo, p99_hi) = ci("p50_ci_ms"), ci("p99_ci_ms")
    rate = rate_rps * (1.0 - float(s.drop_rate))
    waits = (s.queue_wait_ms or 0.0) + (s.batch_wait_ms or 0.0)
    # the mean latency of the completed requests, also where the summary withholds it (unstable: it
    # grows with the run, and so does the concurrency a scrape of an overloaded fleet sees)
    mean_ms = float(np.mean(lat[done])) if done.any() else 0.0
    return dict(
        utilization=float(np.mean(s.utilization)) if s.utilization else 0.0,
        concurrency=rate * mean_ms / 1000.0, queue_length=rate * waits / 1000.0,
        p50_ms=s.p50_ms, p50_lo_ms=p50_lo, p50_hi_ms=p50_hi,
        p99_ms=s.p99_ms, p99_lo_ms=p99_lo, p99_hi_ms=p99_hi,
        slo_estimate_ms=s.slo_estimate_ms, drop_rate=float(s.drop_rate), stable=bool(s.stable),
        meets_slo=meets, within_slo_share=within if s.stable else 0.0,
    )


IDLE_ROW: dict[str, Any] = dict(utilization=0.0, concurrency=0.0, queue_length=0.0, p50_ms=None, p50_lo_ms=None, p50_hi_ms=None, p99_ms=None, p99_lo_ms=None,
                p99_hi_ms=None, slo_estimate_ms=None, drop_rate=0.0, stable=True, meets_slo=True, within_slo_share=1.0)


def check_one_model_per_gpu(experiment: Experiment) -> None:
    """Refuse what a day cannot count: instances sharing a GPU (the replicas billed would not be the
    GPUs) and colocated models (the day's verdict and cost are one model's)."""
    ipg = experiment.fleet.instances_per_gpu
    if ipg > 1:
        raise SimlatError(f"fleet.instances_per_gpu: {ipg} is not supported by simlat day, which scales and bills "
                          "replicas one per GPU; use simlat simulate or sweep for shared GPUs")
    if experiment.colocated is not None:
        raise SimlatError("colocated: other models on the GPUs are not supported by simlat day (its verdict and cost "
                          "are one model's); use simlat simulate or sweep")


def simulate_day(experiment: Experiment, *, window_s: float | None = None, progress=None) -> DayResult:
    """Simulate the day of ``experiment`` under its ``fleet.autoscaling`` (none: ``fleet.replicas``).

    ``window_s`` overrides ``fleet.autoscaling.window_s``; ``progress(i, n)`` is called after each window.
    """

    t0 = time.perf_counter()
    cfg = experiment.fleet.autoscaling or NoAutoscaling()
    W = float(window_s if window_s is not None else cfg.window_s)
    if not W > 0 or W > cfg.day_s:
        raise SimlatError(f"--window-s: {W:g} is invalid: it must be > 0 and <= the day ({cfg.day_s:g} s)")
    if experiment.workload.arrivals.kind == "closed_loop":
        raise SimlatError("workload.arrivals.kind: 'closed_loop' has no offered rate over the day; simlat day needs an open workload")
    check_one_model_per_gpu(experiment)
    n = math.ceil(cfg.day_s / W - 1e-9)
    edges = np.minimum(np.arange(n + 1) * W, cfg.day_s)
    rates = window_rates(experiment.workload.arrivals, edges)
    policy = POLICIES[type(cfg)](cfg, experiment)
    cold, cold_source = cold_start(experiment) if cfg.kind != "none" else (None, "none (fixed replicas)")
    cold_seq, win_seq = np.random.SeedSequence(experiment.run.seed).spawn(2)
    cold_rng = np.random.default_rng(cold_seq)
    seeds = (win_seq.generate_state(n, dtype=np.uint64) >> np.uint64(1)).tolist()

    spec = policy.initial()
    ready_at: list[float] = [-math.inf] * spec  # warm at the start of the day
    rows = []
    prev: Observation | None = None
    from simlat.dists import sample

    for i in range(n):
        t, length = float(edges[i]), float(edges[i + 1] - edges[i])
        draining = 0
        if i > 0:
            ready_now = sum(r <= t + 1e-9 for r in ready_at)
            new = policy.decide(t, spec, ready_now, prev)
            if new > spec:
                assert cold is not None  # only policies with a cold start grow the fleet
                ready_at += [t + float(x) for x in sample(cold, new - spec, cold_rng)]
            elif new < spec:
                ready_at.sort()
                removed, ready_at = ready_at[new:], ready_at[:new]
                draining = sum(r <= t + 1e-9 for r in removed)
            spec = new
        ready = sum(r <= t + 1e-9 for r in ready_at)
        rate = float(rates[i])
        offered = rate * length
        sim_n = 0
        row: dict[str, Any]
        if rate < IDLE_RPS:
            row = dict(IDLE_ROW)
        elif ready == 0:
            row = {**IDLE_ROW, "stable": False, "meets_slo": False, "within_slo_share": 0.0, "drop_rate": 1.0}
        else:
            sim_n = int(min(cfg.requests_per_window, max(MIN_REQUESTS, round(offered))))
            row = _simulate_window(_window_experiment(experiment, rate, ready, sim_n, seeds[i]), rate)
        prev = Observation(utilization=row["utilization"], concurrency=row["concurrency"], queue_length=row["queue_length"])
        rows.append(dict(window=i, t_s=t, start_s=t, end_s=t + length, offered_rps=rate, offered_requests=offered,
                         requests=offered, drops=offered * row["drop_rate"], simulated_requests=sim_n, ready=ready,
                         starting=spec - ready, draining=draining, billed=spec + draining, **row, seed=seeds[i]))
        if progress is not None:
            progress(i + 1, n)

    import pandas as pd

    df = pd.DataFrame(rows)
    warnings = []
    if (df["simulated_requests"] < df["offered_requests"].round()).any():
        warnings.append(f"windows offering more than {cfg.requests_per_window} requests are simulated for that many "
                        "(their percentiles' intervals say what that is worth)")
    return day_result(experiment, df, window_s=W, cold_start=cold_source, cold_start_mean_s=None if cold is None else _mean(cold),
                      elapsed_s=time.perf_counter() - t0, warnings=warnings)


def day_result(experiment: Experiment, windows: pd.DataFrame, *, window_s: float, cold_start: str,
               cold_start_mean_s: float | None, elapsed_s: float, method: str = "quasi-static",
               warnings: list[str] | None = None, day_s: float | None = None) -> DayResult:
    """The day from its per-window table (at least :data:`simlat.autoscale.metrics.WINDOW_COLUMNS`, one
    row per window in time order), whichever engine wrote it: SLO shares, replica-hours, cost, recovery."""
    cfg = experiment.fleet.autoscaling or NoAutoscaling()
    day_s = cfg.day_s if day_s is None else day_s
    price = _price(experiment)
    m = day_metrics(windows, day_s=day_s, price=price, recovery_windows=cfg.recovery_windows)
    step_at, step_rps, step_recovery = largest_step(windows)
    notes = []
    if price is None:
        notes.append("no price: set fleet.autoscaling.prices or cost_per_replica_hour for the day's cost")
    unstable = int((~windows["stable"].astype(bool)).sum()) if "stable" in windows else 0
    summary = DaySummary(
        experiment=experiment.name, policy=cfg.kind, windows=len(windows), window_s=window_s, day_s=day_s,
        offered_requests=m.requests, slo_minutes_share=m.minutes_share, slo_windows_share=m.windows_share,
        slo_requests_share=m.requests_share, unstable_windows=unstable, dropped_requests=m.drops,
        replica_hours=m.replica_hours, price_per_replica_hour=price, cost_usd=m.cost_usd, ready_min=m.ready_min,
        ready_max=m.ready_max, ready_mean=m.ready_mean, breaches=m.breaches, recovery_s=m.recovery_s,
        recovery_from_s=m.recovery_from_s, recovered=m.recovered, largest_step_at_s=step_at, largest_step_rps=step_rps,
        step_recovery_s=step_recovery, cold_start=cold_start, cold_start_mean_s=cold_start_mean_s, elapsed_s=elapsed_s,
        method=method, warnings=notes + list(warnings or []),
    )
    return DayResult(summary=summary, windows=windows)


def _day_result(experiment: Experiment, cfg, W: float, rows: list[dict], cold, cold_source: str, t0: float, *,
                method: str = "quasi-static",
                extra_warnings: list[str] | None = None) -> DayResult:
    """:func:`day_result` from an engine's window rows (``cfg.day_s``: the day simulated, maybe cut short)."""
    import pandas as pd

    return day_result(experiment, pd.DataFrame(rows), window_s=W, cold_start=cold_source,
                      cold_start_mean_s=None if cold is None else _mean(cold), elapsed_s=time.perf_counter() - t0,
                      method=method, warnings=extra_warnings, day_s=cfg.day_s)


def _mean(dist) -> float:
    from simlat.dists import mean

    return float(mean(dist))
