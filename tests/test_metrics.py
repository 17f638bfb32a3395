"""Unit tests of simlat.metrics and simlat.summary_view on records built from an exact M/M/1 recursion.

The records come from a numpy Lindley recursion (W_{n+1} = max(0, W_n + S_n - A_{n+1})), so every
statistic has a closed form to compare with; the engine itself is tested in test_theory.py.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from simlat import theory
from simlat.config import parse_experiment
from simlat.engine.records import Records, SimResult
from simlat.metrics import Sample, summarize, trend_grows
from simlat.summary_view import print_summary, summary_json


def lindley_mm1(n: int, lam: float, mu: float, rng: np.random.Generator, start_ms: float = 0.0):
    """Arrival times, waits and service times of an M/M/1 FIFO queue that starts empty (rates per ms)."""
    gaps = rng.exponential(1 / lam, n)
    service = rng.exponential(1 / mu, n)
    arrival = start_ms + np.cumsum(gaps)
    x = np.empty(n)
    x[0] = 0.0
    np.cumsum(service[:-1] - gaps[1:], out=x[1:])
    wait = x - np.minimum.accumulate(np.minimum(x, 0.0))
    return arrival, wait, service


def mm1_result(n: int, rho: float, seed: int, *, capacity_rps: float | None = None, dropped=None) -> SimResult:
    """A SimResult for M/M/1 with mean service 1 ms (capacity 1000 req/s) at utilisation rho."""
    rng = np.random.default_rng(seed)
    arrival, wait, service = lindley_mm1(n, rho, 1.0, rng)
    dispatch = arrival + wait
    done = dispatch + service
    drop = np.zeros(n, bool) if dropped is None else np.asarray(dropped, bool)
    latency = np.where(drop, np.nan, done - arrival)
    zeros = np.zeros(n)
    rec = Records(
        arrival_ms=arrival,
        dispatch_ms=np.where(drop, np.nan, dispatch),
        batch_id=np.where(drop, -1, np.arange(n)),
        batch_size=np.where(drop, 0, 1),
        items=np.ones(n, np.int64),
        replica=np.where(drop, -1, 0),
        queue_wait_ms=np.where(drop, np.nan, wait),
        batch_wait_ms=zeros,
        service_ms=np.where(drop, np.nan, service),
        overhead_ms=zeros,
        cache_ms=zeros,
        done_ms=np.where(drop, np.nan, done),
        latency_ms=latency,
        dropped=drop,
        key=np.full(n, -1, np.int64),
        l1_hit=np.zeros(n, bool),
        l2_hit=np.zeros(n, bool),
    )
    busy = np.array([float(service[~drop].sum())])
    return SimResult(
        records=rec,
        busy_ms=busy,
        end_ms=float(np.nanmax(done)),
        capacity_rps=1000.0 if capacity_rps is None else capacity_rps,
        offered_rps=rho * 1000.0,
        n_replicas=1,
    )


def experiment(slo_ms: float = 50.0, percentile: float = 99.0, warmup: float = 0.1, **extra):
    data = {
        "name": "mm1",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 500}},
        "service": {"kind": "exponential", "mean_ms": 1.0},
        "slo": {"percentile": percentile, "latency_ms": slo_ms},
        "run": {"warmup_fraction": warmup},
        **extra,
    }
    return parse_experiment(data)


def test_summary_matches_mm1_theory_and_has_every_field():
    rho = 0.5
    s = summarize([mm1_result(200_000, rho, seed=1)], experiment())
    p99 = theory.mm1_sojourn_quantile(rho, 1.0, 0.99)
    assert s.stable
    assert s.p99_ci_ms[0] <= p99 <= s.p99_ci_ms[1]
    assert abs(s.p99_ms / p99 - 1) < 0.05
    mean = theory.mm1_sojourn_mean(rho, 1.0)
    assert s.mean_ci_ms[0] <= mean <= s.mean_ci_ms[1]
    for name in ("p50", "p90", "p95", "p99", "p999"):
        lo, hi = getattr(s, f"{name}_ci_ms")
        assert lo <= getattr(s, f"{name}_ms") <= hi
    assert s.p50_ms < s.p90_ms < s.p95_ms < s.p99_ms < s.p999_ms
    assert s.requests == 200_000 - 20_000 and s.completed == s.requests
    assert s.drop_rate == 0.0
    assert s.throughput_rps == pytest.approx(500, rel=0.02)
    assert s.utilization[0] == pytest.approx(rho, rel=0.02)
    assert s.batch_size_hist == {1: s.requests} and s.mean_batch_size == 1.0
    assert s.queue_wait_ms == pytest.approx(theory.mm1_wait_mean(rho, 1.0), rel=0.05)
    assert s.service_ms == pytest.approx(1.0, rel=0.02)
    assert s.slo_met_probability > 0.999  # p99 ~ 9.2 ms vs a 50 ms bound
    assert s.slo_estimate_ms == pytest.approx(s.p99_ms)
    assert s.warnings == []


def test_warmup_drops_the_first_fraction_by_arrival_order():
    res = mm1_result(50_000, 0.5, seed=2)
    lat = res.records.latency_ms
    lat[:5_000] = 1e6  # a huge transient, entirely inside the 10% warm-up
    s = summarize([res], experiment(warmup=0.1))
    assert s.requests == 45_000
    assert s.p999_ms < 100
    s0 = summarize([res], experiment(warmup=0.0))
    assert s0.requests == 50_000 and s0.p95_ms == pytest.approx(1e6)


def test_too_few_samples_says_how_many_are_needed():
    s = summarize([mm1_result(20_000, 0.5, seed=3)], experiment(warmup=0.0))
    assert any(
        "p99.9 from 20,000 requests has 20 samples above it; need >= 100,000 requests" in w for w in s.warnings
    ), s.warnings
    assert not any(w.startswith("p99 from") for w in s.warnings)


def test_overload_is_unstable_with_no_finite_percentile():
    s = summarize([mm1_result(200_000, 1.05, seed=4)], experiment())
    assert not s.stable
    for name in ("p50", "p90", "p95", "p99", "p999", "mean"):
        assert getattr(s, f"{name}_ms") is None and getattr(s, f"{name}_ci_ms") is None
    assert s.slo_met_probability == 0.0 and s.slo_estimate_ms is None
    assert any("UNSTABLE" in w for w in s.warnings)
    out = json.loads(summary_json(s))
    assert out["p99_ms"] is None and out["p99_ci_ms"] is None and out["stable"] is False
    assert s.throughput_rps == pytest.approx(1000, rel=0.03)  # the server's capacity, not the offered load


def test_growing_queue_is_caught_even_when_the_capacity_estimate_is_wrong():
    # The engine's capacity estimate claims 10x headroom; the latency trend still shows the queue growing.
    s = summarize([mm1_result(200_000, 1.05, seed=5, capacity_rps=10_000.0)], experiment())
    assert not s.stable and s.p99_ms is None
    assert any("grows through the run" in w for w in s.warnings)


@pytest.mark.parametrize("seed", range(5))
def test_high_but_stable_load_is_stable(seed):
    s = summarize([mm1_result(200_000, 0.95, seed=10 + seed)], experiment(slo_ms=500))
    assert s.stable and math.isfinite(s.p99_ms)


def test_trend_detector_on_m_m_1():
    rng = np.random.default_rng(6)
    grows = []
    for rho in (0.95, 1.05):
        a, w, sv = lindley_mm1(200_000, rho, 1.0, rng)
        grows.append(trend_grows((w + sv)[20_000:]))
    assert grows == [False, True]


def test_slo_probability_and_drops_count_as_misses():
    n = 100_000
    rng = np.random.default_rng(7)
    dropped = rng.random(n) < 0.02  # 2% dropped: a p99 SLO cannot be met whatever the bound
    res = mm1_result(n, 0.5, seed=8, dropped=dropped)
    s = summarize([res], experiment(slo_ms=1000.0))
    assert s.drop_rate == pytest.approx(0.02, abs=0.002)
    assert s.slo_met_probability < 0.01
    assert s.slo_estimate_ms == math.inf
    assert s.p99_ms < 20  # percentiles are of completed requests
    s2 = summarize([res], experiment(slo_ms=1000.0, percentile=95.0))
    assert s2.slo_met_probability > 0.99
    assert s2.goodput_rps == pytest.approx(s2.throughput_rps)
    assert json.loads(summary_json(s))["slo_estimate_ms"] is None  # inf is not JSON


def test_slo_probability_tracks_the_interval():
    res = mm1_result(200_000, 0.5, seed=9)
    p99 = theory.mm1_sojourn_quantile(0.5, 1.0, 0.99)
    s_at = summarize([res], experiment(slo_ms=summarize([res], experiment()).p99_ms))
    assert 0.3 < s_at.slo_met_probability < 0.7
    lo, hi = s_at.slo_ci_ms
    assert summarize([res], experiment(slo_ms=hi * 1.02)).slo_met_probability > 0.95
    assert summarize([res], experiment(slo_ms=lo * 0.98)).slo_met_probability < 0.05
    assert lo < p99 < hi


def test_goodput_counts_requests_within_the_bound():
    res = mm1_result(100_000, 0.5, seed=11)
    s = summarize([res], experiment(slo_ms=2.0))
    frac = np.mean(res.records.latency_ms[10_000:] <= 2.0)
    assert s.goodput_rps == pytest.approx(frac * s.throughput_rps, rel=1e-9)


def test_replications_are_sections_and_pool():
    reps = [mm1_result(50_000, 0.8, seed=20 + i) for i in range(12)]
    s = summarize(reps, experiment(slo_ms=100))
    assert s.replications == 12 and s.requests == 12 * 45_000
    assert s.ci_sections == 12
    p99 = theory.mm1_sojourn_quantile(0.8, 1.0, 0.99)
    assert s.p99_ci_ms[0] <= p99 <= s.p99_ci_ms[1]


def test_same_input_same_summary():
    a = summarize([mm1_result(50_000, 0.7, seed=12)], experiment())
    b = summarize([mm1_result(50_000, 0.7, seed=12)], experiment())
    assert summary_json(a) == summary_json(b)


def test_json_has_the_documented_keys():
    out = json.loads(summary_json(summarize([mm1_result(30_000, 0.5, seed=13)], experiment())))
    for key in (
        "p50_ms p90_ms p95_ms p99_ms p999_ms mean_ms p99_ci_ms throughput_rps goodput_rps drop_rate "
        "utilization slo_met_probability stable requests"
    ).split():
        assert key in out
    assert isinstance(out["p99_ci_ms"], list) and len(out["p99_ci_ms"]) == 2
    assert isinstance(out["utilization"], list)


def test_table_shows_unstable_loudly_and_warnings():
    from rich.console import Console

    buf = io.StringIO()
    s = summarize([mm1_result(100_000, 1.05, seed=14)], experiment())
    print_summary(experiment(), s, console=Console(file=buf, width=140, color_system=None))
    text = buf.getvalue()
    assert "UNSTABLE" in text and "unbounded" in text and "NOT MET" in text
    assert "warning:" in text

    buf = io.StringIO()
    s = summarize([mm1_result(20_000, 0.5, seed=15)], experiment(warmup=0.0))
    print_summary(experiment(), s, console=Console(file=buf, width=140, color_system=None))
    text = buf.getvalue()
    assert "p99.9" in text and "95% interval" in text and "MET" in text and "need >= 100,000" in text


def test_quantile_interval_is_exact_order_statistics_for_constant_data():
    est = Sample([np.full(1000, 3.0)]).quantile_ci(0.99)
    assert est.value == est.low == est.high == 3.0


# --- end to end through the engine -------------------------------------------------------------------


def engine_run(rho: float, n: int = 200_000, seed: int = 3, **extra):
    from simlat.api import run

    exp = parse_experiment(
        {
            "name": "mm1-engine",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": rho * 1000.0}},
            "service": {"kind": "exponential", "mean_ms": 1.0},
            "slo": {"percentile": 99.0, "latency_ms": 200.0},
            "run": {"requests": n, "seed": seed},
            **extra,
        }
    )
    return run(exp).summary


def test_engine_overload_is_unstable_and_high_load_is_stable():
    over = engine_run(1.05)
    assert not over.stable and over.p99_ms is None and over.p99_ci_ms is None
    out = json.loads(summary_json(over))
    assert out["stable"] is False and out["p99_ms"] is None and out["p999_ms"] is None
    assert out["slo_met_probability"] == 0.0
    high = engine_run(0.95)
    assert high.stable and math.isfinite(high.p99_ms)
    lo, hi = high.p99_ci_ms
    assert lo <= theory.mm1_sojourn_quantile(0.95, 1.0, 0.99) <= hi


def test_engine_overload_with_a_bounded_queue_is_stable_with_drops():
    s = engine_run(1.05, admission={"queue_capacity": 50})
    assert s.stable and math.isfinite(s.p99_ms)
    assert s.drop_rate == pytest.approx(0.05 / 1.05, abs=0.01)
    assert s.throughput_rps == pytest.approx(1000, rel=0.03)
    assert s.goodput_rps <= s.throughput_rps
    assert any("admission control" in w for w in s.warnings)


def test_lag1_correlated_sections_are_merged():
    # A slow cycle over the whole run makes neighbouring section means alike (lag-1 ~ 0.7).
    rng = np.random.default_rng(16)
    n = 100_000
    x = np.sin(2 * np.pi * np.arange(n) / n) + 0.1 * rng.standard_normal(n)
    merged = Sample([x]).mean_ci()
    assert merged.sections == 5
    independent = Sample([rng.standard_normal(n)]).mean_ci()
    assert independent.sections == 10


def test_all_dropped_gives_no_latency_but_a_verdict():
    n = 5_000
    res = mm1_result(n, 0.5, seed=17, dropped=np.ones(n, bool))
    s = summarize([res], experiment())
    assert s.completed == 0 and s.drop_rate == 1.0 and s.p99_ms is None and s.mean_ms is None
    assert s.slo_met_probability == 0.0 and s.throughput_rps == 0.0
    assert any("no request completed" in w for w in s.warnings)
    json.loads(summary_json(s))


def test_trend_only_warns_for_time_varying_workloads():
    diurnal = {"arrivals": {"kind": "diurnal", "mean_rate_rps": 500, "amplitude": 0.5, "period_s": 600}}
    exp = parse_experiment(
        {
            "name": "diurnal",
            "workload": diurnal,
            "service": {"kind": "exponential", "mean_ms": 1.0},
            "slo": {"percentile": 99.0, "latency_ms": 50.0},
        }
    )
    # Latency that grows through the run, with the capacity signal saying there is headroom.
    s = summarize([mm1_result(200_000, 1.05, seed=5, capacity_rps=10_000.0)], exp)
    assert s.stable and any("time-varying workload (diurnal)" in w for w in s.warnings)
