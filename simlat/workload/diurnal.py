"""Diurnal arrivals: a non-homogeneous Poisson process with a sinusoidal rate, by thinning.

Candidates arrive as Poisson at the peak rate ``mean * (1 + amplitude)``; each is kept with
probability rate(t) / peak (Lewis-Shedler thinning: exact, vectorised, at most 2 candidates per
arrival).
"""

from __future__ import annotations

import numpy as np

from simlat.config.workload import Diurnal
from simlat.workload.stream import Stream, expected_count_bound, truncate


def rate_at(cfg: Diurnal, t_s: np.ndarray) -> np.ndarray:
    """Rate (requests/s) at times ``t_s`` (seconds)."""
    return cfg.mean_rate_rps * (1.0 + cfg.amplitude * np.sin(2.0 * np.pi * (t_s - cfg.phase_s) / cfg.period_s))


def diurnal(cfg: Diurnal, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """``n`` arrivals, or those before ``horizon_ms``."""
    peak = cfg.mean_rate_rps * (1.0 + cfg.amplitude)
    chunks: list[np.ndarray] = []
    kept = 0
    last_s = 0.0
    while True:
        if n is not None:
            want = expected_count_bound((n - kept) * (1.0 + cfg.amplitude))
        else:
            want = expected_count_bound((horizon_ms / 1000.0 - last_s) * peak)
        cand = last_s + np.cumsum(rng.standard_exponential(want)) / peak
        keep = cand[rng.random(want) * peak < rate_at(cfg, cand)]
        chunks.append(keep)
        kept += len(keep)
        last_s = float(cand[-1])
        if (n is not None and kept >= n) or (n is None and last_s * 1000.0 >= horizon_ms):
            break
    return Stream(truncate(np.concatenate(chunks) * 1000.0, n, horizon_ms))
