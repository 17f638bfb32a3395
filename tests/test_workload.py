"""Arrival generators, fan-out and keys: statistical tests with tolerances from standard errors.

Every tolerance is Z standard errors of the estimator (Z = 4: a correct generator fails with
probability about 6e-5 per check), with the standard error derived from the process's theory.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------- modulated processes


def test_mmpp_mean_rate_is_time_weighted():
    rates, means = [50.0, 400.0, 0.0], [2.0, 0.5, 1.0]
    w = wl({"kind": "mmpp", "rates_rps": rates, "mean_durations_s": means})
    mean_rate = sum(r * m for r, m in zip(rates, means, strict=True)) / sum(means)
    assert offered_rate_rps(w) == pytest.approx(mean_rate)
    horizon = 20_000.0
    r = gen(w, duration_s=horizon)
    check_contract(r)
    # regenerative cycles: Var(count - rate * length) per cycle = sum(r m + (r - mean)^2 m^2)
    per_cycle = sum(r_ * m + (r_ - mean_rate) ** 2 * m * m for r_, m in zip(rates, means, strict=True))
    se = np.sqrt(per_cycle / (horizon * sum(means)))
    assert abs(len(r) / horizon - mean_rate) < Z * se
    # n-bounded: exactly n, same process
    r = gen(w, n=100_000)
    assert len(r) == 100_000
    check_contract(r)


def test_on_off_rate_and_burstiness():
    """With off rate 0 this is an interrupted Poisson process: a renewal process whose gaps are
    hyperexponential with squared CV 1 + 2 lambda alpha / (alpha + beta)^2."""
    lam, mon, moff = 2000.0, 0.05, 0.2
    w = wl({"kind": "on_off", "on_rate_rps": lam, "mean_on_s": mon, "mean_off_s": moff})
    mean_rate = lam * mon / (mon + moff)
    assert offered_rate_rps(w) == pytest.approx(mean_rate)
    n = 400_000
    r = gen(w, n=n)
    check_contract(r)
    gaps = np.diff(r.arrival_ms)
    alpha, beta = 1 / mon, 1 / moff
    cv = np.sqrt(1 + 2 * lam * alpha / (alpha + beta) ** 2)
    # independent batches of a renewal process give the standard errors directly
    batches = gaps[: len(gaps) // 40 * 40].reshape(40, -1)
    batch_cv = batches.std(axis=1) / batches.mean(axis=1)
    batch_rate = 1000.0 / batches.mean(axis=1)
    assert abs(gaps.std() / gaps.mean() - cv) < Z * batch_cv.std(ddof=1) / np.sqrt(40)
    assert abs(1000.0 / gaps.mean() - mean_rate) < Z * batch_rate.std(ddof=1) / np.sqrt(40)


# ---------------------------------------------------------------- non-homogeneous Poisson


def chi2_bins(times_s: np.ndarray, edges: np.ndarray, expected: np.ndarray) -> None:
    """Counts per bin agree with the expected counts (Poisson: chi-square, p > 1e-4)."""
    from scipy import stats

    counts = np.histogram(times_s, bins=edges)[0]
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert stat < stats.chi2.ppf(1 - 1e-4, len(expected)), (stat, counts, expected)


def test_diurnal_mean_rate_over_full_periods_and_shape():
    mean, amp, period, phase = 300.0, 0.9, 60.0, 7.0
    w = wl({"kind": "diurnal", "mean_rate_rps": mean, "amplitude": amp, "period_s": period, "phase_s": phase})
    periods = 50
    r = gen(w, duration_s=periods * period)
    check_contract(r)
    expected = mean * periods * period
    assert abs(len(r) - expected) < Z * np.sqrt(expected)
    # arrivals per phase bin follow the integral of the sinusoid over the bin
    edges = np.linspace(0, period, 25)
    lam = mean * (edges - amp * period / (2 * np.pi) * np.cos(2 * np.pi * (edges - phase) / period))
    chi2_bins(np.mod(r.arrival_ms / 1000.0, period), edges, np.diff(lam) * periods)
    assert len(gen(w, n=12_345)) == 12_345


def test_rate_curve_repeating_mean_rate_and_shape():
    pts = [[0.0, 100.0], [10.0, 900.0], [25.0, 0.0], [30.0, 400.0]]
    w = wl({"kind": "rate_curve", "points": pts, "repeat": True})
    mass = 0.5 * (100 + 900) * 10 + 0.5 * 900 * 15 + 0.5 * 400 * 5
    assert offered_rate_rps(w) == pytest.approx(mass / 30.0)
    periods = 40
    r = gen(w, duration_s=periods * 30.0)
    check_contract(r)
    assert abs(len(r) - mass * periods) < Z * np.sqrt(mass * periods)
    edges = np.arange(0, 31, 2.5)
    rate = np.interp(edges, [p[0] for p in pts], [p[1] for p in pts])
    chi2_bins(np.mod(r.arrival_ms / 1000.0, 30.0), edges, 0.5 * (rate[1:] + rate[:-1]) * 2.5 * periods)


def test_rate_curve_holds_last_rate_and_starts_at_first_rate():
    w = wl({"kind": "rate_curve", "points": [[5.0, 200.0], [10.0, 600.0]]})
    r = gen(w, duration_s=30.0)
    t = r.arrival_ms / 1000.0
    for lo, hi, expected in [(0, 5, 200 * 5), (5, 10, 400 * 5), (10, 30, 600 * 20)]:
        got = np.count_nonzero((t >= lo) & (t < hi))
        assert abs(got - expected) < Z * np.sqrt(expected)


def test_rate_curve_that_ends_at_zero_cannot_give_more_than_it_has():
    w = wl({"kind": "rate_curve", "points": [[0.0, 10.0], [10.0, 0.0]]})
    with pytest.raises(SimlatError, match=r"workload\.arrivals\.points.*repeat"):
        gen(w, n=10_000)
    r = gen(w, duration_s=100.0)
    assert r.arrival_ms.max() < 10_000.0


def test_spike_shape_and_mean_rate():
    cfg = {"kind": "spike", "base_rate_rps": 100.0, "spike_rate_rps": 1000.0, "start_s": 20.0, "duration_s": 10.0, "ramp_s": 5.0}
    w = wl(cfg)
    mass = 100 * 20 + 550 * 5 + 1000 * 10 + 550 * 5
    assert offered_rate_rps(w) == pytest.approx(mass / 40.0)
    reps = 0
    times = []
    for seed in range(20):
        r = gen(w, duration_s=60.0, seed=seed)
        check_contract(r)
        times.append(r.arrival_ms / 1000.0)
        reps += 1
    t = np.concatenate(times)
    edges = np.array([0, 10, 20, 22.5, 25, 30, 35, 37.5, 40, 50, 60])
    rate = np.interp(edges, [0, 20, 25, 35, 40, 60], [100, 100, 1000, 1000, 100, 100])
    chi2_bins(t, edges, 0.5 * (rate[1:] + rate[:-1]) * np.diff(edges) * reps)
    # no ramp: a step up and down
    step = wl({**cfg, "ramp_s": 0.0})
    t = gen(step, duration_s=40.0).arrival_ms / 1000.0
    hold = np.count_nonzero((t >= 20) & (t < 30))
    assert abs(hold - 10_000) < Z * 100


# ---------------------------------------------------------------- keys


def test_zipf_top_keys_follow_the_law():
    n, exponent, space = 1_000_000, 1.0, 10_000
    r = gen(wl({"kind": "poisson", "rate_rps": 1.0}, keys={"kind": "zipf", "exponent": exponent, "key_space": space}), n=n)
    assert r.key.dtype == np.int64 and r.key.min() >= 0 and r.key.max() < space
    norm = np.sum(np.arange(1, space + 1, dtype=float) ** -exponent)
    for k in range(5):
        p = (k + 1) ** -exponent / norm
        share = np.count_nonzero(r.key == k) / n
        assert abs(share - p) < Z * np.sqrt(p * (1 - p) / n)
    # the whole law: chi-square over the first 50 keys and the rest pooled
    from scipy import stats

    p = np.arange(1, space + 1, dtype=float) ** -exponent / norm
    expected = np.append(p[:50], p[50:].sum()) * n
    counts = np.bincount(r.key, minlength=space)
    observed = np.append(counts[:50], counts[50:].sum())
    assert ((observed - expected) ** 2 / expected).sum() < stats.chi2.ppf(1 - 1e-4, 50)


def test_zipf_huge_key_space_is_cheap_and_right():
    """key_space 1e8: only 65,536 table entries; the head shares match the exact normalisation."""
    from simlat.config.workload import ZipfKeys
    from simlat.workload.keys import zipf, zipf_probability

    cfg = ZipfKeys(exponent=0.8, key_space=100_000_000)
    n = 1_000_000
    keys = zipf(cfg, n, np.random.default_rng(3))
    assert keys.min() >= 0 and keys.max() < cfg.key_space
    # exact normalisation by Euler-Maclaurin: H(K, s) = zeta-free sum up to 1e6 + integral tail
    m = 1_000_000
    head = np.sum(np.arange(1, m + 1, dtype=float) ** -0.8)
    s, K = 0.8, cfg.key_space
    tail = (K ** (1 - s) - m ** (1 - s)) / (1 - s) + 0.5 * (K**-s - m**-s)
    norm = head + tail
    for k in [0, 1, 9, 999, 70_000]:
        p = (k + 1) ** -s / norm
        assert zipf_probability(cfg, np.array([k]))[0] == pytest.approx(p, rel=1e-6)
    top = np.count_nonzero(keys == 0) / n
    p0 = 1 / norm
    assert abs(top - p0) < Z * np.sqrt(p0 * (1 - p0) / n)
    # the tail half of the space gets its share (a coarse check of the continuous inverse)
    p_tail = (K ** (1 - s) - (K / 2) ** (1 - s)) / (1 - s) / norm
    share = np.count_nonzero(keys >= K // 2) / n
    assert abs(share - p_tail) < Z * np.sqrt(p_tail * (1 - p_tail) / n)


def test_zipf_exponent_zero_is_uniform_and_same_seed_same_bytes():
    w = wl({"kind": "poisson", "rate_rps": 1.0}, keys={"kind": "zipf", "exponent": 0.0, "key_space": 10})
    r = gen(w, n=100_000, seed=5)
    counts = np.bincount(r.key, minlength=10)
    assert abs(counts - 10_000).max() < Z * np.sqrt(100_000 * 0.1 * 0.9)
    assert gen(w, n=100_000, seed=5).key.tobytes() == r.key.tobytes()
    w2 = wl({"kind": "poisson", "rate_rps": 1.0}, keys={"kind": "zipf", "exponent": 1.2, "key_space": 10**7})
    assert gen(w2, n=10_000, seed=5).key.tobytes() == gen(w2, n=10_000, seed=5).key.tobytes()


def test_trace_keys_need_a_trace_with_a_key_column():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="key_column"):
        wl({"kind": "poisson", "rate_rps": 1.0}, keys={"kind": "trace"})


# ---------------------------------------------------------------- properties

_rate = st.floats(min_value=0.5, max_value=5e4)
_dur = st.floats(min_value=0.05, max_value=5.0)
_ARRIVALS = st.one_of(
    st.builds(lambda r: {"kind": "poisson", "rate_rps": r}, _rate),
    st.builds(lambda r: {"kind": "deterministic", "rate_rps": r}, _rate),
    st.builds(lambda r, c: {"kind": "gamma", "rate_rps": r, "cv": c}, _rate, st.floats(0.05, 8.0)),
    st.builds(
        lambda rs, ds: {"kind": "mmpp", "rates_rps": rs, "mean_durations_s": ds[: len(rs)]},
        st.lists(st.floats(0.0, 1e4), min_size=2, max_size=4).filter(lambda v: max(v) > 0.5),
        st.lists(_dur, min_size=4, max_size=4),
    ),
    st.builds(
        lambda r, on, off: {"kind": "on_off", "on_rate_rps": r, "mean_on_s": on, "mean_off_s": off}, _rate, _dur, _dur
    ),
    st.builds(
        lambda r, a, p, ph: {"kind": "diurnal", "mean_rate_rps": r, "amplitude": a, "period_s": p, "phase_s": ph},
        _rate, st.floats(0.0, 1.0), st.floats(0.1, 100.0), st.floats(-50.0, 50.0),
    ),
    st.builds(
        lambda gaps, rates, rep: {
            "kind": "rate_curve",
            "points": [[float(t), r] for t, r in zip(np.cumsum(gaps), rates, strict=False)],
            "repeat": rep,
        },
        st.lists(st.floats(0.01, 10.0), min_size=2, max_size=5),
        st.lists(st.floats(0.5, 1e4), min_size=5, max_size=5),
        st.booleans(),
    ),
    st.builds(
        lambda b, s, t0, d, ramp: {
            "kind": "spike", "base_rate_rps": b, "spike_rate_rps": s, "start_s": t0, "duration_s": d, "ramp_s": ramp,
        },
        _rate, _rate, st.floats(0.0, 5.0), _dur, st.floats(0.0, 2.0),
    ),
)


@settings(max_examples=150, deadline=None)
@given(arr=_ARRIVALS, n=st.integers(1, 3000), dur=st.floats(0.001, 3.0), seed=st.integers(0, 2**32 - 1))
def test_any_arrival_process_honours_the_contract(arr, n, dur, seed):
    w = wl(arr)
    r = gen(w, n=n, seed=seed)
    check_contract(r)
    assert len(r) == n
    r = gen(w, duration_s=dur, seed=seed)
    check_contract(r)
    assert len(r) == 0 or r.arrival_ms[-1] < dur * 1000.0
    rate = offered_rate_rps(w)
    assert rate is not None and rate > 0


def test_zipf_groups_are_the_law_in_compact_form():
    from simlat.config.workload import ZipfKeys
    from simlat.workload.keys import zipf_groups

    for exponent, space in [(0.9, 1000), (0.0, 10**8), (1.0, 10**6), (0.7, 10**8)]:
        p, count = zipf_groups(ZipfKeys(exponent=exponent, key_space=space))
        assert count.sum() == space and len(p) < 100_000
        assert float(p @ count) == pytest.approx(1.0, abs=1e-12)
    # Che-style sums over the groups match the exact per-key sums
    cfg = ZipfKeys(exponent=1.0, key_space=10**6)
    p, count = zipf_groups(cfg)
    exact = np.arange(1, 10**6 + 1, dtype=float) ** -1.0
    exact /= exact.sum()
    for t in [1e3, 1e5, 1e7]:
        assert float(count @ -np.expm1(-p * t)) == pytest.approx(float(np.sum(-np.expm1(-exact * t))), rel=1e-6)


def test_rate_curve_steps():
    """Two points at one time make a step: 100 req/s for 10 s, then 1,000 req/s."""
    w = wl({"kind": "rate_curve", "points": [[0.0, 100.0], [10.0, 100.0], [10.0, 1000.0], [20.0, 1000.0]]})
    t = gen(w, duration_s=20.0).arrival_ms / 1000.0
    for lo, hi, expected in [(0, 10, 1000), (10, 20, 10_000)]:
        got = np.count_nonzero((t >= lo) & (t < hi))
        assert abs(got - expected) < Z * np.sqrt(expected)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="increasing"):
        wl({"kind": "rate_curve", "points": [[0.0, 1.0], [5.0, 1.0], [4.0, 2.0]]})
    with pytest.raises(ValidationError, match="at most two"):
        wl({"kind": "rate_curve", "points": [[0.0, 1.0], [5.0, 1.0], [5.0, 2.0], [5.0, 3.0]]})


def test_spike_with_a_subnormal_ramp_is_a_step():
    """Found by hypothesis: a ramp of 1e-308 s made the slope overflow to -inf."""
    w = Workload.model_validate(
        {"arrivals": {"kind": "spike", "base_rate_rps": 3.0, "spike_rate_rps": 1.0, "start_s": 0.0,
                      "duration_s": 1.0, "ramp_s": 1.1125369292536007e-308}}
    )
    r = generate(w, n=50, duration_s=None, seed=np.random.SeedSequence(0))
    assert len(r) == 50 and np.all(np.isfinite(r.arrival_ms))
