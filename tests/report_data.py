"""Test input for the report tests: a hand-built SweepResult with realistic numbers, and a profile file.

The numbers come from a small closed-form model of a batching fleet with a prediction cache (not
from the simulator): a batch of b items takes 3 + 0.3 b ms, a cache of C entries answers
h(C) of the requests, queueing grows as rho / (1 - rho). They only need to look like a sweep.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from simlat.sweep.result import SweepResult

SLO_MS = 30.0
TARGET_RPS = 5000.0
PRICE_PER_REPLICA = 2.48
HIT = {1_000: 0.22, 10_000: 0.41, 100_000: 0.63}
PARAMS = ["batching.max_batch_size", "batching.max_wait_ms", "fleet.replicas", "cache.l1.capacity"]


def _service_ms(b: float) -> float:
    return 3.0 + 0.3 * b


def _model(rate: float, bs: int, wait: float, reps: int, cap: int) -> dict:
    """Closed-form stand-in for one (configuration, rate) point."""
    h = HIT[cap]
    lam = rate * (1 - h) / reps / 1000.0  # requests per ms per replica
    b = 1.0
    for _ in range(50):  # batch fills for the wait plus one service time, capped
        b = min(bs, max(1.0, lam * (wait + _service_ms(b))))
    s = _service_ms(b)
    rho = lam * s / b
    if rho >= 0.995:
        return {"stable": False, "rho": rho, "b": b}
    fill = wait if b < bs else b / max(lam, 1e-9) / 2
    queue = s * rho / (1 - rho)
    mean = (1 - h) * (s + 0.5 * fill + queue) + 0.05 + 0.4
    p99 = (1 - h) * (s * 1.3 + fill + 4.6 * queue) + h * 0.2 + 0.9
    return {
        "stable": True, "rho": rho, "b": b, "mean": mean, "p50": 0.6 * mean, "p99": p99, "p999": p99 * 1.35,
        "queue": (1 - h) * queue, "batch_wait": (1 - h) * 0.5 * fill, "service": (1 - h) * s, "cache": 0.05, "overhead": 0.4,
    }


def _max_rate(bs, wait, reps, cap, slo_ms) -> float:
    lo, hi = 0.0, 200_000.0
    for _ in range(40):
        mid = (lo + hi) / 2
        m = _model(mid, bs, wait, reps, cap)
        if m["stable"] and m["p99"] * 1.03 <= slo_ms:
            lo = mid
        else:
            hi = mid
    return lo if lo > 1 else math.nan


def make_result(slo_ms: float = SLO_MS, profiles: list[Path] | None = None, grid: dict | None = None) -> SweepResult:
    """A 4 x 4 x 3 x 3 sweep (144 configurations) with load curves and the chosen point's details."""
    grid = grid or {
        "batching.max_batch_size": [8, 16, 32, 64],
        "batching.max_wait_ms": [0.5, 1.0, 2.0, 4.0],
        "fleet.replicas": [2, 4, 6],
        "cache.l1.capacity": [1_000, 10_000, 100_000],
    }
    return _build(slo_ms, profiles or [], grid)


def _build(slo_ms: float, profiles: list[Path], grid: dict) -> SweepResult:
    rng = np.random.default_rng(7)
    rows, curves = [], []
    params = list(grid)
    for i, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(params, combo, strict=False))
        bs = values.get("batching.max_batch_size", 32)
        wait = values.get("batching.max_wait_ms", 2.0)
        reps = values.get("fleet.replicas", 4)
        cap = values.get("cache.l1.capacity", 10_000)
        cid = f"c{i:04d}"
        m = _model(TARGET_RPS, bs, wait, reps, cap)
        max_rate = _max_rate(bs, wait, reps, cap, slo_ms)
        half = 0.03 * m.get("p99", 0)
        est = m.get("p99", math.inf) * (1 + rng.normal(0, 0.005)) if m["stable"] else math.inf
        lo, hi = (est - half, est + half) if m["stable"] else (math.inf, math.inf)
        prob = 0.0 if not m["stable"] else float(1 / (1 + math.exp((est - slo_ms) / max(half / 2, 1e-6))))
        label = " ".join(f"{p.rsplit('.', 1)[-1]}={v}" for p, v in values.items())
        rows.append({
            "config_id": cid, **values, "label": label, "cost_per_hour": reps * PRICE_PER_REPLICA, "replicas": reps,
            "max_rate_rps": max_rate, "stable": m["stable"],
            "p50_ms": m.get("p50", math.inf), "p99_ms": est, "p99_lo_ms": lo, "p99_hi_ms": hi, "p999_ms": m.get("p999", math.inf),
            "slo_estimate_ms": est, "slo_lo_ms": lo, "slo_hi_ms": hi, "slo_met_probability": prob,
            "meets_slo": bool(m["stable"] and hi <= slo_ms and prob >= 0.95), "utilization": min(m["rho"], 1.0),
            "mean_batch_size": m["b"], "queue_wait_ms": m.get("queue", math.nan), "batch_wait_ms": m.get("batch_wait", math.nan),
            "service_ms": m.get("service", math.nan), "overhead_ms": m.get("overhead", math.nan), "cache_ms": m.get("cache", math.nan),
            "headroom": max_rate / TARGET_RPS - 1 if math.isfinite(max_rate) else math.nan,
            "hit_ratio": HIT[cap] + rng.normal(0, 0.004), "requests_simulated": int(20_000 * (1 + 30 * math.exp(-abs(est - slo_ms) / 5)) if m["stable"] else 8_000),
        })
        for frac in np.linspace(0.2, 1.3, 10):
            rate = frac * (max_rate if math.isfinite(max_rate) else TARGET_RPS)
            mm = _model(rate, bs, wait, reps, cap)
            e = mm.get("p99", math.inf)
            curves.append({
                "config_id": cid, "rate_rps": rate, "slo_estimate_ms": e, "slo_lo_ms": e * 0.97, "slo_hi_ms": e * 1.03,
                "p99_ms": e, "stable": mm["stable"],
            })
    points = pd.DataFrame(rows)
    pts = points[points["stable"]]
    cost, lat, thr = pts["cost_per_hour"].to_numpy(), pts["slo_estimate_ms"].to_numpy(), pts["max_rate_rps"].fillna(0).to_numpy()
    pareto = [not np.any((cost <= c) & (lat <= la) & (thr >= t) & ((cost < c) | (lat < la) | (thr > t))) for c, la, t in zip(cost, lat, thr, strict=False)]
    points["pareto"] = False
    points.loc[pts.index, "pareto"] = pareto
    meets = points[points["meets_slo"]]
    chosen = None
    rec = ""
    lat_ms, hist, decomp = None, {}, {}
    if not meets.empty:
        row = meets.sort_values(["cost_per_hour", "slo_estimate_ms"]).iloc[0]
        chosen = row["config_id"]
        rec = (
            f"{row['replicas']} replicas, {row['label']}: p99 {row['slo_estimate_ms']:.1f} ms "
            f"[{row['slo_lo_ms']:.1f}, {row['slo_hi_ms']:.1f}] at {TARGET_RPS:,.0f} req/s, SLO met with probability "
            f"{row['slo_met_probability']:.2f}, headroom {row['headroom']:.0%}"
        )
        n = 200_000
        hit = rng.random(n) < row["hit_ratio"]
        lat_ms = np.where(hit, rng.gamma(4, 0.05, n) + 0.4, rng.gamma(3.0, row["p50_ms"] / 2.2, n) + 0.5)
        b = max(1, int(row.get("batching.max_batch_size", 32)))
        sizes = np.clip(rng.poisson(row["mean_batch_size"], 20_000), 1, b)
        hist = {int(k): int(v) for k, v in zip(*np.unique(sizes, return_counts=True), strict=False)}
        decomp = {"queue_wait_ms": row["queue_wait_ms"], "batch_wait_ms": row["batch_wait_ms"], "service_ms": row["service_ms"],
                  "cache_ms": row["cache_ms"], "overhead_ms": row["overhead_ms"]}
    return SweepResult(
        experiment_name="feed_test",
        slo_percentile=99.0,
        slo_latency_ms=slo_ms,
        target_rate_rps=TARGET_RPS,
        objective="min_cost",
        params=params,
        points=points,
        load_curves=pd.DataFrame(curves),
        chosen=chosen,
        recommendation=rec,
        chosen_latencies_ms=lat_ms,
        chosen_batch_hist=hist,
        chosen_decomposition_ms=decomp,
        profiles=list(profiles),
        elapsed_s=412.7,
        attribution=[
            "Rate search after MLPerf LoadGen's server scenario (Apache-2.0).",
            "Feed ranking target from a published production SLO.",
        ],
    )


def make_unstable_result() -> SweepResult:
    """A sweep where every configuration is overloaded at the target rate (SLO 3 ms, nothing chosen)."""
    res = make_result(slo_ms=3.0)
    p = res.points
    for c in ["p50_ms", "p99_ms", "p99_lo_ms", "p99_hi_ms", "p999_ms", "slo_estimate_ms", "slo_lo_ms", "slo_hi_ms"]:
        p[c] = np.inf
    p["stable"], p["meets_slo"], p["pareto"] = False, False, False
    p["max_rate_rps"], p["headroom"] = np.nan, np.nan
    res.load_curves["stable"] = False
    return res


def write_profile(path: Path) -> Path:
    """A valid calibration profile (two models, two variants each, one more skipped) written with simlat.profiles."""
    from simlat.profiles import ServiceProfile, default_quantile_levels, save_profile

    levels = default_quantile_levels()
    z = np.array([_norm_ppf(min(max(q, 1e-4), 1 - 1e-4)) for q in levels])

    def point(b: int, base: float, per: float, sigma: float) -> dict:
        med = base + per * b
        qs = list(np.maximum.accumulate(med * np.exp(sigma * z)))
        return {
            "batch_size": b,
            "dist": {"n": 400, "mean_ms": float(med * math.exp(sigma**2 / 2)), "quantiles_ms": [float(x) for x in qs],
                     "median_ci_ms": [med * 0.98, med * 1.02], "median_ci_half_width_ms": med * 0.02},
        }

    sizes = [1, 2, 4, 8, 16, 32, 64, 128]
    data = {
        "schema_version": 1,
        "provenance": {"device": "cpu", "device_name": "Test CPU", "date": "2026-11-24", "simlat_version": "0.1.0",
                       "command": "simlat calibrate --device cpu"},
        "quantile_levels": levels,
        "models": [{
            "name": "mlp_ranker",
            "variants": [
                {"name": "fp32_eager", "status": "ok", "steady": [point(b, 0.35, 0.031, 0.08) for b in sizes]},
                {"name": "bf16_compiled", "status": "ok", "steady": [point(b, 0.22, 0.012, 0.06) for b in sizes]},
                {"name": "int8_onnx", "status": "skipped", "reason": "onnxruntime quantization not available"},
            ],
        }, {
            "name": "dlrm_small",
            "variants": [
                {"name": "fp32_eager", "status": "ok", "steady": [point(b, 0.9, 0.05, 0.1) for b in sizes]},
                {"name": "bf16_compiled", "status": "ok", "steady": [point(b, 0.6, 0.02, 0.07) for b in sizes]},
            ],
        }],
    }
    return save_profile(ServiceProfile.model_validate(data), path)


def _norm_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))
