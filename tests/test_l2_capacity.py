"""The L2 (Redis) has a capacity: lookups queue FCFS at it, and a plan that overloads it says so."""

from __future__ import annotations

import numpy as np
import pytest

import simlat
from simlat.engine.l2_queue import fcfs_wait_ms


def test_fcfs_wait_matches_lindley_recursion():
    rng = np.random.default_rng(1)
    a = np.cumsum(rng.exponential(1.0, 5000))
    s = rng.exponential(0.8, 5000)
    w = np.zeros(len(a))
    for i in range(1, len(a)):
        w[i] = max(0.0, w[i - 1] + s[i - 1] - (a[i] - a[i - 1]))
    assert np.allclose(fcfs_wait_ms(a, s), w, atol=1e-9)


def test_md1_mean_wait():
    """Poisson lookups at a deterministic server, rho 0.8: mean wait rho * s / (2 (1 - rho)) = 2 s."""
    rng = np.random.default_rng(2)
    a = np.cumsum(rng.exponential(1.0 / 0.8, 400_000))
    w = fcfs_wait_ms(a, np.ones(len(a)))
    assert w[20_000:].mean() == pytest.approx(2.0, rel=0.05)




def _experiment(max_ops):
    from simlat.config import parse_experiment

    l2 = {"capacity": 10_000, "lookup_ms": {"kind": "constant", "value": 0.3}}
    if max_ops:
        l2["max_ops_per_s"] = max_ops
    return parse_experiment({
        "name": "l2cap",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 5000.0},
                     "keys": {"kind": "zipf", "exponent": 0.9, "key_space": 1_000_000}},
        "fleet": {"replicas": 4},
        "service": {"kind": "deterministic", "ms": 0.5},
        "cache": {"l2": l2},
        "slo": {"latency_ms": 30, "target_rate_rps": 5000.0},
        "run": {"requests": 30_000, "seed": 1},
    })


def test_an_overloaded_redis_is_flagged_and_slows_lookups():
    free = simlat.run(_experiment(None), requests=30_000).summary
    assert any("capacity is unknown" in w for w in free.warnings)
    tight = simlat.run(_experiment(5500.0), requests=30_000).summary
    assert any("needs more Redis" in w for w in tight.warnings)
    assert tight.cache_ms > free.cache_ms + 0.1
    roomy = simlat.run(_experiment(1e6), requests=30_000).summary
    assert not any("Redis" in w for w in roomy.warnings)
    assert roomy.cache_ms == pytest.approx(free.cache_ms, abs=0.01)
