"""The per-batch log the queues write, and its expansion into per-request columns.

Queues record one row per batch (dispatch time, service time, replica and a reference time for
the wait split) plus the ids of its members; :meth:`BatchLog.expand` turns that into the
per-request columns with ``np.repeat`` and fancy indexing, after the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlat.workload import Requests


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

        Batch ids are numbered in dispatch order (ties by log order). Also returns, under
        ``busy_replica`` and ``busy_service``, each batch's replica and service time.
        """
        members = np.concatenate(self._members) if self._members else np.zeros(0, dtype=np.int64)
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int64)
        disp = self._cat("dispatch", float)
        serv = self._cat("service", float)
        repl = self._cat("replica", np.int64)
        tref = self._cat("tref", float)
        if len(self._members) == 1 and np.all(disp[1:] >= disp[:-1]):
            bid = np.arange(len(disp), dtype=np.int64)  # one queue: already in dispatch order
        else:
            order = np.argsort(disp, kind="stable")
            bid = np.empty(len(disp), dtype=np.int64)
            bid[order] = np.arange(len(disp))

        d = np.repeat(disp, sizes)
        s = np.repeat(serv, sizes)
        t = np.repeat(tref, sizes)
        identity = len(members) == n and (n == 0 or (members[0] == 0 and np.all(np.diff(members) == 1)))
        a = arrival if identity else arrival[members]
        if on_close:
            bw = t - a
            qw = np.subtract(d, t, out=t)
        else:
            qw = np.subtract(t, a)
            np.maximum(qw, 0.0, out=qw)
            bw = np.subtract(d, np.maximum(a, t, out=t), out=t)
        cols = {
            "dispatch_ms": d,
            "batch_id": np.repeat(bid, sizes),
            "batch_size": np.repeat(sizes, sizes),
            "replica": np.repeat(repl, sizes),
            "queue_wait_ms": qw,
            "batch_wait_ms": bw,
            "service_ms": s,
            "done_ms": d + s,
        }
        if not identity:
            for name, v in cols.items():
                full = np.full(n, -1 if v.dtype.kind == "i" else np.nan, dtype=v.dtype)
                if name == "batch_size":
                    full[:] = 0
                full[members] = v
                cols[name] = full
        cols["busy_replica"] = repl
        cols["busy_service"] = serv
        return cols


@dataclass
class PathRun:
    """What an engine path (:mod:`simlat.engine.paths`) hands back to
    :func:`simlat.engine.simulation.simulate`: the batches, and per request of the queues' input,
    whether it was dropped."""

    requests: Requests
    """The requests the queues saw (in a closed loop: those the clients sent)."""
    log: BatchLog
    end_ms: float
    dropped: np.ndarray
    routed: np.ndarray | None = None
    """Replica each request was routed to, when the path knows it for requests dropped before any batch."""
    overhead: np.ndarray | None = None
    """Per-request overheads when the path drew them (closed loop), else None."""
    warnings: tuple[str, ...] = ()
    """What the path approximated (the shared-GPU path's extrapolated slowdowns)."""
