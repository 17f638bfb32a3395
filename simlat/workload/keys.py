"""Request keys for the prediction caches: Zipf popularity, or a replayed trace's key column.

Zipf: key ``k`` (0-based; key 0 is the most popular) has probability proportional to
``(k + 1) ** -exponent`` over ``key_space`` keys; exponent 0 is uniform. Sampling: the first ``HEAD`` ranks
exactly, by Walker's alias method (O(1) per key: one uniform, two table lookups; the tables are
built once per (exponent, key_space) and cached), the rest by inverse CDF through the inverse of the continuous density ``x ** -exponent`` on ``[HEAD + 0.5, key_space + 0.5]``
rounded to the nearest rank. That tail approximation gives rank ``k`` the mass of
``x ** -s`` integrated over ``[k - 0.5, k + 0.5]``, which differs from ``k ** -s`` by a relative
``s (s + 1) / (24 k^2)`` (below 1e-9 past the head), so memory stays ``HEAD`` floats even for
``key_space`` = 1e8 or more.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from simlat.config.workload import Trace, TraceKeys, ZipfKeys
from simlat.errors import SimlatError

HEAD = 1 << 16


@lru_cache(maxsize=16)
def _head_cdf(exponent: float, head: int) -> np.ndarray:
    """Cumulative (unnormalised) weights of ranks 1..head."""
    w = np.arange(1, head + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(w)
    cdf.setflags(write=False)
    return cdf


def _power_integral(exponent: float, a: float, b: float) -> float:
    """Integral of x ** -exponent over [a, b]."""
    if abs(exponent - 1.0) < 1e-12:
        return float(np.log(b / a))
    e = 1.0 - exponent
    return float((b**e - a**e) / e)


def _tail_inverse(exponent: float, a: float, b: float, v: np.ndarray) -> np.ndarray:
    """x in [a, b] with a fraction v of the integral of x ** -exponent over [a, b] below it."""
    if abs(exponent - 1.0) < 1e-12:
        return a * (b / a) ** v
    e = 1.0 - exponent
    return (a**e + v * (b**e - a**e)) ** (1.0 / e)


def _masses(cfg: ZipfKeys) -> tuple[np.ndarray, float]:
    """Head cumulative weights and the tail's (approximate) weight."""
    head = min(cfg.key_space, HEAD)
    tail = 0.0
    if cfg.key_space > head:
        tail = _power_integral(cfg.exponent, head + 0.5, cfg.key_space + 0.5)
    return _head_cdf(float(cfg.exponent), head), tail


def zipf_probability(cfg: ZipfKeys, keys: np.ndarray) -> np.ndarray:
    """Probability of each 0-based key under the sampler (for cache theory, e.g. Che's approximation)."""
    keys = np.asarray(keys)
    if cfg.exponent == 0:
        return np.full(keys.shape, 1.0 / cfg.key_space)
    cdf, tail = _masses(cfg)
    rank = keys.astype(np.float64) + 1.0
    head_w = rank**-cfg.exponent
    tail_w = np.array([_power_integral(cfg.exponent, r - 0.5, r + 0.5) for r in np.atleast_1d(rank)]).reshape(rank.shape)
    w = np.where(rank <= len(cdf), head_w, tail_w)
    return w / (cdf[-1] + tail)


def zipf_groups(cfg: ZipfKeys, rel_width: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """The sampler's popularity law in compact form: ``(p, count)``, ``count[j]`` keys of probability
    ``p[j]`` each, with ``sum(p * count) == 1``.

    The head ranks are one group each (exact); tail ranks are grouped into runs whose end differs
    from their start by at most ``rel_width`` (relative), each key given the run's mean probability.
    A sum of any smooth function of p over all keys (Che's approximation of an LRU's hit ratio,
    for instance) then costs about 80,000 terms instead of ``key_space``.
    """
    if cfg.exponent == 0:
        return np.array([1.0 / cfg.key_space]), np.array([cfg.key_space], dtype=np.int64)
    cdf, tail = _masses(cfg)
    norm = float(cdf[-1]) + tail
    p = np.diff(cdf, prepend=0.0) / norm
    count = np.ones(len(cdf), dtype=np.int64)
    head = len(cdf)
    if cfg.key_space > head:
        n_edges = int(np.ceil(np.log((cfg.key_space + 1) / (head + 1)) / np.log1p(rel_width))) + 1
        edges = np.unique(np.rint(np.geomspace(head + 1, cfg.key_space + 1, max(n_edges, 2))).astype(np.int64))
        lo, hi = edges[:-1], edges[1:]  # ranks [lo, hi)
        e = 1.0 - cfg.exponent
        a, b = lo - 0.5, hi - 0.5
        mass = np.log(b / a) if abs(e) < 1e-12 else (b**e - a**e) / e
        p = np.concatenate([p, mass / (hi - lo) / norm])
        count = np.concatenate([count, hi - lo])
    return p, count


@lru_cache(maxsize=16)
def _alias(exponent: float, key_space: int) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables over the head ranks plus one last entry standing for the tail."""
    cdf, tail = _masses(ZipfKeys(exponent=exponent, key_space=key_space))
    w = np.append(np.diff(cdf, prepend=0.0), tail)
    if tail == 0:
        w = w[:-1]
    m = len(w)
    scaled = (w * (m / w.sum())).tolist()
    prob = [1.0] * m
    alias = list(range(m))
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s, g = small.pop(), large[-1]
        prob[s], alias[s] = scaled[s], g
        scaled[g] += scaled[s] - 1.0
        if scaled[g] < 1.0:
            small.append(large.pop())
    prob_a, alias_a = np.array(prob), np.array(alias, dtype=np.int64)
    prob_a.setflags(write=False)
    alias_a.setflags(write=False)
    return prob_a, alias_a


def zipf(cfg: ZipfKeys, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` int64 keys in [0, key_space)."""
    if cfg.exponent == 0:
        return rng.integers(0, cfg.key_space, size=n, dtype=np.int64)
    prob, alias = _alias(float(cfg.exponent), cfg.key_space)
    m = len(prob)
    u = rng.random(n)
    u *= m
    keys = u.astype(np.int64)
    u -= keys  # the fraction is a fresh uniform for the alias coin
    keys = np.where(u < prob[keys], keys, alias[keys])
    head = min(cfg.key_space, HEAD)
    in_tail = np.flatnonzero(keys == head)
    if cfg.key_space > head and len(in_tail):
        x = _tail_inverse(cfg.exponent, head + 0.5, cfg.key_space + 0.5, rng.random(len(in_tail)))
        keys[in_tail] = np.clip(np.floor(x + 0.5), head + 1, cfg.key_space).astype(np.int64) - 1
    return keys


def trace_keys(arrivals, rows: np.ndarray | None) -> np.ndarray:
    """The trace's key column, row by row as replayed."""
    from simlat.workload import trace

    if not isinstance(arrivals, Trace) or arrivals.key_column is None or rows is None:
        raise SimlatError(
            "workload.keys.kind: 'trace' needs workload.arrivals.kind: trace with a key_column set"
        )
    keys = trace.load(arrivals).keys
    assert keys is not None  # the trace has a key column
    return np.ascontiguousarray(keys[rows])


def sample_keys(keys: ZipfKeys | TraceKeys, arrivals, stream, rng: np.random.Generator) -> np.ndarray:
    """Key per request of ``stream``."""
    if isinstance(keys, ZipfKeys):
        return zipf(keys, len(stream.arrival_ms), rng)
    return trace_keys(arrivals, stream.rows)
