"""Speed of the prediction caches: the cache stage alone, and the feed pipeline with the cache on
(cache + 8 replicas + join-shortest-queue, experiments/feed_cache.yaml), in simulated requests
per CPU-second (``time.process_time``, median of ``--repeat`` runs after one warm-up call that
compiles the LRU kernel).

    python benchmarks/cache_bench.py [--requests 1000000] [--repeat 3]

The target is >= 1,000,000 simulated requests per CPU-second for the feed pipeline;
benchmarks/engine_bench.py measures it beside the engine's other targets.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from simlat.config import load_experiment
from simlat.engine import simulate
from simlat.engine.cache import apply_cache, warmup_source
from simlat.workload import generate

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1_000_000


def cpu_seconds(fn, repeat: int) -> float:
    """Median of ``repeat`` CPU times of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.requests

    exp = load_experiment(ROOT / "experiments" / "feed_cache.yaml")
    reqs = generate(exp.workload, n=n, duration_s=None, seed=np.random.SeedSequence(1))
    small = generate(exp.workload, n=1000, duration_s=None, seed=np.random.SeedSequence(2))
    simulate(exp, small, seed=np.random.SeedSequence(0), progress=False)  # compile and import first

    rows = []

    def stage(cache_cfg, label, requests, workload=exp.workload):
        out = {}

        def once():
            out["o"] = apply_cache(
                cache_cfg, requests, np.random.default_rng(0), warmup=warmup_source(cache_cfg, workload),
                replicas=exp.fleet.replicas,
            )

        cpu = cpu_seconds(once, args.repeat)
        o = out["o"]
        lookups = int(o.lookups.sum())
        rows.append((label, len(requests) / cpu, f"{lookups / cpu / 1e6:.1f} M lookups/s (+{o.warmup_requests:,} warm-up requests)", o.hit_ratio()))

    stage(exp.cache, "cache stage, per request (8 L1 copies + Redis L2)", reqs)
    cold = exp.cache.model_copy(update={"warmup_s": 0.0})
    stage(cold, "cache stage, per request, no warm-up", reqs)
    fan = exp.workload.model_copy(update={"items_per_request": 20})
    fan_reqs = generate(fan, n=n // 4, duration_s=None, seed=np.random.SeedSequence(3))
    per_item = exp.cache.model_copy(update={"per_item": True, "warmup_s": 0.0})
    stage(per_item, "cache stage, per item (20 items/request), no warm-up", fan_reqs, fan)

    res = {}

    def pipeline():
        res["r"] = simulate(exp, reqs, seed=np.random.SeedSequence(0), progress=False)

    cpu = cpu_seconds(pipeline, args.repeat)
    served = float(np.mean(res["r"].records.l1_hit | res["r"].records.l2_hit))
    rows.append(("feed pipeline: cache + 8 replicas + JSQ (simulate)", n / cpu, f"{cpu:.3f} CPU-s", served))

    print(f"{n:,} requests, median of {args.repeat}, CPU time (time.process_time)")
    for label, rate, extra, hit in rows:
        print(f"  {label:<58} {rate / 1e6:6.2f} M req/CPU-s  hit {hit:6.1%}  {extra}")
    ok = rows[-1][1] >= TARGET
    print(f"target >= {TARGET / 1e6:.0f} M req/CPU-s for the feed pipeline: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
