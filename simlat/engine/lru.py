"""Exact LRU caches with TTL over a key stream, compiled: tens of millions of lookups per second.

An LRU cache with write-time TTL and lazy expiry, as a hash table (open addressing, linear probing,
backward-shift deletion) over a doubly linked recency list held in numpy arrays. One lookup of
key k at time t:

- k present and ``t - written[k] < ttl``: hit; k becomes most recently used.
- k present but expired: miss; the entry is rewritten (``written[k] = t``) and becomes most recent.
- k absent: miss; if full, the least recently used entry (expired or not) is evicted; k is
  inserted with ``written[k] = t`` as most recent.

So a miss is written back at the lookup's own time, and an expired entry keeps its slot until it is
looked up again or evicted (lazy expiry, as Redis does between its active-expiry sweeps). This is
step for step what a ``collections.OrderedDict`` LRU does (the tests replay one against it).

:func:`stack_distances` gives, for every access, how many other distinct keys were used since the
same key's previous access: without TTL an LRU of capacity C hits exactly when that is < C, so one
pass gives the hit ratio at every capacity.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _home(key, shift):
    return np.int64((key * _GOLDEN) >> shift)


@njit(cache=True)
def _probe(table, node_key, key, shift, mask):
    """Slot holding ``key``, or the empty slot where it would go."""
    h = _home(key, shift)
    while True:
        nd = table[h]
        if nd < 0 or node_key[nd] == key:
            return h
        h = (h + 1) & mask


@njit(cache=True)
def _delete_slot(table, node_key, slot, shift, mask):
    """Empty ``slot`` and shift later entries of its probe run back (no tombstones)."""
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        nd = table[j]
        if nd < 0:
            break
        home = _home(node_key[nd], shift)
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if not stays:
            table[i] = nd
            i = j
    table[i] = -1


@njit(cache=True)
def _access(keys, times, ttl, capacity, table, node_key, written, prev, nxt, state, hit):
    """Run ``keys`` (uint64) at ``times`` through the cache; ``hit[i]`` gets the outcome.

    ``state`` = [head (most recent), tail (least recent), entries]; -1 ends the list.
    """
    mask = len(table) - 1
    shift = np.uint64(64 - int(np.log2(len(table))))
    head, tail, count = state[0], state[1], state[2]
    for i in range(len(keys)):
        k = keys[i]
        t = times[i]
        slot = _probe(table, node_key, k, shift, mask)
        nd = table[slot]
        if nd >= 0:
            if t - written[nd] < ttl:
                hit[i] = True
            else:
                hit[i] = False
                written[nd] = t
            if nd != head:
                p = prev[nd]
                n = nxt[nd]
                nxt[p] = n
                if n >= 0:
                    prev[n] = p
                else:
                    tail = p
                prev[nd] = -1
                nxt[nd] = head
                prev[head] = nd
                head = nd
            continue
        hit[i] = False
        if count < capacity:
            nd = count
            count += 1
        else:
            nd = tail
            tail = prev[nd]
            if tail >= 0:
                nxt[tail] = -1
            else:
                head = -1
            _delete_slot(table, node_key, _probe(table, node_key, node_key[nd], shift, mask), shift, mask)
            slot = _probe(table, node_key, k, shift, mask)
        table[slot] = nd
        node_key[nd] = k
        written[nd] = t
        prev[nd] = -1
        nxt[nd] = head
        if head >= 0:
            prev[head] = nd
        else:
            tail = nd
        head = nd
    state[0], state[1], state[2] = head, tail, count


class LRUCache:
    """One cache level's state; :meth:`access` runs lookups in time order and can be called in chunks.

    ``max_entries`` (optional): an upper bound on the distinct keys that will ever be looked up,
    so memory follows min(capacity, max_entries) rather than the capacity alone.
    """

    def __init__(self, capacity: int, ttl_ms: float | None = None, max_entries: int | None = None):
        if capacity < 1:
            raise ValueError(f"capacity: {capacity!r} must be >= 1")
        self.capacity = int(capacity)
        self.ttl_ms = np.inf if ttl_ms is None else float(ttl_ms)
        size = self.capacity if max_entries is None else max(1, min(self.capacity, int(max_entries)))
        slots = 1 << max(4, int(2 * size - 1).bit_length())
        self._table = np.full(slots, -1, dtype=np.int64)
        self._key = np.zeros(size, dtype=np.uint64)
        self._written = np.zeros(size, dtype=np.float64)
        self._prev = np.full(size, -1, dtype=np.int64)
        self._next = np.full(size, -1, dtype=np.int64)
        self._state = np.array([-1, -1, 0], dtype=np.int64)
        self._looked_up = 0

    def __len__(self) -> int:
        return int(self._state[2])

    def access(self, keys: np.ndarray, times_ms: np.ndarray) -> np.ndarray:
        """Look up ``keys`` (int64) at ``times_ms`` (non-decreasing); returns the hit flags (bool)."""
        keys = np.ascontiguousarray(keys, dtype=np.int64).view(np.uint64)
        times = np.ascontiguousarray(times_ms, dtype=np.float64)
        self._looked_up += len(keys)
        if self.capacity > len(self._key) and self._looked_up > len(self._key):
            raise ValueError(f"max_entries={len(self._key)} is below the {self._looked_up} lookups made so far")
        hit = np.empty(len(keys), dtype=np.bool_)
        _access(keys, times, self.ttl_ms, min(self.capacity, len(self._key)), self._table, self._key,
                self._written, self._prev, self._next, self._state, hit)
        return hit


@njit(cache=True)
def _stack_distances(ids, n_ids):
    m = len(ids)
    tree = np.zeros(m + 1, dtype=np.int64)
    last = np.full(n_ids, -1, dtype=np.int64)
    out = np.empty(m, dtype=np.int64)
    for i in range(m):
        k = ids[i]
        p = last[k]
        if p < 0:
            out[i] = -1
        else:
            # marks (last positions of keys) in (p, i) = prefix(i - 1) - prefix(p)
            s = 0
            j = i  # prefix over 0..i-1 -> Fenwick index i
            while j > 0:
                s += tree[j]
                j -= j & (-j)
            j = p + 1
            while j > 0:
                s -= tree[j]
                j -= j & (-j)
            out[i] = s
            j = p + 1
            while j <= m:
                tree[j] -= 1
                j += j & (-j)
        j = i + 1
        while j <= m:
            tree[j] += 1
            j += j & (-j)
        last[k] = i
    return out


def stack_distances(keys: np.ndarray) -> np.ndarray:
    """LRU stack distance of every access (distinct other keys since its previous access; -1 if first)."""
    _, ids = np.unique(np.asarray(keys), return_inverse=True)
    ids = ids.astype(np.int64).ravel()
    return _stack_distances(ids, int(ids.max()) + 1 if len(ids) else 0)
