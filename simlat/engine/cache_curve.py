"""Hit ratio as a function of cache capacity: simulated exactly from a key stream, beside Che's
approximation (:mod:`simlat.engine.che`) for independent Zipf-popular keys (the data behind the
report's cache chart).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simlat.engine.che import che_characteristic_time, che_hit_ratio, zipf_popularity

__all__ = ["che_characteristic_time", "che_hit_ratio", "hit_ratio_curve", "hit_ratio_vs_capacity", "zipf_popularity"]


def hit_ratio_vs_capacity(
    keys: np.ndarray,
    capacities,
    *,
    times_ms: np.ndarray | None = None,
    ttl_ms: float | None = None,
    skip: int = 0,
) -> pd.DataFrame:
    """Exact LRU hit ratio of one key stream at each capacity (columns ``capacity, hit_ratio``).

    Lookups before index ``skip`` warm the cache but are not counted. Without TTL one pass of stack
    distances serves every capacity; with ``ttl_ms`` (and ``times_ms``) each capacity is replayed.
    """
    from simlat.engine.lru import LRUCache, stack_distances

    keys = np.asarray(keys, dtype=np.int64)
    caps = np.asarray(sorted(int(c) for c in capacities), dtype=np.int64)
    counted = max(1, len(keys) - skip)
    if ttl_ms is None:
        sd = stack_distances(keys)[skip:]
        sd = np.sort(sd[sd >= 0])
        hits = np.searchsorted(sd, caps, side="left")
    else:
        if times_ms is None:
            raise ValueError("times_ms is needed with ttl_ms")
        hits = np.array(
            [LRUCache(c, ttl_ms, max_entries=len(keys)).access(keys, times_ms)[skip:].sum() for c in caps]
        )
    return pd.DataFrame({"capacity": caps, "hit_ratio": hits / counted})


def hit_ratio_curve(experiment, capacities, *, level: str = "l2", requests=None, seed: int | None = None) -> pd.DataFrame:
    """Hit ratios of ``experiment``'s caches with ``cache.<level>.capacity`` set to each of
    ``capacities``, on one workload draw (after the cache warm-up and the run's warm-up fraction).

    Columns: ``capacity, hit_ratio`` (lookups answered by any level), ``l1_hit_ratio``,
    ``l2_hit_ratio`` (of all lookups), ``served_ratio`` (requests that skip the model) and
    ``che_hit_ratio`` (Che's approximation for one LRU level on Zipf keys without TTL, else NaN).
    """
    from simlat.engine.cache import apply_cache, warmup_source
    from simlat.workload import generate
    from simlat.workload.keys import zipf_groups

    cache = experiment.cache
    if cache is None or getattr(cache, level, None) is None:
        raise ValueError(f"cache.{level}: the experiment has no such cache level")
    run = experiment.run
    seed_seq = np.random.SeedSequence(run.seed if seed is None else seed)
    if requests is None:
        requests = generate(experiment.workload, n=run.n_requests, duration_s=run.duration_s, seed=seed_seq)
    skip = int(len(requests) * run.warmup_fraction)
    keys_cfg = experiment.workload.keys
    che_ok = (
        getattr(keys_cfg, "kind", None) == "zipf"
        and not cache.per_item
        and cache.hit_ratio is None
        and (cache.l1 is None or cache.l2 is None)
        and getattr(cache, level).ttl_ms is None
    )
    groups = zipf_groups(keys_cfg) if che_ok else None
    rows = []
    for cap in sorted(int(c) for c in capacities):
        lvl = getattr(cache, level).model_copy(update={"capacity": cap})
        cfg = cache.model_copy(update={level: lvl})
        out = apply_cache(
            cfg, requests, np.random.default_rng(seed_seq),
            warmup=warmup_source(cfg, experiment.workload), replicas=experiment.fleet.replicas,
        )
        total = max(1, int(out.lookups[skip:].sum()))
        rows.append({
            "capacity": cap,
            "hit_ratio": out.hit_ratio(skip),
            "l1_hit_ratio": float(out.l1_items[skip:].sum() / total),
            "l2_hit_ratio": float(out.l2_items[skip:].sum() / total),
            "served_ratio": float(out.served[skip:].mean()) if len(out.served) > skip else float("nan"),
            "che_hit_ratio": che_hit_ratio(groups[0], cap, groups[1]) if che_ok else float("nan"),
        })
    return pd.DataFrame(rows)
