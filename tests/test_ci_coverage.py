"""Coverage of simlat's 95% percentile intervals, against the exact M/M/1 sojourn-time p99.

Across many seeds, the true p99 must lie inside the interval about 95% of the time. Short runs come
from a numpy Lindley recursion (exact M/M/1 FIFO, starting empty, 10% warm-up dropped as in
summarize). With 200 runs the binomial standard error of a 95% coverage is 1.5%, so we accept
[0.90, 0.99]. The naive interval that assumes independent samples is asserted to under-cover at
utilisation 0.9: it documents why the batch-means interval exists.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlat import theory
from simlat.metrics import Sample, naive_quantile_ci

RUNS = 200


def mm1_sojourn(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Sojourn times (service rate 1) of n customers of an M/M/1 queue that starts empty."""
    gaps = rng.exponential(1 / rho, n)
    service = rng.exponential(1.0, n)
    x = np.empty(n)
    x[0] = 0.0
    np.cumsum(service[:-1] - gaps[1:], out=x[1:])
    return x - np.minimum.accumulate(np.minimum(x, 0.0)) + service


def coverage(rho: float, n: int, replications: int = 1, q: float = 0.99, seed: int = 2026) -> tuple[float, float]:
    """(batch-means coverage, naive coverage) of the true q-quantile over RUNS seeds."""
    true = theory.mm1_sojourn_quantile(rho, 1.0, q)
    hit = naive_hit = 0
    per_rep = n // replications
    for ss in np.random.SeedSequence(seed).spawn(RUNS):
        rng = np.random.default_rng(ss)
        series = [mm1_sojourn(per_rep, rho, rng)[per_rep // 10 :] for _ in range(replications)]
        est = Sample(series).quantile_ci(q)
        hit += est.low <= true <= est.high
        lo, hi = naive_quantile_ci(np.concatenate(series), q)
        naive_hit += lo <= true <= hi
    return hit / RUNS, naive_hit / RUNS


def test_p99_coverage_at_utilisation_0_5():
    cov, naive = coverage(0.5, 20_000)
    assert 0.90 <= cov <= 0.99, f"coverage {cov:.3f}"


@pytest.mark.slow
def test_p99_coverage_at_utilisation_0_9_and_naive_undercovers():
    cov, naive = coverage(0.9, 1_000_000)
    assert 0.90 <= cov <= 0.99, f"coverage {cov:.3f}"
    # Independent-sample (binomial) intervals ignore the autocorrelation: they cover ~10%.
    assert naive < 0.5, f"naive coverage {naive:.3f}"


@pytest.mark.slow
def test_p99_coverage_with_replications_as_sections():
    cov, _ = coverage(0.9, 1_000_000, replications=10, seed=7)
    assert 0.90 <= cov <= 0.99, f"coverage {cov:.3f}"


def test_slo_probability_is_calibrated_when_the_bound_is_the_true_p99():
    """With the SLO bound exactly at the true p99, P(met) should be ~uniform across seeds.

    Measured (1000 seeds, utilisation 0.5, 20k requests): mean 0.50, P > 0.975 in 3.2% of runs and
    P < 0.025 in 2.2% (nominal 2.5% each).
    """
    rho, n = 0.5, 20_000
    true = theory.mm1_sojourn_quantile(rho, 1.0, 0.99)
    probs = []
    for ss in np.random.SeedSequence(5).spawn(RUNS):
        sojourn = mm1_sojourn(n, rho, np.random.default_rng(ss))[n // 10 :]
        probs.append(Sample([sojourn]).prob_cdf_at_least(true, 0.99)[0])
    probs = np.array(probs)
    assert 0.4 <= probs.mean() <= 0.6, probs.mean()
    assert np.mean(probs > 0.975) <= 0.07 and np.mean(probs < 0.025) <= 0.07
    assert 0.3 <= np.mean(probs > 0.5) <= 0.7
