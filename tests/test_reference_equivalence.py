"""The fast engine and the naive one-process-per-request model give identical per-request latencies.

Same arrivals, same seed (hence the same service draws in the same dispatch order): the latencies
must agree to floating-point rounding, request by request.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlat.config import parse_experiment
from simlat.engine import simulate
from simlat.engine.reference import simulate_naive
from simlat.workload import Requests

NOISY_AFFINE = {
    "kind": "affine",
    "base_ms": 1.0,
    "per_item_ms": 0.05,
    "noise": {"kind": "gamma", "mean": 1.0, "cv": 0.3},
}


def experiment(batching, service, fleet=None):
    data = {
        "name": "equivalence",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 1000.0}},
        "batching": batching,
        "service": service,
        "slo": {"latency_ms": 10.0},
        "overheads": {"network_rtt_ms": {"kind": "exponential", "mean": 0.2}},
    }
    if fleet:
        data["fleet"] = fleet
    return parse_experiment(data)


def poisson(rate_per_ms: float, n: int, seed: int, max_items: int | None = None) -> Requests:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate_per_ms, n))
    items = np.ones(n, dtype=np.int64) if max_items is None else rng.integers(1, max_items + 1, n)
    return Requests(arrival_ms=arrival, items=items)


def assert_same(exp, req, seed=11):
    fast = simulate(exp, req, seed=np.random.SeedSequence(seed)).records.latency_ms
    naive = simulate_naive(exp, req, seed=np.random.SeedSequence(seed))
    assert np.all(np.isfinite(naive))
    np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=0)


@pytest.mark.parametrize("replicas,rate", [(1, 0.85), (3, 2.6)])
@pytest.mark.parametrize(
    "service", [{"kind": "exponential", "mean_ms": 1.0}, {"kind": "deterministic", "ms": 1.0}]
)
def test_no_batching_fifo_c_servers(replicas, rate, service):
    assert_same(experiment({"kind": "none"}, service, {"replicas": replicas}), poisson(rate, 6000, seed=1))


@pytest.mark.parametrize("dispatch", ["on_free", "on_close"])
@pytest.mark.parametrize("replicas,rate", [(1, 10.0), (2, 21.0)])
def test_dynamic_batching_shared_queue(dispatch, replicas, rate):
    batching = {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0, "dispatch": dispatch}
    assert_same(experiment(batching, NOISY_AFFINE, {"replicas": replicas}), poisson(rate, 20000, seed=2))


@pytest.mark.parametrize("dispatch", ["on_free", "on_close"])
def test_dynamic_batching_with_fanout_and_buckets(dispatch):
    batching = {
        "kind": "dynamic",
        "max_batch_size": 8,
        "max_wait_ms": 1.0,
        "dispatch": dispatch,
        "buckets": [4, 8, 16, 32, 64],
    }
    assert_same(experiment(batching, NOISY_AFFINE), poisson(4.0, 10000, seed=3, max_items=4))


@pytest.mark.parametrize("balancer", ["round_robin", "random", "join_shortest_queue", "power_of_two"])
@pytest.mark.parametrize(
    "batching",
    [
        {"kind": "none"},
        {"kind": "dynamic", "max_batch_size": 16, "max_wait_ms": 1.5, "dispatch": "on_free"},
        {"kind": "dynamic", "max_batch_size": 16, "max_wait_ms": 1.5, "dispatch": "on_close"},
    ],
)
def test_per_replica_queues(balancer, batching):
    fleet = {"replicas": 4, "queue": "per_replica", "balancer": balancer}
    if batching["kind"] == "none":
        exp, req = (
            experiment(batching, {"kind": "exponential", "mean_ms": 1.0}, fleet),
            poisson(3.0, 8000, seed=4),
        )
    else:
        exp, req = experiment(batching, NOISY_AFFINE, fleet), poisson(30.0, 20000, seed=5)
    assert_same(exp, req)


def test_the_check_can_fail():
    """A different seed draws different service times: the comparison notices."""
    exp = experiment({"kind": "none"}, {"kind": "exponential", "mean_ms": 1.0})
    req = poisson(0.5, 500, seed=6)
    fast = simulate(exp, req, seed=np.random.SeedSequence(1)).records.latency_ms
    naive = simulate_naive(exp, req, seed=np.random.SeedSequence(2))
    assert not np.allclose(fast, naive, rtol=1e-12, atol=0)
