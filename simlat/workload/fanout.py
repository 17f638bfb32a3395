"""Fan-out: items per request (a feed request may score hundreds of candidates)."""

from __future__ import annotations

import numpy as np

from simlat import dists
from simlat.config.dists import Dist
from simlat.errors import SimlatError

MAX_ITEMS = 10**9
"""The most items one request may carry (far beyond any fan-out; keeps counts exact in int64)."""


def sample_items(spec: int | Dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """Items for ``n`` requests: a fixed count, or draws from a distribution rounded to integers >= 1."""
    if isinstance(spec, int):
        if spec > MAX_ITEMS:
            raise SimlatError(f"workload.items_per_request: {spec} is invalid: at most {MAX_ITEMS:,} items per request")
        return np.full(n, spec, dtype=np.int64)
    values = np.rint(dists.sample(spec, n, rng))
    if len(values) and not (np.all(np.isfinite(values)) and float(values.max()) <= MAX_ITEMS):
        raise SimlatError(
            f"workload.items_per_request: the {spec.kind} distribution drew {float(np.nanmax(values)):.3g} items; "
            f"at most {MAX_ITEMS:,} items per request"
        )
    return np.maximum(values, 1).astype(np.int64)


def mean_items(spec: int | Dist) -> float:
    """Mean items per request before rounding (a fixed count is exact)."""
    return float(spec) if isinstance(spec, int) else dists.mean(spec)
