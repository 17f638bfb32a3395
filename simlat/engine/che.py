"""Che's approximation of an LRU cache's hit ratio under independent, Zipf-popular keys.

Che, Tung and Wang 2002; Fricker, Robert and Roberts 2012: under independent requests with
popularities p_i, an LRU cache of C entries keeps a key for a characteristic time T that solves
``sum_i (1 - exp(-p_i T)) = C``; key i hits with probability ``1 - exp(-p_i T)``, so the hit ratio
is ``sum_i p_i (1 - exp(-p_i T))``. Used to size the cache warm-up and to check the simulated
caches (:mod:`simlat.engine.cache_curve`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def zipf_popularity(exponent: float, key_space: int) -> np.ndarray:
    """Request probability of keys 1..key_space under Zipf(exponent): p_i proportional to i^-exponent."""
    w = np.arange(1, key_space + 1, dtype=np.float64) ** -float(exponent)
    return w / w.sum()


def _groups(popularity, counts) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(popularity, dtype=np.float64)
    c = np.ones_like(p) if counts is None else np.asarray(counts, dtype=np.float64)
    keep = p > 0
    return p[keep], c[keep]


def che_characteristic_time(popularity: np.ndarray, capacity: float, counts: np.ndarray | None = None) -> float:
    """T with ``sum(1 - exp(-p T)) = capacity`` (in requests); inf when every key fits.

    ``counts`` (optional): ``counts[j]`` keys share probability ``popularity[j]`` (as
    :func:`simlat.workload.keys.zipf_groups` gives them).
    """
    p, c = _groups(popularity, counts)
    if capacity >= c.sum():
        return float("inf")

    def excess(log_t: float) -> float:
        return float(np.sum(c * -np.expm1(-p * np.exp(log_t)))) - capacity

    lo, hi = np.log(1e-12 / p.max()), np.log(1.0 / p.min()) + 10.0
    while excess(hi) < 0:
        hi += 10.0
    return float(np.exp(brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12)))


def che_hit_ratio(popularity: np.ndarray, capacity: float, counts: np.ndarray | None = None) -> float:
    """Che's approximation of the LRU hit ratio (steady state, no TTL); ``counts`` as above."""
    p, c = _groups(popularity, counts)
    t = che_characteristic_time(p, capacity, c)
    if np.isinf(t):
        return 1.0
    return float(np.sum(c * p * -np.expm1(-p * t)))
