"""The engine against queueing theory, and the closed forms themselves.

Engine tests build an experiment (Poisson arrivals, one or c replicas with a shared FIFO queue, one
request per batch) and run it through ``simlat.api.run``. Each quantity is printed with its 95%
interval (computed by simlat.metrics from the run) and must satisfy both:
- the exact value lies inside the interval. The assertion uses the 99% interval: these are 15
  checks, and with 95% intervals a perfect engine would fail one of them about half the time (a
  Bonferroni-style allowance, not a tolerance picked to pass); and
- at utilisation <= 0.8, the estimate is within 2% of the exact value (runs long enough that the
  interval's half-width is at most about 2%, so this is a 2-3 sigma check, not a lucky seed).
At utilisation 0.9 only the interval is checked (a 2% p99 there needs ~20M requests).

Run ``pytest tests/test_theory.py -s`` to print the measured errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from simlat import theory as th
from simlat.api import run
from simlat.config import parse_experiment
from simlat.metrics import Estimate, Sample

WARMUP = 0.1

# --- closed forms ------------------------------------------------------------------------------------


def erlang_c_direct(c: int, a: float) -> float:
    """Erlang C from its defining sum (fine for small c)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("c,a", [(1, 0.5), (2, 1.0), (4, 2.8), (5, 4.0), (10, 9.5), (30, 25.0)])
def test_erlang_c_matches_its_defining_sum(c, a):
    assert th.erlang_c(c, a) == pytest.approx(erlang_c_direct(c, a), rel=1e-12)


def test_erlang_c_known_values():
    assert th.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert th.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert th.erlang_c(5, 4.0) == pytest.approx(0.5541, abs=1e-4)  # textbook table value


def test_mm1_closed_forms():
    assert th.mm1_sojourn_mean(0.9, 1.0) == pytest.approx(10.0)
    assert th.mm1_sojourn_quantile(0.9, 1.0, 0.99) == pytest.approx(10 * math.log(100))
    assert th.mm1_wait_mean(0.5, 1.0) == pytest.approx(1.0)
    assert th.mm1_wait_quantile(0.5, 1.0, 0.4) == 0.0  # P(W = 0) = 0.5
    assert th.mm1_wait_quantile(0.5, 1.0, 0.99) == pytest.approx(2 * math.log(50))
    # M/M/c with c = 1 is M/M/1.
    for t in (0.1, 1.0, 7.0):
        assert th.mmc_sojourn_sf(0.6, 1.0, 1, t) == pytest.approx(math.exp(-0.4 * t))
    assert th.mmc_sojourn_quantile(0.6, 1.0, 1, 0.99) == pytest.approx(th.mm1_sojourn_quantile(0.6, 1.0, 0.99))


def test_mmc_wait_quantile_inverts_the_tail():
    lam, mu, c = 3.2, 1.0, 4
    t = th.mmc_wait_quantile(lam, mu, c, 0.99)
    assert th.mmc_wait_probability(lam, mu, c) * math.exp(-(c * mu - lam) * t) == pytest.approx(0.01)


def test_md1_distribution_is_exact():
    lam, d = 0.5, 1.0
    assert th.md1_wait_cdf(lam, d, 0.0) == pytest.approx(0.5)  # P(W = 0) = 1 - rho
    assert th.md1_wait_cdf(lam, d, 0.7) == pytest.approx(0.5 * math.exp(0.35))  # (1-rho) e^{lam t}, t < D
    for rho in (0.5, 0.9):
        # E[W] = integral of P(W > t) matches Pollaczek-Khinchine.
        ts = np.linspace(0, th.md1_wait_quantile(rho, d, 1 - 1e-6), 1501)
        sf = np.array([1 - th.md1_wait_cdf(rho, d, t) for t in ts])
        assert np.trapezoid(sf, ts) == pytest.approx(th.md1_wait_mean(rho, d), rel=2e-3)
    q = th.md1_wait_quantile(0.9, 1.0, 0.99)
    assert th.md1_wait_cdf(0.9, 1.0, q) == pytest.approx(0.99, abs=1e-8)


def test_md1_p99_against_an_exact_recursion():
    """The M/D/1 p99 wait against a numpy Lindley recursion of 4M customers (interval from metrics)."""
    rng = np.random.default_rng(5)
    rho, n = 0.8, 4_000_000
    gaps = rng.exponential(1 / rho, n)
    x = np.empty(n)
    x[0] = 0
    np.cumsum(1.0 - gaps[1:], out=x[1:])
    wait = x - np.minimum.accumulate(np.minimum(x, 0))
    est = Sample([wait[n // 10 :]]).quantile_ci(0.99)
    exact = th.md1_wait_quantile(rho, 1.0, 0.99)
    assert est.low <= exact <= est.high
    assert est.value == pytest.approx(exact, rel=0.02)


def test_pollaczek_khinchine_reduces_to_mm1_and_md1():
    assert th.mg1_wait_mean(0.6, 1.0, 2.0) == pytest.approx(th.mm1_wait_mean(0.6, 1.0))
    assert th.mg1_wait_mean(0.6, 1.0, 1.0) == pytest.approx(th.md1_wait_mean(0.6, 1.0))
    m1, m2 = th.lognormal_moments(2.0, 0.5)
    assert m1 == pytest.approx(2.0 * math.exp(0.125)) and m2 == pytest.approx(4.0 * math.exp(0.5))
    assert th.gamma_moments(1.0, 2.0) == (1.0, 5.0)


def test_unstable_queues_are_refused():
    with pytest.raises(ValueError, match="unstable"):
        th.mm1_sojourn_mean(1.0, 1.0)
    with pytest.raises(ValueError, match="unstable"):
        th.mmc_wait_mean(4.0, 1.0, 4)


# --- the engine --------------------------------------------------------------------------------------


def simulate(service: dict, rate_per_ms: float, n: int, replicas: int = 1, seed: int = 1, warmup: float = WARMUP):
    """Run the experiment; return (summary, post-warm-up records per replication)."""
    exp = parse_experiment(
        {
            "name": "theory",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": rate_per_ms * 1000.0}},
            "service": service,
            "fleet": {"replicas": replicas, "queue": "shared"},
            "slo": {"percentile": 99.0, "latency_ms": 1000.0},
            "run": {"requests": n, "seed": seed, "warmup_fraction": warmup},
        }
    )
    result = run(exp, keep_records=True)
    measured = []
    for res in result.records:
        rec = res.records
        order = np.argsort(rec.arrival_ms, kind="stable")[int(len(rec.arrival_ms) * warmup) :]
        measured.append({k: np.asarray(v)[order] for k, v in rec.columns().items()})
    return result.summary, measured


def check(name: str, interval: Callable[[float], Estimate], exact: float, rho: float) -> None:
    """Print the estimate with its 95% interval; assert the exact value inside the 99% one (see top)."""
    est, wide = interval(0.95), interval(0.99)
    rel = est.value / exact - 1
    inside = est.low <= exact <= est.high
    print(
        f"\n{name} (rho {rho}): sim {est.value:.4f} 95% [{est.low:.4f}, {est.high:.4f}] exact {exact:.4f} "
        f"rel error {rel:+.2%} inside 95% CI {inside}"
    )
    assert wide.low <= exact <= wide.high, f"{name}: exact {exact} outside the 99% interval [{wide.low}, {wide.high}]"
    if rho <= 0.8:
        assert abs(rel) <= 0.02, f"{name}: {rel:+.2%} from exact"


def column(measured, name: str) -> Sample:
    return Sample([m[name] for m in measured])


EXP1 = {"kind": "exponential", "mean_ms": 1.0}


def test_shared_queue_is_exact_fcfs_multiserver():
    """On its own arrival and service draws, the engine's waits equal the exact FCFS c-server recursion
    (each request, in arrival order, starts on the earliest-free server), to the last bit."""
    import heapq

    c = 4
    _, measured = simulate(EXP1, 0.8 * c, 200_000, replicas=c, seed=9, warmup=0.0)
    m = measured[0]
    free = [0.0] * c
    ref = np.empty(len(m["arrival_ms"]))
    for i, (a, sv) in enumerate(zip(m["arrival_ms"], m["service_ms"], strict=True)):
        start = max(heapq.heappop(free), a)
        ref[i] = start - a
        heapq.heappush(free, start + sv)
    np.testing.assert_array_equal(m["queue_wait_ms"], ref)


@pytest.mark.slow
@pytest.mark.parametrize("rho,n", [(0.5, 2_000_000), (0.9, 2_000_000)])
def test_mm1_sojourn_mean_and_p99(rho, n):
    summary, measured = simulate(EXP1, rho, n)
    lat = column(measured, "latency_ms")
    check("M/M/1 sojourn mean", lat.mean_ci, th.mm1_sojourn_mean(rho, 1.0), rho)
    check("M/M/1 sojourn p99", lambda lv: lat.quantile_ci(0.99, lv), th.mm1_sojourn_quantile(rho, 1.0, 0.99), rho)
    # The summary the CLI prints carries the same numbers.
    p99 = th.mm1_sojourn_quantile(rho, 1.0, 0.99)
    assert summary.stable and summary.p99_ci_ms[0] <= p99 <= summary.p99_ci_ms[1]
    assert summary.utilization[0] == pytest.approx(rho, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("rho,n", [(0.7, 4_000_000), (0.9, 2_000_000)])
def test_mmc_erlang_c(rho, n):
    c = 4
    lam = rho * c
    _, measured = simulate(EXP1, lam, n, replicas=c)
    wait = column(measured, "queue_wait_ms")
    waited = Sample([(m["queue_wait_ms"] > 0).astype(float) for m in measured])
    check("M/M/4 P(wait > 0)", waited.mean_ci, th.mmc_wait_probability(lam, 1.0, c), rho)
    check("M/M/4 mean wait", wait.mean_ci, th.mmc_wait_mean(lam, 1.0, c), rho)
    check("M/M/4 p99 wait", lambda lv: wait.quantile_ci(0.99, lv), th.mmc_wait_quantile(lam, 1.0, c, 0.99), rho)


@pytest.mark.slow
@pytest.mark.parametrize("rho,n", [(0.7, 2_000_000), (0.9, 2_000_000)])
def test_md1_mean_and_p99_wait(rho, n):
    _, measured = simulate({"kind": "deterministic", "ms": 1.0}, rho, n)
    wait = column(measured, "queue_wait_ms")
    check("M/D/1 mean wait", wait.mean_ci, th.md1_wait_mean(rho, 1.0), rho)
    check("M/D/1 p99 wait", lambda lv: wait.quantile_ci(0.99, lv), th.md1_wait_quantile(rho, 1.0, 0.99), rho)


@pytest.mark.slow
def test_mg1_lognormal_mean_wait():
    rho, sigma = 0.7, 0.5
    m1, m2 = th.lognormal_moments(1.0, sigma)
    lam = rho / m1
    _, measured = simulate({"kind": "lognormal", "median_ms": 1.0, "sigma": sigma}, lam, 2_000_000)
    check("M/G/1 (lognormal) mean wait", column(measured, "queue_wait_ms").mean_ci, th.mg1_wait_mean(lam, m1, m2), rho)


@pytest.mark.slow
def test_mg1_gamma_mean_wait():
    """Gamma service with CV 2 (affine service, multiplicative gamma noise): a high-variance M/G/1."""
    rho, cv = 0.6, 2.0
    m1, m2 = th.gamma_moments(1.0, cv)
    service = {"kind": "affine", "base_ms": 0.0, "per_item_ms": 1.0, "noise": {"kind": "gamma", "mean": 1.0, "cv": cv}}
    _, measured = simulate(service, rho / m1, 4_000_000)
    check("M/G/1 (gamma cv 2) mean wait", column(measured, "queue_wait_ms").mean_ci, th.mg1_wait_mean(rho, m1, m2), rho)
