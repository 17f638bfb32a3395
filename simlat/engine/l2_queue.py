"""The L2 (Redis) as a server with a capacity: its lookups queue first come, first served.

Redis executes commands one at a time, so it is modelled as one FCFS server that spends
``keys / max_ops_per_s`` seconds on each lookup (an MGET of m keys costs m). A lookup's wait is
Lindley's recursion on the lookups in arrival order, ``W[n+1] = max(0, W[n] + S[n] - (A[n+1] - A[n]))``,
computed without a Python loop as ``U[n] - min(0, min_{k<=n} U[k])`` with ``U`` the running sum of
``S[k] - (A[k+1] - A[k])``. The network round trip (the profile's GET latency) is drawn as before;
only the server's queue is added. The measured GET latency already holds one service time, a
negligible double count at capacities of 10^4-10^6 keys/s.
"""

from __future__ import annotations

import numpy as np

UTILISATION_WARN = 0.8


def capacity_ops_per_s(l2) -> float | None:
    """``l2.max_ops_per_s``, else the Redis profile's measured throughput, else None (unknown)."""
    if l2.max_ops_per_s is not None:
        return float(l2.max_ops_per_s)
    from simlat.config.cache import RedisProfileLatency

    if isinstance(l2.lookup_ms, RedisProfileLatency):
        from simlat.profiles.redis import load_redis_profile

        tp = load_redis_profile(l2.lookup_ms.path, "cache.l2.lookup_ms.path").throughput
        return None if tp is None else float(tp.ops_per_s)
    return None


def fcfs_wait_ms(arrival_ms: np.ndarray, service_ms: np.ndarray) -> np.ndarray:
    """Waiting time of each job at one FCFS server (jobs in arrival order)."""
    a = np.asarray(arrival_ms, float)
    s = np.asarray(service_ms, float)
    if len(a) == 0:
        return np.zeros(0)
    u = np.concatenate([[0.0], np.cumsum(s[:-1] - np.diff(a))])
    return u - np.minimum(np.minimum.accumulate(u), 0.0)


def l2_queue(l2, arrival_ms: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(extra ms per L2 lookup, warnings). ``arrival_ms``: the lookups' times in order; ``keys``:
    keys per lookup."""
    n = len(arrival_ms)
    span_s = (float(arrival_ms[-1]) - float(arrival_ms[0])) / 1000.0 if n > 1 else 0.0
    rate = float(np.sum(keys)) / span_s if span_s > 0 else 0.0
    cap = capacity_ops_per_s(l2)
    if cap is None:
        note = (f"L2 (Redis) receives {rate:,.0f} keys/s and its capacity is unknown: lookups are not queued; "
                "set cache.l2.max_ops_per_s or measure it with simlat calibrate --cache") if rate > 0 else ""
        return np.zeros(n), [note] if note else []
    rho = rate / cap
    warnings = []
    if rho >= UTILISATION_WARN:
        need = int(np.ceil(rho / UTILISATION_WARN))
        warnings.append(
            f"L2 (Redis) at {rho:.0%} of its capacity ({rate:,.0f} of {cap:,.0f} keys/s): this plan needs more Redis "
            f"(about {need} shards to stay under {UTILISATION_WARN:.0%})"
        )
    return fcfs_wait_ms(arrival_ms, np.asarray(keys, float) * 1000.0 / cap), warnings
