"""Warm-up requests: a stretch of the same workload that ends at time 0, to fill the caches first.

The cache stage (:mod:`simlat.engine.cache`) decides how many seconds it needs
(:func:`simlat.engine.cache.warmup_seconds`) and draws the seed; this module only generates them.
"""

from __future__ import annotations

import numpy as np

from simlat.workload import Requests, generate


def warmup_requests(workload, seconds: float, seed: np.random.SeedSequence) -> Requests:
    """``seconds`` of ``workload`` (open loop), drawn from ``seed`` and shifted to end at time 0."""
    w = generate(workload, n=None, duration_s=seconds, seed=seed)
    return Requests(arrival_ms=w.arrival_ms - seconds * 1000.0, items=w.items, key=w.key)
