"""The routed path (simlat.engine.routed) reproduces the general event path exactly.

Per-replica queues, on_free batching, no admission control: every per-request column must agree
between the routed path and the general SimPy event path (and, for round robin and random, the
static path), including batch ids and ties (arrivals at the same instant, batch timers that fall
on an arrival).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simlat.config import parse_experiment
from simlat.engine import simulate
from simlat.engine.paths import PATHS, choose_path
from simlat.engine.spec import EngineSpec
from simlat.workload import Requests


def runs(exp, req, seed):
    """Records of the routed path, of the event path, and (static balancers) of the static path."""
    spec = EngineSpec.from_experiment(exp)
    assert PATHS["routed"].handles(spec)
    names = ["routed", "event"]
    if PATHS["static"].handles(spec):
        assert choose_path(spec).name == "static"
        names.insert(0, "static")
    else:
        assert choose_path(spec).name == "routed"
    return [simulate(exp, req, seed=np.random.SeedSequence(seed), path=name) for name in names]


def assert_same(first, *others):
    for other in others:
        for name, col in first.records.columns().items():
            np.testing.assert_allclose(
                col, other.records.columns()[name], rtol=1e-12, atol=1e-12, err_msg=name
            )
        np.testing.assert_allclose(first.busy_ms, other.busy_ms, rtol=1e-12)


batchings = st.one_of(
    st.just({"kind": "none"}),
    st.fixed_dictionaries(
        {
            "kind": st.just("dynamic"),
            "max_batch_size": st.integers(1, 12),
            "max_wait_ms": st.sampled_from([0.0, 0.5, 2.0]),
            "dispatch": st.just("on_free"),
        },
        optional={"buckets": st.just([4, 8, 16, 64])},
    ),
)


@st.composite
def scenarios(draw):
    replicas = draw(st.integers(2, 5))
    exp = parse_experiment(
        {
            "name": "routed",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": 1000.0}},
            "fleet": {
                "replicas": replicas,
                "queue": "per_replica",
                "balancer": draw(
                    st.sampled_from(["join_shortest_queue", "power_of_two", "round_robin", "random"])
                ),
            },
            "batching": draw(batchings),
            "service": draw(
                st.sampled_from(
                    [
                        {"kind": "exponential", "mean_ms": 1.0},
                        {"kind": "deterministic", "ms": 0.7},
                        {
                            "kind": "affine",
                            "base_ms": 0.5,
                            "per_item_ms": 0.1,
                            "noise": {"kind": "gamma", "mean": 1.0, "cv": 0.5},
                        },
                    ]
                )
            ),
            "slo": {"latency_ms": 10.0},
        }
    )
    n = draw(st.integers(1, 600))
    load = draw(st.sampled_from([0.3, 0.9, 1.5]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / (load * replicas), n)
    if draw(st.booleans()):
        gaps = np.round(gaps, 1)  # ties: arrivals at one instant, timers falling on arrivals
    items = rng.integers(1, draw(st.integers(1, 3)) + 1, n)
    return exp, Requests(arrival_ms=np.cumsum(gaps), items=items), seed


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_routed_path_equals_event_path(scenario):
    exp, req, seed = scenario
    assert_same(*runs(exp, req, seed))


def test_feed_shape_with_cache_equals_event_path():
    """The shape the routed path exists for: a cache in front, small batches, 8 replicas, JSQ."""
    exp = parse_experiment(
        {
            "name": "feed",
            "workload": {
                "arrivals": {"kind": "poisson", "rate_rps": 5000.0},
                "items_per_request": 500,
                "keys": {"kind": "zipf", "exponent": 0.9, "key_space": 200_000},
            },
            "fleet": {"replicas": 8, "queue": "per_replica", "balancer": "join_shortest_queue"},
            "batching": {"kind": "dynamic", "max_batch_size": 16, "max_wait_ms": 2.0},
            "service": {
                "kind": "affine",
                "base_ms": 1.2,
                "per_item_ms": 0.001,
                "noise": {"kind": "lognormal", "median": 1.0, "sigma": 0.15},
            },
            "cache": {
                "l1": {"capacity": 2000, "copies": "replicas"},
                "l2": {"capacity": 40_000, "lookup_ms": {"kind": "constant", "value": 0.3}},
                "warmup_s": 0,
            },
            "slo": {"latency_ms": 30.0},
        }
    )
    from simlat.workload import generate

    req = generate(exp.workload, n=30_000, duration_s=None, seed=np.random.SeedSequence(3))
    fast, slow = runs(exp, req, 5)
    served = fast.records.l1_hit | fast.records.l2_hit
    assert 0.2 < served.mean() < 0.9 and fast.records.batch_size[~served].mean() < 4
    assert_same(fast, slow)
