"""Per-window statistics of the exact day (:mod:`simlat.autoscale.stream`): requests, busy time and a
fixed log-spaced latency histogram per window, and percentiles with intervals read off it.

Bins are :data:`BIN_RATIO` wide (relative): a percentile is reported at its bin's geometric middle,
within 0.25% of the exact order statistic. The interval of a ``q``-quantile is distribution-free:
the order statistics at the binomial ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of ``Bin(n, q)``
(the lower edge of the first's bin, the upper edge of the second's); a rank outside ``1..n`` (too
few requests) gives 0 below and +inf above, as the engine's intervals do.
"""

from __future__ import annotations

import math

import numpy as np

BIN_LO_MS = 1e-3
"""Lower edge of the first latency bin (ms); smaller latencies land in it."""
BIN_RATIO = 1.005
"""Each latency bin's upper edge over its lower edge (0.5% relative bins)."""
N_BINS = int(math.ceil(math.log(1e8 / BIN_LO_MS) / math.log(BIN_RATIO)))
"""Bins up to 1e8 ms (a day and more); larger latencies land in the last."""


def latency_bins(lat_ms: np.ndarray) -> np.ndarray:
    """Histogram bin of each latency (see :data:`BIN_RATIO`)."""
    x = np.log(np.maximum(lat_ms, BIN_LO_MS) * (1.0 / BIN_LO_MS))
    x *= 1.0 / math.log(BIN_RATIO)
    b = x.astype(np.int64)
    np.minimum(b, N_BINS - 1, out=b)
    return b


def bin_value(b: int) -> float:
    """The bin's geometric middle (ms)."""
    return BIN_LO_MS * BIN_RATIO ** (b + 0.5)


def hist_quantile(counts: np.ndarray, q: float, ci: float = 0.95) -> tuple[float, float, float] | None:
    """The ``q``-quantile (0-1) of a histogram row, and a distribution-free interval: the order
    statistics at the binomial ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of ``Bin(n, q)``
    (lower bin edge and upper bin edge). None for an empty row."""
    from scipy.stats import binom

    n = int(counts.sum())
    if n == 0:
        return None
    cum = np.cumsum(counts)

    def at(rank: int) -> int:  # bin of the rank-th smallest (1-based)
        return int(np.searchsorted(cum, min(max(rank, 1), n)))

    est = bin_value(at(math.ceil(q * n)))
    lo_rank = int(binom.ppf((1 - ci) / 2, n, q))
    hi_rank = int(binom.ppf((1 + ci) / 2, n, q)) + 1
    # ranks outside 1..n: too few requests to bound the quantile on that side (0 below, +inf above)
    lo = BIN_LO_MS * BIN_RATIO ** at(lo_rank) if lo_rank >= 1 else 0.0
    hi = BIN_LO_MS * BIN_RATIO ** (at(hi_rank) + 1) if hi_rank <= n else math.inf
    return est, lo, hi


class Windows:
    """Per arrival window (``window_ms``): requests, served, within-SLO, busy ms, latency histogram."""

    def __init__(self, n: int, window_ms: float, slo_ms: float):
        self.n, self.w, self.slo = n, window_ms, slo_ms
        self.hist = np.zeros((n, N_BINS), dtype=np.int64)
        self.requests = np.zeros(n, dtype=np.int64)
        self.within = np.zeros(n, dtype=np.int64)
        self.busy = np.zeros(n)

    def index(self, t_ms: np.ndarray) -> np.ndarray:
        return np.minimum((t_ms * (1.0 / self.w)).astype(np.int64), self.n - 1)

    def arrived(self, a: np.ndarray) -> None:
        if len(a):
            self.requests += np.bincount(self.index(a), minlength=self.n)

    def served(self, a: np.ndarray, lat: np.ndarray, bins: np.ndarray) -> None:
        if not len(a):
            return
        w = self.index(a)
        lo, hi = int(w[0]), int(w[-1]) + 1  # arrivals are sorted
        flat = (w - lo) * N_BINS + bins
        self.hist[lo:hi] += np.bincount(flat, minlength=(hi - lo) * N_BINS).reshape(hi - lo, N_BINS)
        self.within[lo:hi] += np.bincount(w - lo, weights=lat <= self.slo, minlength=hi - lo).astype(np.int64)

    def batches(self, disp: np.ndarray, serv: np.ndarray) -> None:
        if len(disp):
            self.busy += np.bincount(self.index(disp), weights=serv, minlength=self.n)
