"""Summaries of timing samples: the quantile sketch a profile stores and the median's CI.

numpy only: the worker and the parent both use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def median_ci(samples: np.ndarray, z: float = 1.959964) -> tuple[float, float]:
    """Distribution-free ~95% confidence interval of the median from order statistics.

    The ranks are ``n/2 -+ z*sqrt(n)/2`` (normal approximation to the binomial), clipped to the sample.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    half = z * math.sqrt(n) / 2.0
    lo = max(int(math.floor(n / 2.0 - half)), 0)
    hi = min(int(math.ceil(n / 2.0 + half)), n - 1)
    return float(x[lo]), float(x[hi])


def summarize(process_samples: Sequence[Sequence[float] | np.ndarray], levels: list[float], *, unstable_ratio: float = 1.10) -> dict:
    """A profile ``Dist`` (as a dict) from the samples of one or more separate processes.

    The samples of all processes are pooled (a fleet of replicas sees every process's level);
    each process's median is kept, and ``process_spread`` is max/min of them. ``unstable`` when
    the spread exceeds ``unstable_ratio`` or the median's CI half-width exceeds 5% of the median.
    """
    parts = [np.asarray(s, dtype=np.float64) for s in process_samples if len(s)]
    if not parts:
        raise ValueError("no samples")
    x = np.concatenate(parts)
    q = np.quantile(x, levels)
    q = np.maximum.accumulate(np.maximum(q, 0.0))
    lo, hi = median_ci(x)
    med = float(np.median(x))
    meds = [float(np.median(p)) for p in parts]
    spread = max(meds) / min(meds) if min(meds) > 0 else 1.0
    half = (hi - lo) / 2.0
    return {
        "n": int(x.size),
        "mean_ms": float(x.mean()),
        "quantiles_ms": [round(float(v), 6) for v in q],
        "median_ci_ms": [round(lo, 6), round(hi, 6)],
        "median_ci_half_width_ms": round(half, 6),
        "process_medians_ms": [round(m, 6) for m in meds],
        "process_spread": round(max(spread, 1.0), 4),
        "unstable": bool(spread > unstable_ratio or (med > 0 and half > 0.05 * med)),
    }
