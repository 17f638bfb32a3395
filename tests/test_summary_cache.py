"""Cache results in the summary: hit ratios after warm-up (L1, L2, overall), the cache stage's
warnings, and both in the table and the JSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from simlat.config import parse_experiment
from simlat.engine import simulate
from simlat.metrics import summarize
from simlat.summary_view import print_summary, summary_json
from simlat.workload import generate


def experiment(cache, keys=None, items=1, requests=40_000):
    return parse_experiment(
        {
            "name": "cache-summary",
            "workload": {
                "arrivals": {"kind": "poisson", "rate_rps": 2000.0},
                "items_per_request": items,
                "keys": keys or {"kind": "zipf", "exponent": 1.0, "key_space": 50_000},
            },
            "fleet": {"replicas": 2, "queue": "per_replica", "balancer": "join_shortest_queue"},
            "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
            "service": {"kind": "affine", "base_ms": 0.5, "per_item_ms": 0.01},
            "cache": cache,
            "slo": {"latency_ms": 20.0},
            "run": {"requests": requests, "warmup_fraction": 0.2},
        }
    )


TWO_LEVELS = {
    "l1": {"capacity": 500, "copies": "replicas"},
    "l2": {"capacity": 5000, "lookup_ms": {"kind": "constant", "value": 0.3}},
}


def run(exp, replications=1):
    results = []
    for seed in range(replications):
        req = generate(
            exp.workload, n=exp.run.requests, duration_s=None, seed=np.random.SeedSequence(100 + seed)
        )
        results.append(simulate(exp, req, seed=np.random.SeedSequence(seed)))
    return results, summarize(results, exp)


def test_hit_ratios_are_those_of_the_measured_requests():
    exp = experiment(TWO_LEVELS)
    results, summary = run(exp, replications=2)
    # per request caching: one lookup each, so the ratios are those of the records after warm-up
    l1 = np.concatenate([r.records.l1_hit[int(0.2 * len(r.records)) :] for r in results])
    l2 = np.concatenate([r.records.l2_hit[int(0.2 * len(r.records)) :] for r in results])
    assert summary.cache_l1_hit_ratio == pytest.approx(l1.mean(), rel=1e-12)
    assert summary.cache_hit_ratio == pytest.approx((l1 | l2).mean(), rel=1e-12)
    assert summary.cache_l2_hit_ratio == pytest.approx(l2.sum() / (~l1).sum(), rel=1e-12)
    assert 0.05 < summary.cache_l1_hit_ratio < summary.cache_hit_ratio < 0.95
    # warm-up excluded: the ratio over all requests differs from the one after warm-up
    everything = np.concatenate([r.records.l1_hit | r.records.l2_hit for r in results]).mean()
    assert everything != pytest.approx(summary.cache_hit_ratio, rel=1e-9)


def test_per_item_hit_ratio_counts_lookups_not_requests():
    cache = {**TWO_LEVELS, "per_item": True, "warmup_s": 0}
    exp = experiment(cache, items={"kind": "choice", "values": [1, 2, 3, 4, 5, 6]}, requests=20_000)
    (res,), summary = run(exp)
    skip = int(0.2 * len(res.records))
    c = res.cache
    lookups, l1, l2 = (int(np.asarray(a)[skip:].sum()) for a in (c.lookups, c.l1_items, c.l2_items))
    assert lookups > len(res.records) - skip  # several items per request
    assert summary.cache_hit_ratio == pytest.approx((l1 + l2) / lookups, rel=1e-12)
    assert summary.cache_l2_hit_ratio == pytest.approx(l2 / (lookups - l1), rel=1e-12)
    served = (res.records.l1_hit | res.records.l2_hit)[skip:].mean()
    assert summary.cache_hit_ratio > served  # a request is served only when all its items hit


def test_no_cache_no_hit_ratio():
    exp = parse_experiment(
        {
            "name": "plain",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": 500.0}},
            "service": {"kind": "exponential", "mean_ms": 1.0},
            "slo": {"latency_ms": 20.0},
        }
    )
    req = generate(exp.workload, n=5000, duration_s=None, seed=np.random.SeedSequence(1))
    summary = summarize([simulate(exp, req, seed=np.random.SeedSequence(1))], exp)
    data = json.loads(summary_json(summary))
    assert data["cache_hit_ratio"] is None and data["cache_l1_hit_ratio"] is None
    out = io.StringIO()
    from rich.console import Console

    print_summary(exp, summary, Console(file=out, width=120))
    assert "cache hit ratio" not in out.getvalue()


def test_a_cache_still_warming_up_warns_in_the_summary_json_and_table():
    """A cold, large cache over a wide key space: its hit ratio climbs through the run."""
    cache = {"l2": {"capacity": 200_000, "lookup_ms": {"kind": "constant", "value": 0.3}}, "warmup_s": 0}
    exp = experiment(cache, keys={"kind": "zipf", "exponent": 0.8, "key_space": 2_000_000}, requests=40_000)
    (res,), summary = run(exp)
    assert any("still rising" in w for w in res.warnings)
    assert [w for w in summary.warnings if "still rising" in w] == [w for w in res.warnings if "still rising" in w]
    data = json.loads(summary_json(summary))
    assert 0 < data["cache_hit_ratio"] < 1 and data["cache_l1_hit_ratio"] is None
    assert any("still rising" in w for w in data["warnings"])
    out = io.StringIO()
    from rich.console import Console

    print_summary(exp, summary, Console(file=out, width=160))
    text = out.getvalue()
    assert "cache hit ratio (after warm-up)" in text and f"{summary.cache_hit_ratio:.1%} of lookups" in text
    assert "still rising" in text

    warm = experiment({**cache, "warmup_s": "auto"}, keys=exp.workload.keys.model_dump(), requests=40_000)
    (res_warm,), summary_warm = run(warm)
    assert not any("still rising" in w for w in [*res_warm.warnings, *summary_warm.warnings])


def test_sweep_points_get_a_hit_ratio_column_and_readable_cache_settings():
    from simlat.sweep.runner import run_sweep

    base = {
        "name": "cache-sweep",
        "workload": {
            "arrivals": {"kind": "poisson", "rate_rps": 2000.0},
            "keys": {"kind": "zipf", "exponent": 1.0, "key_space": 50_000},
        },
        "fleet": {"replicas": 2, "queue": "per_replica", "balancer": "join_shortest_queue"},
        "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
        "service": {"kind": "affine", "base_ms": 0.5, "per_item_ms": 0.01},
        "cache": {**TWO_LEVELS, "warmup_s": 0},
        "slo": {"latency_ms": 20.0, "target_rate_rps": 2000.0},
        "run": {"seed": 5},
        "sweep": {
            "grid": {"cache.l2.capacity": [500, 20_000]},
            "cost_per_replica_hour": 1.0,
            "min_requests": 8000,
            "max_requests": 8000,
            "rate_search": None,
        },
    }
    result = run_sweep(parse_experiment(base), cache_dir=None, workers=1, details=False)
    pts = result.points.sort_values("cache.l2.capacity")
    assert "hit_ratio" in pts.columns
    small, large = pts["hit_ratio"].to_numpy()
    assert 0 < small < large < 1  # a larger L2 answers more lookups
    assert "L2 20k entries" in result.recommendation or "L2 500 entries" in result.recommendation
    assert "{" not in result.recommendation and "Path" not in result.recommendation

    plain = {k: v for k, v in base.items() if k != "cache"}
    plain["sweep"] = {**base["sweep"], "grid": {"fleet.replicas": [2]}}
    result = run_sweep(parse_experiment(plain), cache_dir=None, workers=1, details=False)
    assert "hit_ratio" not in result.points.columns
