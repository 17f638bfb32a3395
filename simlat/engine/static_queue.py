"""A batch queue whose members are known up front: the engine's fast path.

Used for one shared queue, and for per-replica queues when routing does not depend on state
(round robin, random): every queue then sees a fixed, sorted list of arrivals and serves it with
its replicas, independently of the other queues.

The queue is one SimPy process that wakes once per dispatched batch. A batch's membership is a
contiguous slice of the queue's arrivals, found with ``bisect`` (no per-request Python work); the
per-request columns are expanded from the per-batch log with numpy after the run. Replicas are
a heap of free times: a batch goes to the replica that is free first (ties: lowest index).

Single server without batching is the FIFO recursion ``done_n = max(arrival_n, done_{n-1}) +
service_n``, evaluated in one tight loop.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right

import numpy as np

from simlat.engine.batching import AdaptiveWindow, BatchPolicy
from simlat.engine.log import BatchLog
from simlat.engine.service import Sampler


class StaticQueue:
    """One queue: its requests (global ids ``ids``, sorted arrivals) served by ``replicas``.

    ``items`` is None when every request has one item (then batch items = batch size).
    """

    def __init__(
        self,
        ids: np.ndarray,
        arrival_ms: np.ndarray,
        items: np.ndarray | None,
        replicas: list[int],
        policy: BatchPolicy,
        sampler: Sampler,
    ):
        self.ids = ids
        self.arrival = arrival_ms
        self.items = items
        self.replicas = replicas
        self.policy = policy
        self.sampler = sampler
        self.pad = policy.padder()
        self._starts: list[int] = []
        self._disp: list[float] = []
        self._serv: list[float] = []
        self._repl: list[int] = []
        self._tref: list[float] = []

    # -- SimPy process -------------------------------------------------------------------------
    def process(self, env):
        """The batcher-and-servers process: one timeout per dispatched batch."""
        if len(self.arrival) == 0:
            return
        p = self.policy
        if p.max_batch == 1 and len(self.replicas) == 1 and not p.adaptive and self.pad is None:
            self._single_fifo()
            yield env.timeout(max(0.0, float(self._disp[-1] + self._serv[-1]) - env.now))
            return
        yield from (self._on_close(env) if p.on_close else self._on_free(env))

    def _batch_items(self, cum, j: int, e: int) -> int:
        k = e - j if cum is None else cum[e] - cum[j]
        return self.pad(k) if self.pad is not None else k

    def _on_free(self, env):
        arr = self.arrival.tolist()
        n = len(arr)
        cum = None if self.items is None else [0, *np.cumsum(self.items).tolist()]
        B, W = self.policy.max_batch, self.policy.max_wait_ms
        aw = AdaptiveWindow(self.policy) if self.policy.adaptive else None
        free = [(0.0, r) for r in self.replicas]
        heapq.heapify(free)
        sampler, pad = self.sampler, self.pad
        starts, disp, serv, repl, tref = self._starts, self._disp, self._serv, self._repl, self._tref
        pop, push, timeout = heapq.heappop, heapq.heappush, env.timeout
        last = 0.0
        j = 0
        while j < n:
            tf, r = pop(free)
            t = tf if tf > last else last
            aj = arr[j]
            if aw is not None:
                u = t if t > aj else aj
                W = aw.window(u, bisect_right(arr, u, j))
            hi = j + B
            if hi > n:
                hi = n
            close = aj + W
            if hi - j == B and arr[hi - 1] < close:
                close = arr[hi - 1]
            d = t if t > close else close
            e = bisect_right(arr, d, j, hi)
            k = e - j if cum is None else cum[e] - cum[j]
            s = sampler(pad(k) if pad is not None else k)
            starts.append(j)
            disp.append(d)
            serv.append(s)
            repl.append(r)
            tref.append(t)
            push(free, (d + s, r))
            last = d
            j = e
            now = env.now
            if d > now:
                yield timeout(d - now)

    def _on_close(self, env):
        arr = self.arrival.tolist()
        n = len(arr)
        cum = None if self.items is None else [0, *np.cumsum(self.items).tolist()]
        B, W = self.policy.max_batch, self.policy.max_wait_ms
        aw = AdaptiveWindow(self.policy) if self.policy.adaptive else None
        free = [(0.0, r) for r in self.replicas]
        heapq.heapify(free)
        sampler, pad = self.sampler, self.pad
        starts, disp, serv, repl, tref = self._starts, self._disp, self._serv, self._repl, self._tref
        pop, push, timeout = heapq.heappop, heapq.heappush, env.timeout
        j = 0
        while j < n:
            aj = arr[j]
            if aw is not None:
                W = aw.window(aj, bisect_right(arr, aj, j))
            hi = j + B
            if hi > n:
                hi = n
            close = aj + W
            if hi - j == B and arr[hi - 1] < close:
                close = arr[hi - 1]
            e = bisect_right(arr, close, j, hi)
            tf, r = pop(free)
            d = tf if tf > close else close
            k = e - j if cum is None else cum[e] - cum[j]
            s = sampler(pad(k) if pad is not None else k)
            starts.append(j)
            disp.append(d)
            serv.append(s)
            repl.append(r)
            tref.append(close)
            push(free, (d + s, r))
            j = e
            now = env.now
            if d > now:
                yield timeout(d - now)

    def _single_fifo(self) -> None:
        """One server, no batching: the FIFO recursion ``d = max(arrival, previous done)``."""
        sampler = self.sampler
        items = [1] * len(self.arrival) if self.items is None else self.items.tolist()
        serv = [sampler(k) for k in items]
        disp = []
        append = disp.append
        done = 0.0
        for a, s in zip(self.arrival.tolist(), serv, strict=True):
            d = a if a > done else done
            append(d)
            done = d + s
        n = len(disp)
        self._starts = np.arange(n)
        self._disp = disp
        self._serv = serv
        self._repl = np.full(n, self.replicas[0])
        # on_free: the server became available to request n at max(arrival, previous done);
        # on_close: a batch of one closes at its arrival
        self._tref = self.arrival if self.policy.on_close else disp

    # -- results -------------------------------------------------------------------------------
    def log_into(self, log: BatchLog) -> None:
        """Append this queue's batches to ``log``."""
        starts = np.asarray(self._starts, dtype=np.int64)
        if len(starts) == 0:
            return
        sizes = np.diff(np.append(starts, len(self.ids)))
        log.add(
            members=self.ids,
            sizes=sizes,
            dispatch=np.asarray(self._disp, dtype=float),
            service=np.asarray(self._serv, dtype=float),
            replica=np.asarray(self._repl, dtype=np.int64),
            tref=np.asarray(self._tref, dtype=float),
        )
