"""Closed forms of classic queues, used to check the engine (tests/test_theory.py).

Rates are per ms (lam: arrival rate, mu: service rate of one server), times in ms. "Wait" is the time
in queue before service starts; "sojourn" is wait + service. All queues are FIFO and must be stable
(lam < c * mu); an unstable queue raises ValueError.

- M/M/1: sojourn ~ Exponential(mu - lam); P(W > t) = rho * exp(-(mu - lam) t).
- M/M/c (Erlang C): P(W > 0) = C(c, a), P(W > t) = C exp(-(c mu - lam) t), E[W] = C / (c mu - lam).
- M/D/1: E[W] = rho D / (2 (1 - rho)) (Pollaczek-Khinchine); the exact distribution of the wait is
  Erlang's (1909) finite alternating sum, P(W <= t) = (1 - rho) sum_{k=0}^{floor(t/D)}
  (lam (k D - t))^k / k! * exp(-lam (k D - t)), evaluated in exact decimal arithmetic with enough
  digits to survive its cancellation; quantiles by bisection.
- M/G/1: E[W] = lam E[S^2] / (2 (1 - rho)) (Pollaczek-Khinchine), with E[S^2] of the common families.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext


def _rho(lam: float, mu: float, c: int = 1) -> float:
    if lam <= 0 or mu <= 0 or c < 1:
        raise ValueError(f"need lam > 0, mu > 0, c >= 1 (got lam={lam}, mu={mu}, c={c})")
    rho = lam / (c * mu)
    if rho >= 1:
        raise ValueError(f"unstable queue: utilisation {rho:.4g} >= 1")
    return rho


def _check_p(p: float) -> None:
    if not 0 < p < 1:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")


# --- M/M/1 -------------------------------------------------------------------------------------------


def mm1_sojourn_mean(lam: float, mu: float) -> float:
    """Mean time in system, 1 / (mu - lam)."""
    _rho(lam, mu)
    return 1.0 / (mu - lam)


def mm1_sojourn_quantile(lam: float, mu: float, p: float) -> float:
    """p-quantile of the time in system: -ln(1 - p) / (mu - lam)."""
    _rho(lam, mu)
    _check_p(p)
    return -math.log1p(-p) / (mu - lam)


def mm1_wait_mean(lam: float, mu: float) -> float:
    """Mean wait in queue, rho / (mu - lam)."""
    return _rho(lam, mu) / (mu - lam)


def mm1_wait_quantile(lam: float, mu: float, p: float) -> float:
    """p-quantile of the wait in queue (0 when p <= 1 - rho)."""
    return mmc_wait_quantile(lam, mu, 1, p)


# --- M/M/c (Erlang C) --------------------------------------------------------------------------------


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lam / mu Erlangs (a < c).

    Computed from the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), which is stable for large c.
    """
    if a <= 0 or c < 1:
        raise ValueError(f"need a > 0 and c >= 1 (got a={a}, c={c})")
    if a >= c:
        raise ValueError(f"unstable queue: offered load {a:.4g} >= {c} servers")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def mmc_wait_probability(lam: float, mu: float, c: int) -> float:
    """P(W > 0) = C(c, lam / mu)."""
    _rho(lam, mu, c)
    return erlang_c(c, lam / mu)


def mmc_wait_mean(lam: float, mu: float, c: int) -> float:
    """E[W] = C / (c mu - lam)."""
    return mmc_wait_probability(lam, mu, c) / (c * mu - lam)


def mmc_wait_quantile(lam: float, mu: float, c: int, p: float) -> float:
    """p-quantile of the wait: solves C exp(-(c mu - lam) t) = 1 - p (0 when 1 - p >= C)."""
    _check_p(p)
    pw = mmc_wait_probability(lam, mu, c)
    if 1 - p >= pw:
        return 0.0
    return math.log(pw / (1 - p)) / (c * mu - lam)


def mmc_sojourn_mean(lam: float, mu: float, c: int) -> float:
    """E[T] = E[W] + 1 / mu."""
    return mmc_wait_mean(lam, mu, c) + 1.0 / mu


def mmc_sojourn_sf(lam: float, mu: float, c: int, t: float) -> float:
    """P(T > t) for M/M/c: the wait (atom at 0, else Exp(c mu - lam)) plus an independent Exp(mu)."""
    pw = mmc_wait_probability(lam, mu, c)
    g = c * mu - lam
    if abs(g - mu) < 1e-12 * mu:
        return math.exp(-mu * t) * (1.0 + pw * mu * t)
    # P(T > t) = e^{-mu t} + C * [g e^{-mu t} - mu e^{-g t}]/(g - mu) - C e^{-mu t}
    return math.exp(-mu * t) * (1 - pw) + pw * (g * math.exp(-mu * t) - mu * math.exp(-g * t)) / (g - mu)


def mmc_sojourn_quantile(lam: float, mu: float, c: int, p: float) -> float:
    """p-quantile of the time in system of M/M/c (bisection on :func:`mmc_sojourn_sf`)."""
    _check_p(p)
    return _bisect(lambda t: 1.0 - mmc_sojourn_sf(lam, mu, c, t), p, hi=1.0 / mu)


# --- M/D/1 -------------------------------------------------------------------------------------------


def md1_wait_mean(lam: float, d: float) -> float:
    """Pollaczek-Khinchine mean wait for deterministic service d: rho d / (2 (1 - rho))."""
    rho = _rho(lam, 1.0 / d)
    return rho * d / (2.0 * (1.0 - rho))


def md1_wait_cdf(lam: float, d: float, t: float) -> float:
    """P(W <= t) for M/D/1 (Erlang's formula, exact decimal arithmetic: the sum cancels heavily)."""
    rho = _rho(lam, 1.0 / d)
    if t < 0:
        return 0.0
    kmax = int(math.floor(t / d))
    # Terms reach about exp(lam t) before cancelling to a number in [0, 1]: carry enough digits.
    digits = 40 + int(lam * t / math.log(10)) + int(math.log10(kmax + 2) * 2)
    with localcontext() as ctx:
        ctx.prec = digits
        lam_d, t_d, d_d = Decimal(float(lam)), Decimal(float(t)), Decimal(float(d))
        total = Decimal(0)
        fact = Decimal(1)
        for k in range(kmax + 1):
            if k:
                fact *= k
            x = lam_d * (k * d_d - t_d)  # <= 0
            power = Decimal(1) if k == 0 else x**k
            total += (power / fact) * (-x).exp()
        value = (Decimal(1) - Decimal(float(rho))) * total
    return min(1.0, max(0.0, float(value)))


def md1_wait_quantile(lam: float, d: float, p: float) -> float:
    """p-quantile of the M/D/1 wait (0 when p <= 1 - rho)."""
    _check_p(p)
    rho = _rho(lam, 1.0 / d)
    if p <= 1 - rho:
        return 0.0
    return _bisect(lambda t: md1_wait_cdf(lam, d, t), p, hi=d)


# --- M/G/1 -------------------------------------------------------------------------------------------


def mg1_wait_mean(lam: float, mean_s: float, second_moment_s: float) -> float:
    """Pollaczek-Khinchine: E[W] = lam E[S^2] / (2 (1 - rho)), rho = lam E[S]."""
    rho = _rho(lam, 1.0 / mean_s)
    return lam * second_moment_s / (2.0 * (1.0 - rho))


def lognormal_moments(median: float, sigma: float) -> tuple[float, float]:
    """(E[S], E[S^2]) of a lognormal with the given median and log-space sigma."""
    return median * math.exp(sigma**2 / 2), median**2 * math.exp(2 * sigma**2)


def gamma_moments(mean: float, cv: float) -> tuple[float, float]:
    """(E[S], E[S^2]) of a gamma with the given mean and coefficient of variation."""
    return mean, mean**2 * (1 + cv**2)


# --- helpers -----------------------------------------------------------------------------------------


def _bisect(cdf, p: float, hi: float, tol: float = 1e-10) -> float:
    """Smallest t with cdf(t) >= p, for a nondecreasing cdf (doubling the bracket, then bisecting)."""
    lo = 0.0
    while cdf(hi) < p:
        lo, hi = hi, hi * 2
        if hi > 1e12:
            raise ValueError("quantile did not bracket")
    while hi - lo > tol * max(1.0, hi):
        mid = (lo + hi) / 2
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
