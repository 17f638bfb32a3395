"""Unit tests of the engine: each policy, padding, admission, closed loop, determinism, records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlat.config import parse_experiment
from simlat.engine import simulate, write_records
from simlat.engine.paths import PATHS, choose_path
from simlat.engine.spec import EngineSpec
from simlat.errors import SimlatError
from simlat.workload import Requests


def experiment(
    batching=None, service=None, fleet=None, admission=None, arrivals=None, run=None, overheads=None
):
    data = {
        "name": "unit",
        "workload": {"arrivals": arrivals or {"kind": "poisson", "rate_rps": 1000.0}},
        "batching": batching or {"kind": "none"},
        "service": service or {"kind": "exponential", "mean_ms": 1.0},
        "slo": {"latency_ms": 10.0},
    }
    for key, value in (("fleet", fleet), ("admission", admission), ("run", run), ("overheads", overheads)):
        if value is not None:
            data[key] = value
    return parse_experiment(data)


def poisson(rate_per_ms: float, n: int, seed: int = 0, max_items: int | None = None) -> Requests:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate_per_ms, n))
    items = np.ones(n, dtype=np.int64) if max_items is None else rng.integers(1, max_items + 1, n)
    return Requests(arrival_ms=arrival, items=items)


def run(exp, req, seed=0, path=None):
    return simulate(exp, req, seed=np.random.SeedSequence(seed), path=path).records


AFFINE = {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.05}


# -- batching by hand ------------------------------------------------------------------------------
HAND_ARRIVALS = Requests(
    arrival_ms=np.array([0.0, 0.5, 0.6, 0.7, 1.9, 2.0]), items=np.ones(6, dtype=np.int64)
)


def test_on_free_by_hand():
    """B=3, W=1, 2 ms per batch. Batch 1 fills at 0.6; the replica is next free at 2.6 and takes the
    three requests that arrived by then (the oldest has waited longer than W: no extra wait)."""
    exp = experiment(
        {"kind": "dynamic", "max_batch_size": 3, "max_wait_ms": 1.0}, {"kind": "deterministic", "ms": 2.0}
    )
    rec = run(exp, HAND_ARRIVALS)
    np.testing.assert_allclose(rec.dispatch_ms, [0.6, 0.6, 0.6, 2.6, 2.6, 2.6])
    np.testing.assert_allclose(rec.done_ms, [2.6, 2.6, 2.6, 4.6, 4.6, 4.6])
    np.testing.assert_array_equal(rec.batch_size, [3, 3, 3, 3, 3, 3])
    # queue wait: time waiting while no replica was free (the replica is free from 2.6)
    np.testing.assert_allclose(rec.queue_wait_ms, [0, 0, 0, 1.9, 0.7, 0.6], atol=1e-12)
    np.testing.assert_allclose(rec.batch_wait_ms, [0.6, 0.1, 0.0, 0, 0, 0], atol=1e-12)


def test_on_close_by_hand():
    """Same arrivals with on_close: batch 2 closes at 0.7 + W = 1.7 holding one request, batch 3
    opens at 1.9 and closes at 2.9; closed batches queue for the replica."""
    exp = experiment(
        {"kind": "dynamic", "max_batch_size": 3, "max_wait_ms": 1.0, "dispatch": "on_close"},
        {"kind": "deterministic", "ms": 2.0},
    )
    rec = run(exp, HAND_ARRIVALS)
    np.testing.assert_allclose(rec.dispatch_ms, [0.6, 0.6, 0.6, 2.6, 4.6, 4.6])
    np.testing.assert_allclose(rec.done_ms, [2.6, 2.6, 2.6, 4.6, 6.6, 6.6])
    np.testing.assert_array_equal(rec.batch_size, [3, 3, 3, 1, 2, 2])
    np.testing.assert_allclose(rec.batch_wait_ms, [0.6, 0.1, 0.0, 1.0, 1.0, 0.9], atol=1e-12)
    np.testing.assert_allclose(rec.queue_wait_ms, [0, 0, 0, 0.9, 1.7, 1.7], atol=1e-12)
    np.testing.assert_array_equal(rec.batch_id, [0, 0, 0, 1, 2, 2])


def test_issue_fact_on_close_unstable_on_free_holds():
    """11.5 req/ms Poisson, B=32, W=2 ms, 1 ms + 0.05 ms/item: on_close's queue grows through the
    run; on_free holds a median near 3.8 ms."""
    req = poisson(11.5, 300_000, seed=1)
    free = run(experiment({"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0}, AFFINE), req)
    close = run(
        experiment(
            {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0, "dispatch": "on_close"}, AFFINE
        ),
        req,
    )
    assert 3.6 < np.median(free.latency_ms) < 4.0
    tenth = len(req) // 10
    assert np.median(free.latency_ms[-tenth:]) < 1.2 * np.median(free.latency_ms[tenth : 2 * tenth])
    early, late = np.median(close.latency_ms[tenth : 2 * tenth]), np.median(close.latency_ms[-tenth:])
    assert late > 100.0 and late > 3 * early  # the queue keeps growing


def test_capacity_estimate_knows_on_close_batches_are_not_full():
    """on_close batches close on time, not full: its capacity is below on_free's full-batch capacity
    and marks the edge of stability (stable at 94% of it, growing at 106%)."""
    on_free = experiment({"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0}, AFFINE)
    on_close = experiment(
        {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0, "dispatch": "on_close"}, AFFINE
    )
    full = simulate(on_free, poisson(1.0, 100), seed=np.random.SeedSequence(0)).capacity_rps
    assert full == pytest.approx(1000 * 32 / (1 + 0.05 * 32))
    cap = simulate(on_close, poisson(1.0, 100), seed=np.random.SeedSequence(0)).capacity_rps
    assert 9000 < cap < 11500 < full
    tenth = 20_000
    for factor, grows in ((0.94, False), (1.06, True)):
        lat = run(on_close, poisson(factor * cap / 1000, 200_000, seed=2)).latency_ms
        early, late = np.median(lat[tenth : 2 * tenth]), np.median(lat[-tenth:])
        assert (late > 3 * early) == grows


def test_batches_respect_max_size_and_wait():
    req = poisson(8.0, 50_000, seed=2)
    for dispatch in ("on_free", "on_close"):
        rec = run(
            experiment(
                {"kind": "dynamic", "max_batch_size": 16, "max_wait_ms": 1.5, "dispatch": dispatch}, AFFINE
            ),
            req,
        )
        assert rec.batch_size.max() <= 16
        assert rec.batch_wait_ms.max() <= 1.5 + 1e-9
        np.testing.assert_allclose(
            rec.queue_wait_ms + rec.batch_wait_ms + rec.service_ms,
            rec.done_ms - rec.arrival_ms,
            rtol=1e-9,
            atol=1e-9,
        )
        sizes = pd.Series(rec.batch_id).value_counts().sort_index().to_numpy()
        np.testing.assert_array_equal(sizes[pd.Series(rec.batch_id).to_numpy()], rec.batch_size)


def test_adaptive_wait_grows_with_load():
    """W = min + (max - min) * rate * max / B: 0.1 + 2.9 * rate * 3 / 32 ms at these settings."""
    batching = {
        "kind": "adaptive",
        "max_batch_size": 32,
        "min_wait_ms": 0.1,
        "max_wait_ms": 3.0,
        "window_ms": 50.0,
        "dispatch": "on_close",  # the batch's opener waits exactly W (unless the batch fills)
    }
    for rate, window in ((0.2, 0.154), (1.0, 0.372)):
        rec = run(experiment(batching, AFFINE), poisson(rate, 40_000, seed=3))
        oldest = pd.Series(rec.batch_wait_ms).groupby(rec.batch_id).max()  # waits W unless the batch fills
        assert np.median(oldest) == pytest.approx(window, rel=0.1)
    high = run(experiment({**batching, "dispatch": "on_free"}, AFFINE), poisson(8.0, 40_000, seed=3))
    assert high.batch_wait_ms.max() <= 3.0 + 1e-9
    assert np.mean(high.batch_size) > 10


def test_buckets_pad_items_before_service():
    batching = {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 1.0, "buckets": [2, 8, 32]}
    exp = experiment(batching, {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.1})
    req = poisson(2.0, 5000, seed=4, max_items=8)
    rec = run(exp, req)
    batch_items = pd.Series(rec.items).groupby(rec.batch_id).sum()
    padded = np.array([next(b for b in (2, 8, 32) if b >= k) for k in batch_items])
    service = pd.Series(rec.service_ms).groupby(rec.batch_id).first()
    np.testing.assert_allclose(service.to_numpy(), 1.0 + 0.1 * padded)
    assert (padded > batch_items.to_numpy()).any()


def test_batch_over_largest_bucket_is_an_error():
    batching = {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 1.0, "buckets": [2, 4]}
    with pytest.raises(SimlatError, match="batching.buckets"):
        run(experiment(batching, AFFINE), poisson(5.0, 2000, seed=5, max_items=3))


# -- fleet ---------------------------------------------------------------------------------------
def test_round_robin_routes_in_turn():
    fleet = {"replicas": 3, "queue": "per_replica", "balancer": "round_robin"}
    rec = run(experiment(fleet=fleet), poisson(1.0, 300, seed=6))
    np.testing.assert_array_equal(rec.replica, np.arange(300) % 3)


@pytest.mark.parametrize("queue", ["shared", "per_replica"])
def test_every_replica_works_evenly(queue):
    fleet = {"replicas": 4, "queue": queue, "balancer": "random"}
    res = simulate(experiment(fleet=fleet), poisson(3.2, 100_000, seed=7), seed=np.random.SeedSequence(0))
    util = res.busy_ms / res.end_ms
    np.testing.assert_allclose(util, 0.8, atol=0.03)
    assert res.n_replicas == 4
    assert res.capacity_rps == pytest.approx(4000.0)
    assert res.offered_rps == pytest.approx(3200.0, rel=0.02)


def test_state_aware_balancers_beat_random():
    """At 85% load, JSQ < power-of-two < random in mean latency; a shared queue is best."""
    req = poisson(8 * 0.85, 100_000, seed=8)
    mean = {}
    for bal in ("random", "power_of_two", "join_shortest_queue"):
        fleet = {"replicas": 8, "queue": "per_replica", "balancer": bal}
        mean[bal] = np.mean(run(experiment(fleet=fleet), req).latency_ms)
    mean["shared"] = np.mean(run(experiment(fleet={"replicas": 8}), req).latency_ms)
    assert mean["shared"] < mean["join_shortest_queue"] < mean["power_of_two"] < mean["random"]
    # random routing is 8 independent M/M/1 at 0.85: mean sojourn 1 / (1 - 0.85)
    assert mean["random"] == pytest.approx(1 / 0.15, rel=0.15)


def test_static_and_event_paths_agree():
    """The event path (used for JSQ, admission, closed loops) reproduces the static path exactly."""
    cases = [
        ({"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0}, {"replicas": 2}),
        (
            {"kind": "dynamic", "max_batch_size": 16, "max_wait_ms": 1.0, "dispatch": "on_close"},
            {"replicas": 2},
        ),
        ({"kind": "adaptive", "max_batch_size": 16, "max_wait_ms": 2.0, "min_wait_ms": 0.2}, None),
        (
            {"kind": "adaptive", "max_batch_size": 16, "max_wait_ms": 2.0, "dispatch": "on_close"},
            {"replicas": 3, "queue": "per_replica", "balancer": "random"},
        ),
        ({"kind": "none"}, {"replicas": 3}),
    ]
    for batching, fleet in cases:
        exp = experiment(batching, AFFINE, fleet)
        req = poisson(9.0 * (fleet or {}).get("replicas", 1), 30_000, seed=9, max_items=2)
        assert choose_path(EngineSpec.from_experiment(exp)).name == "static"
        fast = run(exp, req)
        slow = run(exp, req, path="event")
        for name, col in fast.columns().items():
            np.testing.assert_allclose(col, slow.columns()[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_first_path_that_handles_an_experiment_runs_it():
    """The map in simlat.engine.paths: static, then routed, then event; a named path must handle it."""
    dyn = {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0}
    jsq = {"replicas": 3, "queue": "per_replica", "balancer": "join_shortest_queue"}
    cases = [
        (experiment(dyn, AFFINE, {"replicas": 3}), "static"),
        (experiment(dyn, AFFINE, {**jsq, "balancer": "random"}), "static"),
        (experiment(dyn, AFFINE, jsq), "routed"),
        (experiment(dyn, AFFINE, {**jsq, "balancer": "power_of_two"}), "routed"),
        (experiment({**dyn, "dispatch": "on_close"}, AFFINE, jsq), "event"),
        (experiment(dyn, AFFINE, {"replicas": 3}, admission={"queue_capacity": 4}), "event"),
        (experiment(dyn, AFFINE, arrivals={"kind": "closed_loop", "clients": 4}), "event"),
    ]
    order = list(PATHS)
    for exp, expected in cases:
        spec = EngineSpec.from_experiment(exp)
        assert choose_path(spec).name == expected
        assert choose_path(spec, "event").name == "event"  # the event path handles everything
        for name in order[: order.index(expected)]:
            with pytest.raises(SimlatError, match=f"path: '{name}' does not handle this experiment"):
                simulate(
                    exp,
                    None if spec.closed_loop else poisson(3.0, 10),
                    seed=np.random.SeedSequence(0),
                    path=name,
                )
    with pytest.raises(SimlatError, match="path: 'fast' is not one of static, routed, event"):
        choose_path(spec, "fast")


def test_every_balancer_kind_has_an_object():
    from typing import get_args

    from simlat.config.serving import Fleet
    from simlat.engine.balancer import BALANCERS

    assert set(get_args(Fleet.model_fields["balancer"].annotation)) == set(BALANCERS)
    assert {b.name for b in BALANCERS.values() if b.static} == {"round_robin", "random"}


# -- admission -----------------------------------------------------------------------------------
def waiting_at_arrivals(rec) -> np.ndarray:
    """For each request, how many admitted requests were waiting (arrived, not dispatched) when it arrived."""
    ok = ~rec.dropped
    a_ok, d_ok = np.sort(rec.arrival_ms[ok]), np.sort(rec.dispatch_ms[ok])
    return np.searchsorted(a_ok, rec.arrival_ms, side="left") - np.searchsorted(
        d_ok, rec.arrival_ms, side="right"
    )


def test_queue_capacity_rejects_arrivals_when_full():
    exp = experiment(admission={"queue_capacity": 5})
    rec = run(exp, poisson(1.3, 20_000, seed=10))  # overloaded
    assert 0.1 < rec.dropped.mean() < 0.4
    waiting = waiting_at_arrivals(rec)
    assert waiting[~rec.dropped].max() <= 4  # admitted: fewer than 5 waited
    assert np.all(waiting[rec.dropped] == 5)  # rejected: exactly full
    assert np.all(np.isnan(rec.latency_ms[rec.dropped])) and np.all(np.isnan(rec.dispatch_ms[rec.dropped]))
    assert np.all(np.isfinite(rec.latency_ms[~rec.dropped]))


def test_timeout_drops_requests_never_served():
    batching = {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0}
    exp = experiment(batching, AFFINE, admission={"timeout_ms": 5.0})
    rec = run(exp, poisson(6.5, 50_000, seed=11))  # over capacity (~5.7 req/ms with B=8)
    assert rec.dropped.mean() > 0.05
    served = ~rec.dropped
    assert np.all(rec.dispatch_ms[served] - rec.arrival_ms[served] <= 5.0 + 1e-9)
    assert np.all(np.isnan(rec.done_ms[rec.dropped]))
    assert rec.batch_size[served].max() <= 8


@pytest.mark.parametrize("balancer", ["join_shortest_queue", "power_of_two"])
def test_admission_with_state_aware_balancers(balancer):
    fleet = {"replicas": 4, "queue": "per_replica", "balancer": balancer}
    rec = run(
        experiment(fleet=fleet, admission={"queue_capacity": 3, "timeout_ms": 4.0}),
        poisson(4.4, 40_000, seed=12),
    )
    assert 0 < rec.dropped.mean() < 0.3
    served = ~rec.dropped
    assert np.all(rec.dispatch_ms[served] - rec.arrival_ms[served] <= 4.0 + 1e-9)
    assert set(np.unique(rec.replica)) == {0, 1, 2, 3}


# -- closed loop ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "batching", [{"kind": "none"}, {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 0.5}]
)
def test_closed_loop_obeys_littles_law(batching):
    arrivals = {"kind": "closed_loop", "clients": 12, "think_time_ms": {"kind": "exponential", "mean": 5.0}}
    overheads = {"network_rtt_ms": {"kind": "constant", "value": 0.3}}
    exp = experiment(
        batching, AFFINE, {"replicas": 2}, arrivals=arrivals, run={"requests": 40_000}, overheads=overheads
    )
    res = simulate(exp, None, seed=np.random.SeedSequence(1))
    rec = res.records
    assert len(rec) == 40_000 and not rec.dropped.any()
    assert res.offered_rps is None
    skip = 4000
    span = rec.arrival_ms[-1] - rec.arrival_ms[skip]
    throughput = (len(rec) - 1 - skip) / span  # requests per ms
    predicted = 12 / (np.mean(rec.latency_ms[skip:]) + 5.0)
    assert throughput == pytest.approx(predicted, rel=0.03)
    # a client never has two requests in flight: with 12 clients, at most 12 outstanding
    outstanding = np.searchsorted(np.sort(rec.arrival_ms), rec.arrival_ms, side="right") - np.searchsorted(
        np.sort(rec.done_ms + rec.overhead_ms), rec.arrival_ms, side="right"
    )
    assert outstanding.max() <= 12


def test_closed_loop_duration_bound_and_timeouts():
    arrivals = {"kind": "closed_loop", "clients": 30, "think_time_ms": {"kind": "constant", "value": 0.0}}
    exp = experiment(arrivals=arrivals, run={"duration_s": 2.0}, admission={"timeout_ms": 3.0})
    rec = simulate(exp, None, seed=np.random.SeedSequence(2)).records
    assert rec.arrival_ms.max() <= 2000.0
    assert rec.dropped.any() and (~rec.dropped).any()
    served = ~rec.dropped
    assert np.all(rec.dispatch_ms[served] - rec.arrival_ms[served] <= 3.0 + 1e-9)


# -- determinism, records, errors ------------------------------------------------------------------
@pytest.mark.parametrize(
    "fleet", [{"replicas": 2}, {"replicas": 3, "queue": "per_replica", "balancer": "power_of_two"}]
)
def test_same_seed_same_bytes(fleet):
    exp = experiment(
        {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
        {"kind": "lognormal", "median_ms": 1.0, "sigma": 0.5},
        fleet,
        overheads={"serialization_ms": {"kind": "gamma", "mean": 0.1, "cv": 0.5}},
    )
    req = poisson(5.0, 20_000, seed=13)
    a, b, c = run(exp, req, seed=1), run(exp, req, seed=1), run(exp, req, seed=2)
    for name, col in a.columns().items():
        assert col.tobytes() == b.columns()[name].tobytes(), name
    assert a.latency_ms.tobytes() != c.latency_ms.tobytes()


def test_records_frame_and_parquet(tmp_path):
    exp = experiment(overheads={"network_rtt_ms": {"kind": "constant", "value": 0.5}})
    req = poisson(0.5, 1000, seed=14)
    results = [simulate(exp, req, seed=np.random.SeedSequence(s)) for s in (1, 2)]
    frame = results[0].records.to_frame()
    assert list(frame.columns)[:3] == ["arrival_ms", "dispatch_ms", "batch_id"]
    np.testing.assert_allclose(frame.latency_ms, frame.done_ms - frame.arrival_ms + 0.5)
    write_records(results, tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert len(back) == 2000 and sorted(back.replication.unique()) == [0, 1]
    write_records(results[:1], tmp_path / "one.parquet")
    assert "replication" not in pd.read_parquet(tmp_path / "one.parquet").columns


def test_requests_must_match_the_arrival_kind():
    with pytest.raises(SimlatError, match="needs generated requests"):
        simulate(experiment(), None, seed=np.random.SeedSequence(0))
    closed = experiment(arrivals={"kind": "closed_loop", "clients": 2})
    with pytest.raises(SimlatError, match="closed_loop"):
        simulate(closed, poisson(1.0, 10), seed=np.random.SeedSequence(0))


def test_service_models_means():
    from simlat.config.service import AffineService, EmpiricalService, LognormalService
    from simlat.engine.service import build_service

    rng = np.random.default_rng(0)
    for cfg, items in (
        (LognormalService(median_ms=2.0, sigma=0.5), 1),
        (EmpiricalService(samples_ms=[1.0, 2.0, 6.0]), 1),
        (AffineService(base_ms=1.0, per_item_ms=0.5, noise={"kind": "gamma", "mean": 1.0, "cv": 0.2}), 4),
        (
            AffineService(
                base_ms=1.0,
                per_item_ms=0.5,
                noise={"kind": "uniform", "low": 0.0, "high": 1.0},
                noise_mode="additive",
            ),
            4,
        ),
    ):
        model = build_service(cfg)
        draw = model.batch_sampler(rng)
        values = np.array([draw(items) for _ in range(200_000)])  # crosses several buffer refills
        assert values.mean() == pytest.approx(model.mean_ms(items), rel=0.01)
        assert model.max_items is None


def test_cache_hits_skip_the_queue_and_misses_arrive_after_their_lookups():
    data = {
        "name": "cached",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 3000.0}},
        "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
        "service": AFFINE,
        "slo": {"latency_ms": 10.0},
        "overheads": {"network_rtt_ms": {"kind": "constant", "value": 0.4}},
        "cache": {
            "l1": {"capacity": 1000, "lookup_ms": {"kind": "constant", "value": 0.01}},
            "l2": {"capacity": 10000, "lookup_ms": {"kind": "exponential", "mean": 0.3}},
            "hit_ratio": {"l1": 0.3, "l2": 0.4},
        },
    }
    exp = parse_experiment(data)
    req = poisson(3.0, 30_000, seed=15)
    res = simulate(exp, req, seed=np.random.SeedSequence(3))
    rec = res.records
    hit = np.isnan(rec.dispatch_ms)
    assert 0.5 < hit.mean() < 0.65  # 0.3 + 0.7 * 0.4 = 0.58
    assert np.all(rec.l1_hit[hit] | rec.l2_hit[hit]) and not np.any(rec.l1_hit[~hit] | rec.l2_hit[~hit])
    np.testing.assert_allclose(rec.latency_ms[hit], rec.cache_ms[hit] + 0.4)
    np.testing.assert_allclose(rec.cache_ms[rec.l1_hit], 0.01)
    assert np.all(rec.batch_id[hit] == -1) and np.all(rec.replica[hit] == -1)
    miss = ~hit
    assert np.all(rec.dispatch_ms[miss] >= rec.arrival_ms[miss] + rec.cache_ms[miss] - 1e-12)
    np.testing.assert_allclose(
        rec.cache_ms[miss] + rec.queue_wait_ms[miss] + rec.batch_wait_ms[miss] + rec.service_ms[miss],
        rec.done_ms[miss] - rec.arrival_ms[miss],
        atol=1e-9,
    )
    np.testing.assert_allclose(rec.latency_ms, rec.done_ms - rec.arrival_ms + 0.4, atol=1e-9)
    assert rec.batch_size[miss].max() <= 8 and rec.batch_wait_ms[miss].max() <= 1.0 + 1e-9
    # capacity counts arriving requests: the fleet's full-batch rate over the fraction that misses
    assert res.capacity_rps * miss.mean() == pytest.approx(1000 * 8 / (1 + 0.05 * 8))
    again = simulate(exp, req, seed=np.random.SeedSequence(3)).records
    assert rec.latency_ms.tobytes() == again.latency_ms.tobytes()


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.parametrize("dispatch", ["on_free", "on_close"])
def test_batches_of_one_never_wait_for_formation(replicas, dispatch):
    batching = {"kind": "dynamic", "max_batch_size": 1, "max_wait_ms": 1.0, "dispatch": dispatch}
    rec = run(experiment(batching, fleet={"replicas": replicas}), poisson(0.8 * replicas, 20_000, seed=16))
    assert np.all(rec.batch_wait_ms == 0.0)
    np.testing.assert_allclose(rec.queue_wait_ms, rec.dispatch_ms - rec.arrival_ms, atol=1e-12)
    assert np.all(rec.queue_wait_ms >= 0)


def test_unsorted_requests_are_refused():
    req = Requests(arrival_ms=np.array([1.0, 0.5]), items=np.ones(2, dtype=np.int64))
    with pytest.raises(ValueError, match="sorted"):
        simulate(experiment(), req, seed=np.random.SeedSequence(0))
