"""The flat per-request record table and the result of one simulation.

One row per request (Ciw's DataRecord, as numpy columns). Times are ms from the start of the run.

- ``arrival_ms``: when the request reached the service.
- ``dispatch_ms``: when its batch started service (NaN if dropped or served by the cache).
- ``batch_id``, ``batch_size`` (requests in the batch), ``items`` (the request's own items),
  ``replica`` (-1 when never assigned).
- ``batch_wait_ms`` + ``queue_wait_ms`` = ``dispatch_ms - arrival_ms``: the split is defined by the
  batcher (see :mod:`simlat.engine.batching`).
- ``service_ms``: the batch's service time; ``done_ms = dispatch_ms + service_ms``.
- ``overhead_ms``: network round trip + serialization (outside the queue).
- ``cache_ms``: time spent in cache lookups (0 without a cache).
- ``reply_ms``: with a serving stack (``frontend``), the wait for its loop after the batch (or the
  cache lookup) and the reply's own work; 0 without one. With an ``event_loop`` frontend whose
  replica is held for the loop's mean wait (``slowdown_includes_loop_wait: false``) it can be
  negative: that mean was already counted in ``service_ms``.
- ``latency_ms = done_ms - arrival_ms + overhead_ms`` (NaN if dropped), which equals
  ``queue_wait_ms + batch_wait_ms + service_ms + cache_ms + reply_ms + overhead_ms`` for every
  completed request: every part of the latency has a column.
- ``dropped``: rejected at arrival (queue full) or timed out before dispatch.
- ``key``, ``l1_hit``, ``l2_hit``: cache key (-1 without keys) and where it hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

COLUMNS = (
    "arrival_ms",
    "dispatch_ms",
    "batch_id",
    "batch_size",
    "items",
    "replica",
    "queue_wait_ms",
    "batch_wait_ms",
    "service_ms",
    "overhead_ms",
    "cache_ms",
    "reply_ms",
    "done_ms",
    "latency_ms",
    "dropped",
    "key",
    "l1_hit",
    "l2_hit",
)


@dataclass
class Records:
    """Per-request columns (all numpy arrays of the same length)."""

    arrival_ms: np.ndarray
    dispatch_ms: np.ndarray
    batch_id: np.ndarray
    batch_size: np.ndarray
    items: np.ndarray
    replica: np.ndarray
    queue_wait_ms: np.ndarray
    batch_wait_ms: np.ndarray
    service_ms: np.ndarray
    overhead_ms: np.ndarray
    cache_ms: np.ndarray
    done_ms: np.ndarray
    latency_ms: np.ndarray
    dropped: np.ndarray
    key: np.ndarray
    l1_hit: np.ndarray
    l2_hit: np.ndarray
    reply_ms: np.ndarray = None  # type: ignore[assignment]  # zeros unless a serving stack sets it

    def __post_init__(self) -> None:
        if self.reply_ms is None:
            self.reply_ms = np.zeros(len(self.arrival_ms))

    def __len__(self) -> int:
        return len(self.arrival_ms)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name, in the documented order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_frame(self):
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.columns())


@dataclass(frozen=True)
class CacheCounts:
    """Per request (arrays in request order): cache lookups made (its items with ``per_item``,
    else 1) and how many of them L1 and L2 answered. Hit ratios are sums of these."""

    lookups: np.ndarray
    l1_items: np.ndarray
    l2_items: np.ndarray


@dataclass
class SimResult:
    """One simulated run: the per-request records and fleet-level facts.

    ``busy_ms``: time each replica spent serving batches. ``end_ms``: time of the last completion.
    ``capacity_rps``: the engine's estimate of the fleet's maximum throughput, in arriving requests
    per second (see :func:`simlat.engine.simulation.capacity_rps`; with a cache, divided by the
    fraction of requests that miss it). ``offered_rps``: the arrival rate of the requests
    (None for a closed loop). ``n_replicas``: replicas in the fleet. ``cache``: lookup counts per
    request (None without a cache). ``warnings``: notes for the summary (a cache still warming up).
    ``tenants``: the results of the other models on the same GPUs (``colocated``), by name.
    """

    records: Records
    busy_ms: np.ndarray
    end_ms: float
    capacity_rps: float
    offered_rps: float | None
    n_replicas: int
    cache: CacheCounts | None = None
    warnings: list[str] = field(default_factory=list)
    tenants: dict[str, SimResult] = field(default_factory=dict)
    """The other models that shared the run's GPUs (``colocated``), by name: their own results."""


def write_records(results: list[SimResult], path: str | Path) -> None:
    """Write the records of ``results`` to one Parquet file (a ``replication`` column if several)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for i, res in enumerate(results):
        cols = res.records.columns()
        if len(results) > 1:
            cols = {"replication": np.full(len(res.records), i, dtype=np.int32), **cols}
        tables.append(pa.table(cols))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    pq.write_table(table, str(path))
