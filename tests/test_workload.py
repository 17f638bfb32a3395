"""Arrival generators, fan-out and keys: statistical tests with tolerances from standard errors.

Every tolerance is Z standard errors of the estimator (Z = 4: a correct generator fails with
probability about 6e-5 per check), with the standard error derived from the process's theory.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlat.config.workload import Workload
from simlat.errors import SimlatError
from simlat.workload import Requests, generate, offered_rate_rps

Z = 4.0


def wl(arrivals: dict, **extra) -> Workload:
    return Workload.model_validate({"arrivals": arrivals, **extra})


def gen(workload: Workload, n=None, duration_s=None, seed=1) -> Requests:
    return generate(workload, n=n, duration_s=duration_s, seed=np.random.SeedSequence(seed))


def cv_se(cv: float, skew: float, kurtosis: float, n: int) -> float:
    """Delta-method standard error of the sample CV of n iid gaps (kurtosis not in excess)."""
    return float(np.sqrt(cv * cv / n * (cv * cv - cv * skew + (kurtosis - 1) / 4)))


def check_contract(r: Requests) -> None:
    assert r.arrival_ms.dtype == np.float64 and r.items.dtype == np.int64
    assert len(r.items) == len(r.arrival_ms)
    assert np.all(r.arrival_ms >= 0)
    assert np.all(np.diff(r.arrival_ms) >= 0)
    assert np.all(r.items >= 1)


# ---------------------------------------------------------------- renewal processes


@pytest.mark.parametrize("cv", [0.25, 1.0, 3.0])
def test_gamma_rate_and_cv(cv):
    n, rate = 400_000, 250.0
    r = gen(wl({"kind": "gamma", "rate_rps": rate, "cv": cv}), n=n)
    check_contract(r)
    gaps = np.diff(np.concatenate([[0.0], r.arrival_ms]))
    mean_gap = 1000.0 / rate
    assert abs(gaps.mean() - mean_gap) < Z * mean_gap * cv / np.sqrt(n)
    # gamma with shape 1/cv^2: skewness 2 cv, kurtosis 3 + 6 cv^2
    se = cv_se(cv, 2 * cv, 3 + 6 * cv * cv, n)
    assert abs(gaps.std() / gaps.mean() - cv) < Z * se


def test_poisson_rate_and_cv():
    n, rate = 400_000, 1234.0
    r = gen(wl({"kind": "poisson", "rate_rps": rate}), n=n)
    check_contract(r)
    gaps = np.diff(np.concatenate([[0.0], r.arrival_ms]))
    mean_gap = 1000.0 / rate
    assert abs(gaps.mean() - mean_gap) < Z * mean_gap / np.sqrt(n)
    assert abs(gaps.std() / gaps.mean() - 1.0) < Z * cv_se(1.0, 2.0, 9.0, n)  # exponential
    # counts in unit windows are Poisson: index of dispersion 1 (SE sqrt(2 / windows))
    counts = np.bincount((r.arrival_ms // 100.0).astype(np.int64))[:-1]
    assert abs(counts.var() / counts.mean() - 1.0) < Z * np.sqrt(2.0 / len(counts))


def test_poisson_duration_bounded_count():
    rate, dur = 800.0, 500.0
    r = gen(wl({"kind": "poisson", "rate_rps": rate}), duration_s=dur)
    check_contract(r)
    assert r.arrival_ms[-1] < dur * 1000
    expected = rate * dur
    assert abs(len(r) - expected) < Z * np.sqrt(expected)


def test_deterministic_is_exact():
    r = gen(wl({"kind": "deterministic", "rate_rps": 400.0}), n=1000)
    gaps = np.diff(r.arrival_ms)
    assert r.arrival_ms[0] == 0.0
    np.testing.assert_allclose(gaps, 2.5, rtol=1e-12)
    assert gaps.std() < 1e-9  # CV 0
    r = gen(wl({"kind": "deterministic", "rate_rps": 400.0}), duration_s=2.0)
    assert len(r) == 800


def test_offered_rate():
    assert offered_rate_rps(wl({"kind": "poisson", "rate_rps": 12.5})) == 12.5
    assert offered_rate_rps(wl({"kind": "closed_loop", "clients": 4})) is None


def test_closed_loop_is_the_engines_job():
    with pytest.raises(SimlatError, match="closed_loop"):
        gen(wl({"kind": "closed_loop", "clients": 4}), n=10)


def test_exactly_one_length():
    w = wl({"kind": "poisson", "rate_rps": 1.0})
    with pytest.raises(ValueError):
        generate(w, n=10, duration_s=1.0, seed=np.random.SeedSequence(0))
    with pytest.raises(ValueError):
        generate(w, n=None, duration_s=None, seed=np.random.SeedSequence(0))


def test_same_seed_same_bytes_and_independent_streams():
    w = wl({"kind": "gamma", "rate_rps": 100.0, "cv": 2.0}, items_per_request={"kind": "exponential", "mean": 20})
    seq = np.random.SeedSequence(7)
    a = generate(w, n=5000, duration_s=None, seed=seq)
    b = generate(w, n=5000, duration_s=None, seed=seq)  # reusing the same object gives the same bytes
    assert a.arrival_ms.tobytes() == b.arrival_ms.tobytes() and a.items.tobytes() == b.items.tobytes()
    c = gen(w, n=5000, seed=8)
    assert a.arrival_ms.tobytes() != c.arrival_ms.tobytes()
    # changing the fan-out leaves the arrival stream untouched
    d = generate(wl({"kind": "gamma", "rate_rps": 100.0, "cv": 2.0}), n=5000, duration_s=None, seed=seq)
    assert d.arrival_ms.tobytes() == a.arrival_ms.tobytes()


# ---------------------------------------------------------------- fan-out


def test_fixed_items():
    r = gen(wl({"kind": "poisson", "rate_rps": 10.0}, items_per_request=500), n=100)
    assert np.all(r.items == 500)


def test_distributed_items_are_rounded_and_at_least_one():
    n = 200_000
    r = gen(wl({"kind": "poisson", "rate_rps": 10.0}, items_per_request={"kind": "exponential", "mean": 50}), n=n)
    check_contract(r)
    # rint(Exp(50)) clipped at 1 has mean 50 + P(X < 0.5) * ~0.75; SE 50 / sqrt(n)
    assert abs(r.items.mean() - 50.0) < Z * 50 / np.sqrt(n) + 0.01
    r = gen(wl({"kind": "poisson", "rate_rps": 10.0}, items_per_request={"kind": "uniform", "low": 0, "high": 0.2}), n=100)
    assert np.all(r.items == 1)
