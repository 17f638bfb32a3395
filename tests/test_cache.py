"""The prediction caches: exact replay against a reference LRU, Che's approximation, TTL, promotion,
per-item lookups, the hit-ratio override and config errors."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlat.config.cache import Cache
from simlat.engine.cache import apply_cache, item_keys, warmup_source
from simlat.engine.cache_curve import che_hit_ratio, hit_ratio_vs_capacity, zipf_popularity
from simlat.engine.lru import LRUCache, stack_distances
from simlat.errors import SimlatError
from simlat.workload import Requests


class RefLRU:
    """The straightforward reference: an OrderedDict LRU with write-time TTL and lazy expiry."""

    def __init__(self, capacity: int, ttl_ms: float | None):
        self.capacity = capacity
        self.ttl = float("inf") if ttl_ms is None else ttl_ms
        self.entries: OrderedDict = OrderedDict()  # key -> write time, least recent first

    def lookup(self, key, t: float) -> bool:
        if key in self.entries:
            self.entries.move_to_end(key)
            if t - self.entries[key] < self.ttl:
                return True
            self.entries[key] = t  # expired: rewritten after the miss
            return False
        self.entries[key] = t
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return False


def reference_replay(cfg: Cache, keys, times) -> tuple[np.ndarray, np.ndarray]:
    """(L1 hit, L2 hit) per lookup: L1 first, L2 only on an L1 miss; every miss writes back."""
    l1 = RefLRU(cfg.l1.capacity, cfg.l1.ttl_ms) if cfg.l1 else None
    l2 = RefLRU(cfg.l2.capacity, cfg.l2.ttl_ms) if cfg.l2 else None
    h1, h2 = [], []
    for k, t in zip(keys.tolist(), times.tolist(), strict=True):
        a = l1.lookup(k, t) if l1 else False
        b = (l2.lookup(k, t) if l2 else False) if not a else False
        h1.append(a)
        h2.append(b)
    return np.array(h1, dtype=bool), np.array(h2, dtype=bool)


def zipf_requests(n: int, exponent: float, key_space: int, rate_per_ms: float, seed: int, items=None) -> Requests:
    rng = np.random.default_rng(seed)
    keys = rng.choice(key_space, size=n, p=zipf_popularity(exponent, key_space)).astype(np.int64)
    arrival = np.cumsum(rng.exponential(1.0 / rate_per_ms, size=n))
    its = np.ones(n, dtype=np.int64) if items is None else rng.integers(1, items + 1, size=n)
    return Requests(arrival_ms=arrival, items=its, key=keys)


def cache(**kw) -> Cache:
    return Cache.model_validate(kw)


L2_FAST = {"kind": "constant", "value": 0.5}


# ---------------------------------------------------------------- exact replay


@pytest.mark.parametrize(
    "cfg",
    [
        {"l1": {"capacity": 200}},
        {"l1": {"capacity": 100, "ttl_ms": 300.0}, "l2": {"capacity": 2000, "ttl_ms": 5000.0, "lookup_ms": L2_FAST}},
        {"l2": {"capacity": 500, "ttl_ms": 800.0, "lookup_ms": L2_FAST}},
        {"l1": {"capacity": 1}, "l2": {"capacity": 3, "lookup_ms": L2_FAST}},
    ],
)
def test_every_request_matches_a_reference_lru_replay(cfg):
    c = cache(**cfg)
    req = zipf_requests(40_000, 0.9, 5_000, rate_per_ms=2.0, seed=1)
    out = apply_cache(c, req, np.random.default_rng(0))
    h1, h2 = reference_replay(c, req.key, req.arrival_ms)
    assert np.array_equal(out.l1_hit, h1)
    assert np.array_equal(out.l2_hit, h2)
    assert np.array_equal(out.served, h1 | h2)
    assert 0.01 < out.served.mean() < 0.99  # a non-trivial mix of hits and misses


@pytest.mark.parametrize(
    "cfg",
    [
        {"l1": {"capacity": 300, "ttl_ms": 400.0}, "l2": {"capacity": 3000, "lookup_ms": L2_FAST}},
        {"l2": {"capacity": 2000, "ttl_ms": 900.0, "lookup_ms": L2_FAST}},
    ],
)
def test_per_item_lookups_match_a_reference_replay_item_by_item(cfg):
    c = cache(**cfg, per_item=True)
    req = zipf_requests(5_000, 1.0, 800, rate_per_ms=1.0, seed=2, items=12)
    out = apply_cache(c, req, np.random.default_rng(0))
    ik = item_keys(req.key, req.items)
    h1, h2 = reference_replay(c, ik, np.repeat(req.arrival_ms, req.items))
    starts = np.cumsum(req.items) - req.items
    assert np.array_equal(out.l1_items, np.add.reduceat(h1.astype(int), starts))
    assert np.array_equal(out.l2_items, np.add.reduceat(h2.astype(int), starts))
    missing = req.items - out.l1_items - out.l2_items
    assert np.array_equal(out.items_to_compute, missing)
    assert np.array_equal(out.served, missing == 0)
    assert np.array_equal(out.l1_hit, out.l1_items == req.items)
    assert out.served.any() and (~out.served).any() and ((missing > 0) & (missing < req.items)).any()


def test_per_item_l2_lookup_is_one_mget_of_the_l1_misses():
    c = cache(
        l1={"capacity": 1000},
        l2={"capacity": 1000, "lookup_ms": {"kind": "constant", "value": 0.5}, "per_key_ms": 0.01},
        per_item=True,
    )
    req = Requests(arrival_ms=np.arange(3.0), items=np.array([4, 6, 6]), key=np.array([7, 7, 7]))
    out = apply_cache(c, req, np.random.default_rng(0))
    # 4 item misses: one MGET of 4 keys; then items 0-3 hit L1 and 4-5 miss: MGET of 2; then all hit L1
    assert out.l1_items.tolist() == [0, 4, 6] and out.items_to_compute.tolist() == [4, 2, 0]
    assert out.cache_ms == pytest.approx([0.5 + 3 * 0.01, 0.5 + 1 * 0.01, 0.0])


def test_item_keys_are_distinct_per_request_key_and_index():
    keys = np.array([5, 7, 5, -3, 2**62], dtype=np.int64)
    items = np.array([3, 1, 2, 2, 1])
    ik = item_keys(keys, items)
    pairs = list(zip(np.repeat(keys, items).tolist(), (np.arange(9) - np.repeat(np.cumsum(items) - items, items)).tolist(), strict=True))
    assert len(set(ik.tolist())) == len(set(pairs))  # (k, j) <-> item key is one-to-one
    assert ik[0] == ik[4] and ik[1] == ik[5]  # the same key asks again for its first items


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(-5, 12), min_size=1, max_size=300),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=300, max_size=300),
    cap=st.integers(1, 8),
    ttl=st.one_of(st.none(), st.floats(0.5, 20)),
)
def test_lru_matches_reference_on_arbitrary_streams(keys, gaps, cap, ttl):
    k = np.array(keys, dtype=np.int64)
    t = np.cumsum(gaps[: len(keys)])
    ref = RefLRU(cap, ttl)
    expected = np.array([ref.lookup(a, b) for a, b in zip(k.tolist(), t.tolist(), strict=True)], dtype=bool)
    split = len(k) // 2
    c = LRUCache(cap, ttl)
    got = np.concatenate([c.access(k[:split], t[:split]), c.access(k[split:], t[split:])])
    assert np.array_equal(got, expected)
    assert len(c) == len(ref.entries)


def test_stack_distances_give_the_hit_ratio_at_every_capacity():
    req = zipf_requests(20_000, 1.0, 3_000, 1.0, seed=3)
    sd = stack_distances(req.key)
    for cap in (1, 10, 100, 1000):
        hits = LRUCache(cap).access(req.key, req.arrival_ms)
        assert np.array_equal(hits, (sd >= 0) & (sd < cap))
    curve = hit_ratio_vs_capacity(req.key, [10, 100], skip=5_000)
    assert curve.hit_ratio.tolist() == [
        LRUCache(c).access(req.key, req.arrival_ms)[5_000:].mean() for c in (10, 100)
    ]


# ---------------------------------------------------------------- theory


@pytest.mark.parametrize("exponent,key_space", [(0.8, 20_000), (1.0, 100_000)])
def test_zipf_hit_ratio_agrees_with_ches_approximation(exponent, key_space):
    p = zipf_popularity(exponent, key_space)
    m, skip, batches = 400_000, 100_000, 50
    keys = np.random.default_rng(11).choice(key_space, size=m, p=p)
    for cap in (50, 500, 2000, 8000):
        hits = LRUCache(cap).access(keys, np.zeros(m))[skip:]
        means = hits.reshape(batches, -1).mean(axis=1)  # batch means: hits are correlated in time
        se = means.std(ddof=1) / np.sqrt(batches)
        che = che_hit_ratio(p, cap)
        assert abs(hits.mean() - che) < 4 * se, (cap, hits.mean(), che, se)


def test_che_limits():
    p = zipf_popularity(1.0, 1000)
    assert che_hit_ratio(p, 1000) == 1.0
    assert che_hit_ratio(np.full(100, 0.01), 50) == pytest.approx(1 - np.exp(-0.01 * 69.3147), rel=1e-3)
    assert che_hit_ratio(p, 10) < che_hit_ratio(p, 100) < che_hit_ratio(p, 500)


# ---------------------------------------------------------------- semantics, directly


def test_ttl_counts_from_the_write_and_reads_do_not_extend_it():
    c = LRUCache(10, ttl_ms=10.0)
    got = c.access(np.array([1, 1, 1, 1, 1]), np.array([0.0, 5.0, 9.99, 10.0, 15.0]))
    # written at 0; fresh until 10 (reads at 5 and 9.99 do not extend); at 10 expired -> rewritten
    assert got.tolist() == [False, True, True, False, True]


def test_expired_entry_keeps_its_slot_until_evicted():
    c = LRUCache(2, ttl_ms=1.0)
    c.access(np.array([1, 2]), np.array([0.0, 0.0]))
    assert len(c) == 2
    got = c.access(np.array([3, 1]), np.array([5.0, 5.0]))  # 3 evicts 1 (least recent), so 1 misses
    assert got.tolist() == [False, False]
    assert c.access(np.array([3]), np.array([5.5])).tolist() == [True]


def _run(cfg: Cache, keys) -> object:
    keys = np.asarray(keys)
    n = len(keys)
    req = Requests(arrival_ms=np.arange(n, dtype=float), items=np.ones(n, dtype=np.int64), key=keys)
    return apply_cache(cfg, req, np.random.default_rng(0))


def test_l2_hit_is_promoted_to_l1():
    out = _run(cache(l1={"capacity": 1}, l2={"capacity": 2, "lookup_ms": L2_FAST}), [1, 2, 1, 1])
    # 1, 2: miss both; 1: L1 miss (2 evicted it), L2 hit, promoted; 1: L1 hit
    assert out.l1_hit.tolist() == [0, 0, 0, 1]
    assert out.l2_hit.tolist() == [0, 0, 1, 0]
    assert out.served.tolist() == [0, 0, 1, 1]
    assert out.cache_ms.tolist() == [0.5, 0.5, 0.5, 0.0]  # L2 is asked only after an L1 miss


def test_l1_hits_do_not_refresh_l2():
    out = _run(cache(l1={"capacity": 2}, l2={"capacity": 2, "lookup_ms": L2_FAST}), [1, 2, 1, 3, 2])
    # L2 holds [1, 2]; the L1 hit on 1 leaves 1 least recent in L2, so 3 evicts 1 there, not 2;
    # 2 (evicted from L1 by 3) is then an L2 hit.
    assert out.l1_hit.tolist() == [0, 0, 1, 0, 0]
    assert out.l2_hit.tolist() == [0, 0, 0, 0, 1]


def test_lookup_times_are_drawn_per_level():
    c = cache(
        l1={"capacity": 50, "lookup_ms": {"kind": "constant", "value": 0.01}},
        l2={"capacity": 500, "lookup_ms": {"kind": "exponential", "mean": 0.4}},
    )
    req = zipf_requests(50_000, 1.0, 2_000, 1.0, seed=4)
    out = apply_cache(c, req, np.random.default_rng(1))
    l1_only = out.l1_hit
    assert np.allclose(out.cache_ms[l1_only], 0.01)
    extra = out.cache_ms[~l1_only] - 0.01
    se = 0.4 / np.sqrt(extra.size)
    assert abs(extra.mean() - 0.4) < 4 * se
    assert np.array_equal(out.items_to_compute, np.where(out.served, 0, req.items))


def test_same_seed_same_outcome():
    c = cache(l1={"capacity": 20}, l2={"capacity": 200, "lookup_ms": {"kind": "lognormal", "median": 0.3, "sigma": 0.5}})
    req = zipf_requests(5_000, 1.0, 1_000, 1.0, seed=5)
    a = apply_cache(c, req, np.random.default_rng(9))
    b = apply_cache(c, req, np.random.default_rng(9))
    assert np.array_equal(a.cache_ms, b.cache_ms) and np.array_equal(a.served, b.served)


# ---------------------------------------------------------------- hit-ratio override


def test_fixed_hit_ratios_are_drawn_per_lookup_without_keys():
    c = cache(l1={"capacity": 10}, l2={"capacity": 10, "lookup_ms": L2_FAST}, hit_ratio={"l1": 0.3, "l2": 0.5})
    n = 200_000
    req = Requests(arrival_ms=np.arange(n, dtype=float), items=np.ones(n, dtype=np.int64))
    out = apply_cache(c, req, np.random.default_rng(2))
    for got, p in ((out.l1_hit.mean(), 0.3), (out.l2_hit.mean(), 0.7 * 0.5), (out.served.mean(), 0.65)):
        assert abs(got - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_plain_hit_ratio_counts_at_the_first_level():
    assert cache(l1={"capacity": 1}, hit_ratio=0.4).fixed_hit_ratios() == (0.4, 0.0)
    assert cache(l2={"capacity": 1, "lookup_ms": L2_FAST}, hit_ratio=0.4).fixed_hit_ratios() == (0.0, 0.4)


def test_keys_are_needed_without_an_override():
    req = Requests(arrival_ms=np.arange(3.0), items=np.ones(3, dtype=np.int64))
    with pytest.raises(SimlatError, match="workload.keys"):
        apply_cache(cache(l1={"capacity": 5}), req, np.random.default_rng(0))


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({}, "at least one level"),
        ({"l1": {"capacity": 0}}, "capacity"),
        ({"l1": {"capacity": 5, "ttl_ms": -1}}, "ttl_ms"),
        ({"l1": {"capacity": 5}, "hit_ratio": 1.5}, "hit_ratio"),
        ({"l1": {"capacity": 5}, "hit_ratio": {"l2": 0.5}}, "needs a cache.l2"),
        ({"l1": {"capacity": 5, "size": 3}}, "size"),
        ({"l2": {"capacity": 5}}, "lookup_ms"),
    ],
)
def test_bad_cache_config_names_the_field(cfg, message):
    from simlat.config import parse_experiment

    data = {
        "name": "x",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 10}},
        "service": {"kind": "deterministic", "ms": 1},
        "slo": {"latency_ms": 10},
        "cache": cfg,
    }
    with pytest.raises(SimlatError) as err:
        parse_experiment(data)
    assert message in str(err.value)
    assert "cache" in str(err.value)


def test_missing_redis_profile_is_a_clear_error(tmp_path):
    c = cache(l2={"capacity": 5, "lookup_ms": {"kind": "redis_profile", "path": str(tmp_path / "nope.json")}})
    req = zipf_requests(10, 1.0, 5, 1.0, seed=0)
    with pytest.raises(SimlatError, match=r"cache\.l2\.lookup_ms\.path"):
        apply_cache(c, req, np.random.default_rng(0))


# ---------------------------------------------------------------- warm-up


def _zipf_workload(rate_rps=1000.0, exponent=0.9, key_space=200_000, items=1):
    from simlat.config.workload import Workload

    return Workload.model_validate(
        {"arrivals": {"kind": "poisson", "rate_rps": rate_rps}, "items_per_request": items,
         "keys": {"kind": "zipf", "exponent": exponent, "key_space": key_space}}
    )


def test_auto_warmup_is_the_ttl_or_two_characteristic_times():
    from simlat.engine.cache import warmup_seconds
    from simlat.engine.cache_curve import che_characteristic_time
    from simlat.workload.keys import zipf_groups

    wl = _zipf_workload(rate_rps=1000.0)
    p, count = zipf_groups(wl.keys)
    t = {c: che_characteristic_time(p, c, count) for c in (500, 5500, 125)}
    assert t[500] > 500  # more lookups than keys held: some repeat
    assert warmup_seconds(cache(l1={"capacity": 500}), wl) == pytest.approx(2 * t[500] / 1000)
    assert warmup_seconds(cache(l1={"capacity": 500, "ttl_ms": 70}), wl) == pytest.approx(0.07)
    two = cache(l1={"capacity": 500, "ttl_ms": 70}, l2={"capacity": 5000, "lookup_ms": L2_FAST})
    assert warmup_seconds(two, wl) == pytest.approx(2 * t[5500] / 1000)  # L2 with both levels' capacity
    per_item = warmup_seconds(cache(l1={"capacity": 500}, per_item=True), _zipf_workload(items=4))
    assert per_item == pytest.approx(2 * t[125] / 1000)
    assert warmup_seconds(cache(l1={"capacity": 500}, warmup_s=3), wl) == 3.0
    everything = cache(l1={"capacity": 10**6})  # holds the whole key space: two lookups per key, not 10M
    assert warmup_seconds(everything, wl) == pytest.approx(2 * wl.keys.key_space / 1000)
    huge = _zipf_workload(rate_rps=1000.0).model_copy(update={"keys": wl.keys.model_copy(update={"key_space": 10**8})})
    assert warmup_seconds(cache(l1={"capacity": 10**9}), huge) == pytest.approx(10_000_000 / 1000)  # still capped


def test_a_short_warmed_run_sees_the_steady_state_hit_ratio():
    from simlat.workload import generate

    wl = _zipf_workload()
    c = cache(l1={"capacity": 20_000})
    req = generate(wl, n=30_000, duration_s=None, seed=np.random.SeedSequence(4))
    warm = apply_cache(c, req, np.random.default_rng(0), warmup=warmup_source(c, wl))
    cold = apply_cache(c, req, np.random.default_rng(0))
    che = che_hit_ratio(zipf_popularity(0.9, 200_000), 20_000)
    h = (warm.l1_items + warm.l2_items).astype(float)
    se = h.reshape(30, -1).mean(axis=1).std(ddof=1) / np.sqrt(30)
    assert warm.warmup_requests > 40_000
    assert abs(h.mean() - che) < 4 * se
    assert cold.hit_ratio() < che - 0.1  # a cold cache of 20,000 keys is far from full after 30,000 requests
    assert cold.warnings and "still rising" in cold.warnings[0]
    assert not warm.warnings


def test_no_warmup_for_fixed_hit_ratios_or_when_asked():
    wl = _zipf_workload()
    req = zipf_requests(1_000, 0.9, 1_000, 1.0, seed=6)
    for c in (cache(l1={"capacity": 10}, hit_ratio=0.2), cache(l1={"capacity": 10}, warmup_s=0)):
        assert warmup_source(c, wl) is None
        assert apply_cache(c, req, np.random.default_rng(0), warmup=warmup_source(c, wl)).warmup_requests == 0


# ---------------------------------------------------------------- end to end


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_feed_cache_experiment_runs_end_to_end_with_the_calibrated_redis_l2():
    from simlat.api import run
    from simlat.config import load_experiment
    from simlat.profiles.redis import load_redis_profile

    exp = load_experiment(ROOT / "experiments" / "feed_cache.yaml")
    assert exp.cache.l2.lookup_ms.kind == "redis_profile" and exp.fleet.replicas == 8
    assert exp.fleet.balancer == "join_shortest_queue" and exp.workload.keys.kind == "zipf"
    result = run(exp, requests=20_000, keep_records=True)
    rec = result.records[0].records
    served = rec.l1_hit | rec.l2_hit
    assert 0.3 < served.mean() < 0.8
    assert not np.any(rec.l1_hit & rec.l2_hit)
    # a served request skips the model: no queue, no service, latency = lookups + overheads
    assert np.all(rec.service_ms[served] == 0) and np.all(rec.batch_id[served] == -1)
    # (with the serving stack: plus the loop's ingress, counted as queue wait, and its reply)
    assert np.allclose(rec.latency_ms[served], rec.cache_ms[served] + rec.overhead_ms[served]
                       + rec.queue_wait_ms[served] + rec.reply_ms[served])
    # the L2 round trips come from the measured GET distribution
    get = load_redis_profile(exp.cache.l2.lookup_ms.path).get
    l2_ms = rec.cache_ms[~rec.l1_hit] - 0.002
    assert get.min_ms - 1e-9 <= l2_ms.min() and l2_ms.max() <= get.max_ms + 1e-9
    assert abs(np.median(l2_ms) - get.p50_ms) < 0.1 * get.p50_ms
    assert result.summary.p99_ms < exp.slo.latency_ms


def test_cache_fields_are_sweep_dimensions():
    from simlat.config import load_experiment
    from simlat.sweep.grid import expand

    exp = load_experiment(ROOT / "experiments" / "feed_cache.yaml")
    assert "cache.l2.capacity" in exp.sweep.grid
    grid = {"cache.l1.capacity": [1000, 50000], "cache.l2.ttl_ms": [1000, 60000], "cache.per_item": [False, True]}
    swept = exp.model_copy(update={"sweep": exp.sweep.model_copy(update={"grid": grid})})
    configs = expand(swept)
    assert len(configs) == 8
    assert {(c.experiment.cache.l1.capacity, c.experiment.cache.l2.ttl_ms, c.experiment.cache.per_item) for c in configs} == {
        (a, b, p) for a in (1000, 50000) for b in (1000, 60000) for p in (False, True)
    }
    assert all(c.experiment.cache.l2.lookup_ms.kind == "redis_profile" for c in configs)


def test_hit_ratio_curve_for_the_report_follows_che_and_grows_with_capacity():
    from simlat.config import parse_experiment
    from simlat.engine.cache_curve import hit_ratio_curve

    exp = parse_experiment({
        "name": "curve",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 2000},
                     "keys": {"kind": "zipf", "exponent": 0.9, "key_space": 100_000}},
        "service": {"kind": "deterministic", "ms": 1},
        "slo": {"latency_ms": 10},
        "cache": {"l2": {"capacity": 10, "lookup_ms": L2_FAST}},
        "run": {"requests": 60_000, "seed": 3},
    })
    curve = hit_ratio_curve(exp, [100, 1_000, 10_000], level="l2")
    assert curve.capacity.tolist() == [100, 1_000, 10_000]
    assert curve.hit_ratio.is_monotonic_increasing
    assert np.allclose(curve.hit_ratio, curve.l2_hit_ratio) and np.all(curve.l1_hit_ratio == 0)
    assert np.allclose(curve.hit_ratio, curve.served_ratio)
    n = 54_000  # after the run's 10% warm-up
    for h, che in zip(curve.hit_ratio, curve.che_hit_ratio, strict=True):
        assert abs(h - che) < 5 * np.sqrt(che * (1 - che) / n), (h, che)


def test_trace_keys_replay_exactly_and_start_cold(tmp_path):
    from simlat.api import run
    from simlat.config import parse_experiment

    rng = np.random.default_rng(8)
    n = 5_000
    users = np.array([f"user-{i}" for i in rng.choice(400, size=n, p=zipf_popularity(1.0, 400))])
    csv = tmp_path / "trace.csv"
    csv.write_text("timestamp,user\n" + "\n".join(f"{t:.6f},{u}" for t, u in zip(np.cumsum(rng.exponential(0.002, n)), users, strict=True)))
    exp = parse_experiment({
        "name": "trace-cache",
        "workload": {"arrivals": {"kind": "trace", "path": str(csv), "unit": "s", "key_column": "user", "loop": False},
                     "keys": {"kind": "trace"}},
        "service": {"kind": "deterministic", "ms": 0.5},
        "slo": {"latency_ms": 10},
        "cache": {"l1": {"capacity": 50, "ttl_ms": 2000}, "l2": {"capacity": 200, "lookup_ms": L2_FAST}},
        "run": {"requests": n, "warmup_fraction": 0},
    })
    rec = run(exp, keep_records=True).records[0].records
    h1, h2 = reference_replay(exp.cache, rec.key, rec.arrival_ms)
    assert np.array_equal(rec.l1_hit, h1) and np.array_equal(rec.l2_hit, h2)
    assert len(set(rec.key.tolist())) == len(set(users.tolist()))  # one int64 key per distinct user


# ---------------------------------------------------------------- L1 copies (one per serving process)


@pytest.mark.parametrize("per_item", [False, True])
def test_l1_copies_replay_exactly_through_one_reference_lru_per_copy(per_item):
    from simlat.engine.lru import item_lookups

    req = zipf_requests(6_000, 1.0, 500, rate_per_ms=1.0, seed=12, items=5 if per_item else None)
    copy = np.random.default_rng(3).integers(3, size=len(req))
    l1 = LRUCache(40, 300.0, copies=3)
    l2 = LRUCache(400, 2000.0)
    keys = item_keys(req.key, req.items) if per_item else req.key
    bits = int(req.items.max()).bit_length() if per_item else 0
    got1, got2 = item_lookups(req.key, req.arrival_ms, req.items, bits, l1, l2, l1_copy=copy, chunk=1000)
    refs = [RefLRU(40, 300.0) for _ in range(3)]
    ref2 = RefLRU(400, 2000.0)
    req_of = np.repeat(np.arange(len(req)), req.items)
    times = np.repeat(req.arrival_ms, req.items)
    exp1 = np.zeros(len(req), dtype=int)
    exp2 = np.zeros(len(req), dtype=int)
    for k, t, r in zip(keys.tolist(), times.tolist(), req_of.tolist(), strict=True):
        if refs[copy[r]].lookup(k, t):
            exp1[r] += 1
        elif ref2.lookup(k, t):
            exp2[r] += 1
    assert np.array_equal(got1, exp1) and np.array_equal(got2, exp2)


def test_l1_copies_each_see_a_thinned_stream_with_the_same_hit_ratio_as_one_small_cache():
    """Random thinning of independent Zipf requests keeps the popularity law, so each of 4 copies of
    capacity C hits like one LRU of capacity C (Che), well below one shared LRU of 4C."""
    key_space, cap, n = 50_000, 500, 200_000
    p = zipf_popularity(0.9, key_space)
    keys = np.random.default_rng(13).choice(key_space, size=n, p=p)
    req = Requests(arrival_ms=np.arange(n, dtype=float), items=np.ones(n, dtype=np.int64), key=keys)
    out = apply_cache(cache(l1={"capacity": cap, "copies": "replicas"}), req, np.random.default_rng(1), replicas=4)
    hits = out.l1_hit[n // 4 :].astype(float)
    se = hits.reshape(30, -1).mean(axis=1).std(ddof=1) / np.sqrt(30)
    assert abs(hits.mean() - che_hit_ratio(p, cap)) < 4 * se
    assert hits.mean() < che_hit_ratio(p, 4 * cap) - 0.05


def test_lru_copies_are_independent_caches():
    rng = np.random.default_rng(21)
    keys = rng.integers(0, 30, size=3000)
    times = np.cumsum(rng.exponential(1.0, size=3000))
    copy = rng.integers(0, 4, size=3000)
    refs = [RefLRU(5, 40.0) for _ in range(4)]
    expected = [refs[c].lookup(k, t) for k, t, c in zip(keys.tolist(), times.tolist(), copy.tolist(), strict=True)]
    c = LRUCache(5, 40.0, copies=4)
    assert c.access(keys, times, copy).tolist() == expected
    assert len(c) == sum(len(r.entries) for r in refs)
    with pytest.raises(ValueError, match="copy"):
        c.access(keys[:2], times[:2], np.array([0, 4]))
