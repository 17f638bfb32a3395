"""The output of an arrival generator, and the two ways a run is bounded (request count or horizon)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stream:
    """Arrival times (ms, sorted, from 0) of one arrival process.

    ``rows`` maps each arrival to its source row of a replayed trace (for trace keys); ``items``
    are per-request items read from a trace (None: drawn from ``items_per_request``); ``warnings``
    carries anything the user should hear about (for example a trace that ran out before ``n``).
    """

    arrival_ms: np.ndarray
    rows: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    items: np.ndarray | None = None


def truncate(times_ms: np.ndarray, n: int | None, horizon_ms: float | None) -> np.ndarray:
    """Keep the first ``n`` times, or those before ``horizon_ms`` (times are sorted)."""
    if n is not None:
        return times_ms[:n]
    assert horizon_ms is not None, "either n or horizon_ms"
    return times_ms[: int(np.searchsorted(times_ms, horizon_ms, side="left"))]


def expected_count_bound(mean: float) -> int:
    """A count that a Poisson-like count with this mean exceeds only with negligible probability."""
    return int(mean + 8.0 * np.sqrt(mean) + 16)


def unit_arrivals(rng: np.random.Generator, n: int | None, upto: float | None) -> np.ndarray:
    """Arrival epochs of a unit-rate Poisson process: the first ``n``, or all below ``upto``.

    Every non-homogeneous generator maps these through the inverse of its cumulative intensity
    (the time-change theorem), which keeps them sorted and fully vectorised.
    """
    if n is not None:
        e = rng.standard_exponential(n)
        return np.cumsum(e, out=e)
    assert upto is not None, "either n or upto"
    chunks: list[np.ndarray] = []
    last = 0.0
    while last < upto:
        want = expected_count_bound(upto - last)
        chunk = last + np.cumsum(rng.standard_exponential(want))
        chunks.append(chunk)
        last = float(chunk[-1])
    out = np.concatenate(chunks) if chunks else np.empty(0)
    return out[: int(np.searchsorted(out, upto, side="left"))]
