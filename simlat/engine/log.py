"""The per-batch log the queues write, and its expansion into per-request columns.

Queues record one row per batch (dispatch time, service time, replica and a reference time for
the wait split) plus the ids of its members; :meth:`BatchLog.expand` turns that into the
per-request columns with ``np.repeat`` and fancy indexing, after the run.
"""

from __future__ import annotations

import numpy as np


class BatchLog:
    """Batches of all queues of one run, appended chunk by chunk."""

    def __init__(self) -> None:
        self._members: list[np.ndarray] = []
        self._sizes: list[np.ndarray] = []
        self._cols: dict[str, list[np.ndarray]] = {"dispatch": [], "service": [], "replica": [], "tref": []}

    def add(self, *, members, sizes, dispatch, service, replica, tref) -> None:
        """Append batches: ``members`` lists the request ids batch after batch, ``sizes`` the counts."""
        self._members.append(np.asarray(members, dtype=np.int64))
        self._sizes.append(np.asarray(sizes, dtype=np.int64))
        for name, v in (("dispatch", dispatch), ("service", service), ("replica", replica), ("tref", tref)):
            self._cols[name].append(np.asarray(v))

    def _cat(self, name: str, dtype) -> np.ndarray:
        parts = self._cols[name]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    def expand(self, n: int, arrival: np.ndarray, on_close: bool) -> dict[str, np.ndarray]:
        """Per-request columns for ``n`` requests; requests in no batch get NaN / -1.

        Batch ids are numbered in dispatch order (ties by log order).
        """
        members = np.concatenate(self._members) if self._members else np.zeros(0, dtype=np.int64)
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int64)
        disp = self._cat("dispatch", float)
        serv = self._cat("service", float)
        repl = self._cat("replica", np.int64)
        tref = self._cat("tref", float)
        order = np.argsort(disp, kind="stable")
        bid = np.empty(len(disp), dtype=np.int64)
        bid[order] = np.arange(len(disp))

        per_batch = np.repeat(np.arange(len(sizes)), sizes)
        out = {
            "dispatch_ms": np.full(n, np.nan),
            "batch_id": np.full(n, -1, dtype=np.int64),
            "batch_size": np.zeros(n, dtype=np.int64),
            "replica": np.full(n, -1, dtype=np.int64),
            "queue_wait_ms": np.full(n, np.nan),
            "batch_wait_ms": np.full(n, np.nan),
            "service_ms": np.full(n, np.nan),
            "done_ms": np.full(n, np.nan),
        }
        d = disp[per_batch]
        s = serv[per_batch]
        t = tref[per_batch]
        a = arrival[members]
        if on_close:
            bw = t - a
            qw = d - t
        else:
            qw = np.maximum(t - a, 0.0)
            bw = d - np.maximum(a, t)
        out["dispatch_ms"][members] = d
        out["batch_id"][members] = bid[per_batch]
        out["batch_size"][members] = sizes[per_batch]
        out["replica"][members] = repl[per_batch]
        out["queue_wait_ms"][members] = qw
        out["batch_wait_ms"][members] = bw
        out["service_ms"][members] = s
        out["done_ms"][members] = d + s
        out["busy_replica"] = repl
        out["busy_service"] = serv
        return out
