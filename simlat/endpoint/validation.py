"""Measured vs predicted, level by level, with prediction intervals, from a saved campaign.

For a campaign with validation levels (:mod:`simlat.endpoint.campaign`): fit the serving stack on
the calibration probes only (:mod:`simlat.endpoint.fit`), then predict every level forward, as a
planner would: Poisson arrivals at the level's offered rate, a long simulated run (the point
prediction), and the 90% prediction interval of :mod:`simlat.uncertainty`. The measured p99 of
each repeat is compared with the point (error) and the interval (covered or not). Also predicted:
the open-loop capacity (the rate at which the simulated queue stops keeping up), against the
measured one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from simlat.endpoint.fit import Predictor, StackParams, fit, kept_latencies, usable
from simlat.uncertainty import for_run, profile_process_sd

LEVEL = 0.9
SIM_REQUESTS = 60_000


@dataclass
class LevelResult:
    """One measured level against its prediction (ms)."""

    load: float
    repeat: int
    rate_rps: float
    valid: bool
    measured_p50: float
    measured_p99: float
    point_p50: float
    point_p99: float
    pi_low: float
    pi_high: float
    parts: dict
    profile_only_p99: float = float("nan")

    @property
    def error(self) -> float:
        if not np.isfinite(self.measured_p99):
            return -1.0  # the real server was overloaded: the prediction is below it by everything
        return (self.point_p99 - self.measured_p99) / self.measured_p99

    @property
    def covered(self) -> bool:
        return self.pi_low <= self.measured_p99 <= self.pi_high

    @property
    def half_width(self) -> float:
        return (self.pi_high - self.pi_low) / 2 / self.point_p99

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d.update(error=self.error, covered=self.covered, half_width=self.half_width)
        return d


def _sim_p(pred: Predictor, params: StackParams, rate: float, seed: int, scale: float = 1.0,
           n: int = SIM_REQUESTS) -> tuple[float, float, float, float]:
    """(p50, p99, p99 CI low, high) of a Poisson run at ``rate``."""
    from simlat.metrics import Sample

    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(1e3 / rate, n))
    lat = pred.latencies(params, arr, seed=seed, scale=scale)
    lat = lat[n // 10:]
    est = Sample([lat]).quantile_ci(0.99)
    return float(np.percentile(lat, 50)), float(est.value), float(est.low), float(est.high)


def predict_level(pred: Predictor, params: StackParams, facts: dict, rate: float, cal_sd: float, seed: int = 7) -> dict:
    """Point prediction and 90% prediction interval of p99 at ``rate``: the same interval as a planned
    run gets (:func:`simlat.uncertainty.for_run`), from the fit's uncertainty."""
    from simlat.profiles.serving import Uncertainty

    p50, p99, lo, hi = _sim_p(pred, params, rate, seed)
    unc = Uncertainty(run_to_run=facts["run_to_run"], fit_residual_sd_log_p99=facts["fit_residual_sd_log_p99"],
                      fit_residual_by_load=facts["fit_residual_by_load"], capacity_resolution=facts["capacity_resolution"],
                      model_share=facts["model_share"])
    pi = for_run(p99, (lo, hi), load=rate / facts["capacity_rps"], utilization=pred.last_utilization,
                 serving=SimpleNamespace(uncertainty=unc), process_sd=cal_sd, level=LEVEL)
    return {"p50": p50, "p99": p99, "pi": pi}


def _at(rows: list[dict] | None, load: float, key: str, default: float) -> float:
    """A per-load quantity interpolated at ``load`` (held flat beyond the measured loads)."""
    if not rows:
        return float(default)
    return float(np.interp(load, [r["load"] for r in rows], [r[key] for r in rows]))


def validate_campaign(data: dict, service, *, max_batch: int, max_wait_ms: float, dispatch: str = "on_free",
                      log=None, profile_only: bool = True) -> tuple[list[LevelResult], dict]:
    """Fit on the probes, predict every level; returns the rows and the fit's facts."""
    f = fit(data, service, max_batch=max_batch, max_wait_ms=max_wait_ms, dispatch=dispatch, log=log)
    params, facts = f["params"], f["facts"]
    pred = Predictor(service, max_batch, max_wait_ms, dispatch)
    cal_sd = profile_process_sd(service)
    facts["profile_process_sd_log"] = cal_sd
    facts["predicted_capacity_rps"] = predicted_capacity(pred, params, facts["capacity_rps"], facts["no_queue_latency_ms"])
    rows = []
    cache: dict[float, dict] = {}
    for lv in data["levels"]:
        load = round(float(lv["load"]), 3)
        if load not in cache:
            cache[load] = predict_level(pred, params, facts, load * facts["capacity_rps"], cal_sd)
        pr = cache[load]
        _, meas = kept_latencies(lv)
        # a level the real server could not keep up with is a measurement (of overload), not invalid:
        # its p99 is unbounded, so a stable prediction misses it
        overloaded = not lv["stable"]
        ok = (usable(lv) or overloaded) and len(meas) > 100
        row = LevelResult(load, int(lv.get("repeat", 0)), float(lv["offered_rps"]), ok,
                          float(np.percentile(meas, 50)) if len(meas) else float("nan"),
                          float("inf") if overloaded else float(np.percentile(meas, 99)) if len(meas) else float("nan"),
                          pr["p50"], pr["p99"], pr["pi"].low, pr["pi"].high, pr["pi"].parts)
        if profile_only:
            row.profile_only_p99 = cache[load].setdefault("profile_only", _profile_only(service, max_batch, max_wait_ms,
                                                                                      dispatch, load * facts["capacity_rps"]))
        rows.append(row)
    return rows, {**facts, "params": params.to_json()}


def _profile_only(service, max_batch, max_wait_ms, dispatch, rate) -> float:
    """p99 of the model profile alone (no stack), as a planner without a serving profile would predict."""
    from simlat.engine import simulate
    from simlat.workload import Requests

    pred = Predictor(service, max_batch, max_wait_ms, dispatch)
    exp = pred.experiment(StackParams((0.0,), 0.0, 0.0, 0.0, 0.0), rate).model_copy(update={"frontend": None})
    rng = np.random.default_rng(3)
    arr = np.cumsum(rng.exponential(1e3 / rate, SIM_REQUESTS))
    arr -= arr[0]
    res = simulate(exp, Requests(arrival_ms=arr, items=np.ones(len(arr), dtype=np.int64)), seed=np.random.SeedSequence(3))
    lat = np.asarray(res.records.latency_ms)[SIM_REQUESTS // 10:]
    return float(np.percentile(lat, 99))


def predicted_capacity(pred: Predictor, params: StackParams, measured: float, no_queue_ms: float) -> float:
    """The highest rate (bisection between 0.5x and 1.5x the measured capacity) at which the simulated
    server passes the probes' own test: completions >= 97% of arrivals, latency not growing, and the
    median under ``BACKLOG_FACTOR`` x the no-queue median (:mod:`simlat.endpoint.campaign`)."""
    lo, hi = 0.5 * measured, 1.5 * measured
    for _ in range(8):
        mid = (lo + hi) / 2
        if _keeps_up(pred, params, mid, no_queue_ms):
            lo = mid
        else:
            hi = mid
    return lo


def _keeps_up(pred: Predictor, params: StackParams, rate: float, no_queue_ms: float, seconds: float = 3.0) -> bool:
    from simlat.endpoint.campaign import BACKLOG_FACTOR

    rng = np.random.default_rng(11)
    n = int(rate * seconds)
    arr = np.sort(rng.uniform(0, seconds * 1e3, n))
    lat = pred.latencies(params, arr, seed=11)
    done = np.sum(arr + lat <= seconds * 1e3 + 500)
    thirds = np.array_split(lat[n // 4:], 3)
    return bool(done >= 0.97 * n and np.median(thirds[-1]) <= 2 * np.median(thirds[0])
                and np.median(lat[n // 4:]) <= BACKLOG_FACTOR * no_queue_ms)


def summary(rows: list[LevelResult]) -> dict:
    """Coverage, errors and widths over the valid levels."""
    v = [r for r in rows if r.valid]
    if not v:
        return {"levels": 0}
    err = np.array([abs(r.error) for r in v])
    low = [r.half_width for r in v if r.load <= 0.7 + 1e-9]
    return {"levels": len(v), "coverage": float(np.mean([r.covered for r in v])),
            "median_abs_err_p99": float(np.median(err)), "worst_err_p99": float(max(v, key=lambda r: abs(r.error)).error),
            "within_10pct": int(np.sum(err <= 0.10)), "median_half_width_le_0_7": float(np.median(low)) if low else float("nan")}


def table(rows: list[LevelResult], label: str) -> list[str]:
    """Markdown rows: config, load, repeat, measured p50/p99, predicted p99 [90% PI], error, covered."""
    out = []
    for r in rows:
        if not r.valid:
            out.append(f"| {label} | {r.load:.2f} | {r.repeat + 1} | {r.rate_rps:.0f} | invalid | | | | | |")
            continue
        po = f"{(r.profile_only_p99 - r.measured_p99) / r.measured_p99:+.0%}" if np.isfinite(r.profile_only_p99) and np.isfinite(r.measured_p99) else "-"
        m99 = f"{r.measured_p99:.2f}" if np.isfinite(r.measured_p99) else "overloaded"
        out.append(f"| {label} | {r.load:.2f} | {r.repeat + 1} | {r.rate_rps:.0f} | {r.measured_p50:.2f} / {m99} "
                   f"| {r.point_p50:.2f} / {r.point_p99:.2f} | [{r.pi_low:.2f}, {r.pi_high:.2f}] | {r.error:+.1%} "
                   f"| {'yes' if r.covered else 'NO'} | {po} |")
    return out


TABLE_HEAD = ("| config | load | repeat | req/s | measured p50 / p99 | predicted p50 / p99 | 90% prediction interval "
              "| p99 error | covered | profile-only p99 error |\n|---|---|---|---|---|---|---|---|---|---|")
