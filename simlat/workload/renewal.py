"""Renewal arrival processes: independent, identically distributed gaps (Poisson, deterministic, gamma).

The first arrival of a random process comes one gap after time 0; deterministic arrivals start at 0,
so a run of ``d`` seconds at rate ``r`` holds exactly ``ceil(r * d)`` of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simlat.config.workload import Deterministic, GammaArrivals, Poisson
from simlat.workload.stream import Stream, expected_count_bound, truncate


def _cumulative(gaps: Callable[[int], np.ndarray], mean_gap_ms: float, n: int | None, horizon_ms: float | None) -> np.ndarray:
    """Cumulative sums of gaps: ``n`` of them, or enough to pass ``horizon_ms``."""
    if n is not None:
        g = gaps(n)
        return np.cumsum(g, out=g)
    assert horizon_ms is not None, "either n or horizon_ms"
    chunks: list[np.ndarray] = []
    last = 0.0
    while last < horizon_ms:
        want = expected_count_bound((horizon_ms - last) / mean_gap_ms)
        chunk = last + np.cumsum(gaps(want))
        chunks.append(chunk)
        last = float(chunk[-1])
    return truncate(np.concatenate(chunks), None, horizon_ms)


def _scaled(a: np.ndarray, factor: float) -> np.ndarray:
    a *= factor
    return a


def poisson(cfg: Poisson, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Exponential gaps with mean 1000 / rate_rps ms."""
    mean_gap = 1000.0 / cfg.rate_rps
    return Stream(_cumulative(lambda k: _scaled(rng.standard_exponential(k), mean_gap), mean_gap, n, horizon_ms))


def gamma(cfg: GammaArrivals, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Gamma gaps with mean 1000 / rate_rps ms and shape 1 / cv^2."""
    mean_gap = 1000.0 / cfg.rate_rps
    shape = 1.0 / (cfg.cv * cfg.cv)
    return Stream(_cumulative(lambda k: _scaled(rng.standard_gamma(shape, k), mean_gap / shape), mean_gap, n, horizon_ms))


def deterministic(cfg: Deterministic, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Arrivals at 0, g, 2g, ... with g = 1000 / rate_rps ms (no randomness)."""
    gap = 1000.0 / cfg.rate_rps
    if n is not None:
        count = n
    else:
        assert horizon_ms is not None, "either n or horizon_ms"
        count = int(np.ceil(horizon_ms / gap))
    times = np.arange(count, dtype=np.float64)
    times *= gap
    return Stream(truncate(times, n, horizon_ms))
