"""Fan-out: items per request (a feed request may score hundreds of candidates)."""

from __future__ import annotations

import numpy as np

from simlat import dists
from simlat.config.dists import Dist


def sample_items(spec: int | Dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """Items for ``n`` requests: a fixed count, or draws from a distribution rounded to integers >= 1."""
    if isinstance(spec, int):
        return np.full(n, spec, dtype=np.int64)
    values = np.rint(dists.sample(spec, n, rng))
    return np.maximum(values, 1).astype(np.int64)


def mean_items(spec: int | Dist) -> float:
    """Mean items per request before rounding (a fixed count is exact)."""
    return float(spec) if isinstance(spec, int) else dists.mean(spec)
