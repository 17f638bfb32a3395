"""Batching policies: when a batch is dispatched and which waiting requests it holds.

All policies reduce to a maximum batch size ``B`` (requests), a wait window ``W`` (ms) and a
dispatch rule (``config.serving.DynamicBatching`` documents both rules):

- ``none``: ``B = 1``, ``W = 0``: every request is its own batch.
- ``dynamic`` with ``dispatch: on_free`` (Triton): when a replica is free at ``t`` and the oldest
  waiting request arrived at ``a_j``, the batch is dispatched at
  ``d = max(t, min(a_j + W, arrival of the B-th waiting request))`` and holds every waiting request
  that arrived by ``d``, up to ``B``. Wait split: ``queue_wait = max(0, t - arrival)`` (waiting while
  no replica was free for it), ``batch_wait = d - max(arrival, t)`` (<= W).
- ``dynamic`` with ``dispatch: on_close``: the batch opened by request ``j`` closes at
  ``c = min(a_j + W, arrival of the B-th request)`` whatever the servers do and holds the requests
  that arrived by ``c`` (up to ``B``); closed batches queue FIFO for replicas and start at
  ``d = max(c, first free replica)``. Wait split: ``batch_wait = c - arrival`` (<= W),
  ``queue_wait = d - c``.
- ``adaptive``: as ``dynamic`` with ``W`` chosen per batch when it starts forming (at
  ``max(t, a_j)`` for on_free, ``a_j`` for on_close), from an exponentially weighted arrival-rate
  estimate ``r`` of the queue (``r <- r * exp(-dt / window_ms) + arrivals / window_ms``):
  ``W = min_wait + (max_wait - min_wait) * min(1, r * max_wait / B)``.
- ``buckets``: a batch's items are padded up to the next allowed size before its service time is
  drawn; a batch with more items than the largest bucket is an error.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from simlat.config.serving import AdaptiveBatching, Batching, DynamicBatching, NoBatching
from simlat.errors import SimlatError


@dataclass(frozen=True)
class BatchPolicy:
    """The batching config reduced to what the engine needs."""

    max_batch: int
    max_wait_ms: float
    on_close: bool
    adaptive: bool = False
    min_wait_ms: float = 0.0
    window_ms: float = 100.0
    buckets: tuple[int, ...] | None = None

    @classmethod
    def from_config(cls, cfg: Batching) -> BatchPolicy:
        """Build from ``experiment.batching``."""
        if isinstance(cfg, NoBatching):
            return cls(max_batch=1, max_wait_ms=0.0, on_close=False)
        buckets = tuple(cfg.buckets) if cfg.buckets else None
        if isinstance(cfg, DynamicBatching):
            return cls(
                cfg.max_batch_size, float(cfg.max_wait_ms), cfg.dispatch == "on_close", buckets=buckets
            )
        if isinstance(cfg, AdaptiveBatching):
            return cls(
                cfg.max_batch_size,
                float(cfg.max_wait_ms),
                cfg.dispatch == "on_close",
                adaptive=True,
                min_wait_ms=float(cfg.min_wait_ms),
                window_ms=float(cfg.window_ms),
                buckets=buckets,
            )
        raise TypeError(f"unknown batching config {type(cfg).__name__}")

    def padder(self):
        """``items -> padded items`` (identity without buckets); raises past the largest bucket."""
        if self.buckets is None:
            return None
        buckets = list(self.buckets)
        top = buckets[-1]

        def pad(items: int) -> int:
            if items > top:
                raise SimlatError(
                    f"batching.buckets: a batch of {items} items exceeds the largest bucket {top}; "
                    "the largest bucket must hold max_batch_size times the items per request"
                )
            return buckets[bisect_left(buckets, items)]

        return pad


class AdaptiveWindow:
    """The load-adaptive wait window of one queue (see the module docstring)."""

    __slots__ = ("rate", "last_t", "seen", "lo", "span", "fill", "tau")

    def __init__(self, policy: BatchPolicy):
        self.rate = 0.0  # requests per ms
        self.last_t = 0.0
        self.seen = 0
        self.lo = policy.min_wait_ms
        self.span = policy.max_wait_ms - policy.min_wait_ms
        self.fill = policy.max_wait_ms / policy.max_batch
        self.tau = policy.window_ms

    def window(self, t: float, arrived: int) -> float:
        """Update the rate with the arrivals up to ``t`` (``arrived`` in total) and return W."""
        dt = t - self.last_t
        if dt > 0:
            self.rate *= math.exp(-dt / self.tau)
            self.last_t = t
        self.rate += (arrived - self.seen) / self.tau
        self.seen = arrived
        f = self.rate * self.fill
        return self.lo + self.span * (f if f < 1.0 else 1.0)
