"""Workload generation: arrival processes, trace replay, fan-out and keys, as numpy arrays.

Contract (used by the engine): :func:`generate` returns a :class:`Requests` with arrival times in ms
(float64, sorted, >= 0), items per request (int64 >= 1) and an optional int64 key per request.
Randomness: three independent streams (arrivals, items, keys) derived from the given SeedSequence,
so the same seed gives the same bytes, and changing the fan-out never changes the arrival times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlat.errors import SimlatError


@dataclass(frozen=True)
class Requests:
    """Requests as rows of numpy arrays; ``warnings`` are notes for the run summary."""

    arrival_ms: np.ndarray
    items: np.ndarray
    key: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.arrival_ms)


def _child(seed: np.random.SeedSequence, i: int) -> np.random.Generator:
    """The i-th child stream of ``seed``, independent of how often ``seed.spawn`` was called."""
    seq = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size)
    return np.random.default_rng(seq)


def generate(workload, *, n: int | None, duration_s: float | None, seed: np.random.SeedSequence) -> Requests:
    """Draw the requests of an open-loop ``workload`` (a :class:`simlat.config.workload.Workload`).

    Exactly one of ``n`` (request count) and ``duration_s`` (simulated seconds from time 0) is set.
    Closed-loop clients are simulated by the engine, not here.
    """
    from simlat.workload.arrivals import GENERATORS
    from simlat.workload.fanout import sample_items
    from simlat.workload.keys import sample_keys

    if (n is None) == (duration_s is None):
        raise ValueError(f"give exactly one of n and duration_s (got n={n!r}, duration_s={duration_s!r})")
    if n is not None and n < 1:
        raise ValueError(f"n: {n!r} must be >= 1")
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration_s: {duration_s!r} must be > 0")
    arrivals = workload.arrivals
    if arrivals.kind == "closed_loop":
        raise SimlatError(
            "workload.arrivals.kind: 'closed_loop' has no open-loop arrival times to generate; "
            "closed-loop clients are simulated inside the engine"
        )
    horizon_ms = None if duration_s is None else float(duration_s) * 1000.0
    stream = GENERATORS[type(arrivals)](arrivals, n, horizon_ms, _child(seed, 0))
    count = len(stream.arrival_ms)
    if stream.items is not None:
        items = np.ascontiguousarray(stream.items, dtype=np.int64)
    else:
        items = sample_items(workload.items_per_request, count, _child(seed, 1))
    key = None
    if workload.keys is not None:
        key = sample_keys(workload.keys, arrivals, stream, _child(seed, 2))
    return Requests(
        arrival_ms=np.ascontiguousarray(stream.arrival_ms, dtype=np.float64),
        items=items,
        key=key,
        warnings=stream.warnings,
    )


def offered_rate_rps(workload) -> float | None:
    """Mean offered request rate (requests/s) of the workload's arrivals; None for closed loop."""
    from simlat.workload.arrivals import RATES

    return RATES[type(workload.arrivals)](workload.arrivals)


__all__ = ["Requests", "generate", "offered_rate_rps"]
