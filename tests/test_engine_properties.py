"""Properties of the engine over random experiments (hypothesis).

Whatever the fleet, batching and admission: every request is served or dropped exactly once;
waits are >= 0 and add up; batches never exceed max_batch_size; nobody waits for batch formation
longer than max_wait_ms; done >= dispatch >= arrival; timeouts and queue capacity hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simlat.config import parse_experiment
from simlat.engine import simulate
from simlat.workload import Requests

EPS = 1e-9

batchings = st.one_of(
    st.just({"kind": "none"}),
    st.fixed_dictionaries(
        {
            "kind": st.just("dynamic"),
            "max_batch_size": st.integers(1, 12),
            "max_wait_ms": st.sampled_from([0.0, 0.3, 1.0, 2.5]),
            "dispatch": st.sampled_from(["on_free", "on_close"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("adaptive"),
            "max_batch_size": st.integers(1, 12),
            "min_wait_ms": st.sampled_from([0.0, 0.2]),
            "max_wait_ms": st.sampled_from([0.5, 2.0]),
            "window_ms": st.sampled_from([5.0, 50.0]),
            "dispatch": st.sampled_from(["on_free", "on_close"]),
        }
    ),
)
fleets = st.fixed_dictionaries(
    {
        "replicas": st.integers(1, 4),
        "queue": st.sampled_from(["shared", "per_replica"]),
        "balancer": st.sampled_from(["round_robin", "random", "join_shortest_queue", "power_of_two"]),
    }
)
admissions = st.fixed_dictionaries(
    {},
    optional={"queue_capacity": st.integers(1, 6), "timeout_ms": st.sampled_from([0.5, 2.0, 6.0])},
)
services = st.sampled_from(
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


@st.composite
def scenarios(draw):
    batching = draw(batchings)
    fleet = draw(fleets)
    admission = draw(admissions)
    exp = parse_experiment(
        {
            "name": "property",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": 1000.0}},
            "fleet": fleet,
            "batching": batching,
            "admission": admission,
            "service": draw(services),
            "slo": {"latency_ms": 10.0},
        }
    )
    n = draw(st.integers(1, 400))
    load = draw(st.sampled_from([0.3, 0.9, 1.5]))  # requests per ms per replica, roughly
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / (load * fleet["replicas"]), n)
    if draw(st.booleans()):
        gaps = np.round(gaps, 1)  # ties: several arrivals at the same instant
    items = rng.integers(1, draw(st.integers(1, 3)) + 1, n)
    return exp, Requests(arrival_ms=np.cumsum(gaps), items=items), seed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_invariants(scenario):
    exp, req, seed = scenario
    res = simulate(exp, req, seed=np.random.SeedSequence(seed))
    rec = res.records
    n = len(req)
    assert len(rec) == n
    served = ~rec.dropped

    # every request is served or dropped, exactly once
    assert np.all(np.isfinite(rec.done_ms[served])) and np.all(np.isnan(rec.done_ms[rec.dropped]))
    assert np.all(np.isnan(rec.latency_ms[rec.dropped])) and np.all(rec.batch_id[rec.dropped] == -1)
    assert np.all(rec.batch_id[served] >= 0)
    counts = pd.Series(rec.batch_id[served]).value_counts()
    np.testing.assert_array_equal(counts[rec.batch_id[served]].to_numpy(), rec.batch_size[served])

    # times are ordered and waits add up
    a, d, done = rec.arrival_ms[served], rec.dispatch_ms[served], rec.done_ms[served]
    assert np.all(d >= a - EPS) and np.all(done >= d)
    assert np.all(rec.queue_wait_ms[served] >= -EPS) and np.all(rec.batch_wait_ms[served] >= -EPS)
    np.testing.assert_allclose(
        rec.queue_wait_ms[served] + rec.batch_wait_ms[served] + rec.service_ms[served], done - a, atol=1e-9
    )
    np.testing.assert_allclose(rec.latency_ms[served], done - a + rec.overhead_ms[served], atol=1e-9)

    # batching limits
    b = exp.batching
    max_batch = 1 if b.kind == "none" else b.max_batch_size
    max_wait = 0.0 if b.kind == "none" else b.max_wait_ms
    if served.any():
        assert rec.batch_size[served].max() <= max_batch
        assert rec.batch_wait_ms[served].max() <= max_wait + EPS

    # one batch at a time per replica
    if served.any():
        frame = pd.DataFrame({"b": rec.batch_id[served], "r": rec.replica[served], "d": d, "e": done})
        batches = frame.groupby("b").first().sort_values(["r", "d"])
        for _, grp in batches.groupby("r"):
            assert np.all(grp.d.to_numpy()[1:] >= grp.e.to_numpy()[:-1] - EPS)
        assert np.isclose(res.busy_ms.sum(), batches.e.sum() - batches.d.sum())

    # admission
    adm = exp.admission
    if adm.timeout_ms is not None:
        assert np.all(d - a <= adm.timeout_ms + EPS)
    if adm.queue_capacity is None and adm.timeout_ms is None:
        assert not rec.dropped.any()
    if adm.queue_capacity is not None and (exp.fleet.queue == "shared" or exp.fleet.replicas == 1):
        # an admitted request found fewer than queue_capacity requests waiting
        a_ok, d_ok = np.sort(a), np.sort(d)
        waiting = np.searchsorted(a_ok, a, side="left") - np.searchsorted(d_ok, a, side="right")
        if adm.timeout_ms is None:
            assert waiting.max(initial=0) < adm.queue_capacity + 1


@st.composite
def closed_loops(draw):
    fleet = draw(fleets)
    admission = draw(admissions)
    think = draw(st.sampled_from([{"kind": "exponential", "mean": 2.0}, {"kind": "constant", "value": 0.5}]))
    exp = parse_experiment(
        {
            "name": "closed",
            "workload": {
                "arrivals": {
                    "kind": "closed_loop",
                    "clients": draw(st.integers(1, 12)),
                    "think_time_ms": think,
                },
                "items_per_request": draw(st.sampled_from([1, {"kind": "choice", "values": [1, 3]}])),
            },
            "fleet": fleet,
            "batching": draw(batchings),
            "admission": admission,
            "service": draw(services),
            "overheads": {"network_rtt_ms": {"kind": "constant", "value": 0.2}},
            "slo": {"latency_ms": 10.0},
            "run": {"requests": draw(st.integers(1, 300))},
        }
    )
    return exp, draw(st.integers(0, 2**31))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(closed_loops())
def test_closed_loop_invariants(scenario):
    exp, seed = scenario
    rec = simulate(exp, None, seed=np.random.SeedSequence(seed)).records
    assert len(rec) == exp.run.requests
    served = ~rec.dropped
    assert np.all(np.isfinite(rec.done_ms[served])) and np.all(np.isnan(rec.latency_ms[rec.dropped]))
    assert np.all(rec.dispatch_ms[served] >= rec.arrival_ms[served] - EPS)
    assert np.all(rec.queue_wait_ms[served] >= -EPS) and np.all(rec.batch_wait_ms[served] >= -EPS)
    # each client has at most one request in flight: never more outstanding than clients
    answered = np.where(served, rec.done_ms + rec.overhead_ms, rec.arrival_ms)
    sent = np.sort(rec.arrival_ms)
    in_flight = np.searchsorted(sent, rec.arrival_ms, side="right") - np.searchsorted(
        np.sort(answered), rec.arrival_ms, side="right"
    )
    assert in_flight.max() <= exp.workload.arrivals.clients
    if exp.admission.timeout_ms is not None:
        assert np.all(rec.dispatch_ms[served] - rec.arrival_ms[served] <= exp.admission.timeout_ms + EPS)
