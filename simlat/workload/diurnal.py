"""Diurnal arrivals: a non-homogeneous Poisson process with a sinusoidal rate, by thinning.

Candidates arrive as Poisson at the peak rate ``mean * (1 + amplitude)``; each is kept with
probability rate(t) / peak (Lewis-Shedler thinning: exact, vectorised, at most 2 candidates per
arrival).
"""

from __future__ import annotations

import numpy as np

from simlat.config.workload import Diurnal
from simlat.workload.stream import Stream, truncate


def rate_at(cfg: Diurnal, t_s: np.ndarray) -> np.ndarray:
    """Rate (requests/s) at times ``t_s`` (seconds)."""
    return cfg.mean_rate_rps * (1.0 + cfg.amplitude * np.sin(2.0 * np.pi * (t_s - cfg.phase_s) / cfg.period_s))


CHUNK = 1 << 20  # candidates per step: keeps the temporaries in cache


def diurnal(cfg: Diurnal, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """``n`` arrivals, or those before ``horizon_ms``."""
    peak = cfg.mean_rate_rps * (1.0 + cfg.amplitude)
    omega = 2.0 * np.pi / cfg.period_s
    chunks: list[np.ndarray] = []
    kept = 0
    last_s = 0.0
    horizon = np.inf if horizon_ms is None else horizon_ms  # n is given when horizon_ms is not
    while (n is not None and kept < n) or (n is None and last_s * 1000.0 < horizon):
        cand = rng.standard_exponential(CHUNK)
        np.cumsum(cand, out=cand)
        cand /= peak
        cand += last_s
        last_s = float(cand[-1])
        # keep with probability rate / peak: U * (1 + a) < 1 + a sin(omega (t - phase))
        s = np.sin(omega * (cand - cfg.phase_s))
        s *= cfg.amplitude
        s += 1.0
        u = rng.random(CHUNK)
        u *= 1.0 + cfg.amplitude
        keep = cand[u < s]
        chunks.append(keep)
        kept += len(keep)
    times = np.concatenate(chunks) if chunks else np.empty(0)
    times *= 1000.0
    return Stream(truncate(times, n, horizon_ms))
