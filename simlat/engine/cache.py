"""The cache stage: which requests the prediction caches serve, before the balancer sees them.

The model (exactly what :func:`apply_cache` computes):

1. Every request looks up its key at its arrival time, in arrival order; with ``per_item`` it looks
   up each of its items, keys (k, 0), ..., (k, items - 1).
2. L1 (in-process LRU, :mod:`simlat.engine.lru`; with ``copies`` > 1, one per serving process, each
   request using one chosen at random): a fresh entry is a hit. Every L1 miss writes the
   key into L1 at the lookup's time: either an L2 hit is promoted, or the model's answer is written
   back. The write is timed at the lookup, not when the model finishes, so the outcome of every
   lookup depends only on the key stream and replays exactly through a reference LRU; a key asked
   again while its first miss is still being computed counts as a hit (no thundering herd).
3. L2 (remote LRU) sees only the lookups that missed L1; an L2 miss is written back to L2 at the
   lookup's time the same way. A GET refreshes recency in L2 but never the TTL; an L1 hit does not
   touch L2, so L2 evicts keys that L1 keeps hot.
4. TTL counts from the write; an expired entry is a miss and keeps its slot until rewritten or
   evicted (lazy expiry).
5. Time spent: one L1 lookup draw per request (if L1), plus one L2 round trip if anything missed
   L1: one GET, or one MGET for the m items that missed L1, taking ``lookup + (m - 1) * per_key_ms``.
   The write-back SET is asynchronous and not on the request's path.
6. A request is ``served`` when all its lookups hit: it skips the model and its latency is
   ``cache_ms`` (plus the engine's network overheads). Otherwise it reaches the balancer at
   ``arrival + cache_ms`` with ``items_to_compute`` items, the lookups that missed both levels.

Before the run, ``cache.warmup_s`` seconds of the same workload (drawn independently, ending at time
0) go through the same steps, so that a short run starts from warm caches; their outcomes are
dropped. With ``hit_ratio`` set, each lookup instead hits L1 with probability ``l1`` and, after an L1 miss,
L2 with probability ``l2``, independently; keys are not needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import numpy as np

from simlat.config.cache import Cache, RedisProfileLatency
from simlat.errors import SimlatError

if TYPE_CHECKING:
    from simlat.workload import Requests

WARMUP_CHE_MULTIPLE = 2.0
"""``warmup_s: auto`` runs a level without TTL for this many of its characteristic times (Che's T:
under Che's approximation an LRU holds exactly the keys asked in the last T lookups)."""

MAX_WARMUP_LOOKUPS = 10_000_000
"""``warmup_s: auto`` never warms with more lookups than this (a warning says if the run was still warming)."""

WarmupSource = Callable[[np.random.SeedSequence], "Requests"]
"""Warm-up requests from a seed (:func:`warmup_source`): the cache stage draws the seed, the
workload generates the requests."""


@dataclass(frozen=True)
class CacheOutcome:
    """Per-request results of the cache stage (numpy arrays of one length: the requests).

    ``served``: every lookup hit, the model is skipped. ``l1_hit``: every lookup hit L1.
    ``l2_hit``: served, with at least one lookup answered by L2. ``cache_ms``: lookup time spent.
    ``items_to_compute``: items that go to the model (0 when served). ``lookups``: lookups made
    (the items with ``per_item``, else 1); ``l1_items``, ``l2_items``: those answered by each level.
    ``warmup_requests``: requests that warmed the caches before the run; ``warnings``: notes for the
    run's summary (a cache still warming up).
    """

    served: np.ndarray
    l1_hit: np.ndarray
    l2_hit: np.ndarray
    cache_ms: np.ndarray
    items_to_compute: np.ndarray
    lookups: np.ndarray
    l1_items: np.ndarray
    l2_items: np.ndarray
    warmup_requests: int = 0
    warnings: tuple[str, ...] = ()

    def hit_ratio(self, skip: int = 0) -> float:
        """Fraction of lookups answered by either level, from request ``skip`` on."""
        hits = self.l1_items[skip:].sum() + self.l2_items[skip:].sum()
        return float(hits / max(1, self.lookups[skip:].sum()))


def _packable(key: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, int]:
    """Request keys and the bit width of the item index, so that ``(key << bits) | j`` is exact
    (keys are renumbered 0..K-1 first if they are negative or too large to fit beside j)."""
    key = np.asarray(key, dtype=np.int64)
    bits = max(1, int(items.max()).bit_length()) if len(items) else 1
    if len(key) and (key.min() < 0 or int(key.max()) >= (1 << (62 - bits))):
        key = np.unique(key, return_inverse=True)[1].astype(np.int64).ravel()
    return key, bits


def _pack(key: np.ndarray, items: np.ndarray, bits: int) -> np.ndarray:
    starts = np.cumsum(items) - items
    j = np.arange(int(items.sum()), dtype=np.int64) - np.repeat(starts, items)
    return (np.repeat(key, items) << bits) | j


def item_keys(key: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cache key of every item, request by request: item j of a request with key k is (k, j),
    packed exactly into one int64."""
    items = np.asarray(items, dtype=np.int64)
    packed, bits = _packable(key, items)
    return _pack(packed, items, bits)


def lookup_sampler(latency, field: str):
    """A function (n, rng) -> n lookup times in ms, for a Dist or a Redis profile."""
    if isinstance(latency, RedisProfileLatency):
        from simlat.profiles.redis import load_redis_profile

        sketch = load_redis_profile(latency.path, f"{field}.path").get
        return sketch.sample
    from simlat.dists import is_zero, sample

    if is_zero(latency):
        return lambda n, rng: np.zeros(n)
    return lambda n, rng: sample(latency, n, rng)


def l2_per_key_ms(l2) -> float:
    """Extra MGET time per additional key: ``l2.per_key_ms``, else the Redis profile's slope, else 0."""
    if l2.per_key_ms is not None:
        return float(l2.per_key_ms)
    if isinstance(l2.lookup_ms, RedisProfileLatency):
        from simlat.profiles.redis import load_redis_profile

        return load_redis_profile(l2.lookup_ms.path, "cache.l2.lookup_ms.path").per_key_ms()
    return 0.0


def _level(cfg, n_lookups: int, copies: int = 1):
    from simlat.engine.lru import LRUCache

    return None if cfg is None else LRUCache(cfg.capacity, cfg.ttl_ms, max_entries=n_lookups, copies=copies)


def _lookup_hits(
    cfg: Cache, requests, lookups: np.ndarray, rng: np.random.Generator, replicas: int
) -> tuple[np.ndarray, np.ndarray]:
    """(L1 hits, L2 hits) per request, out of its ``lookups``."""
    fixed = cfg.fixed_hit_ratios()
    if fixed is not None:
        l1 = rng.binomial(lookups, fixed[0])
        return l1, rng.binomial(lookups - l1, fixed[1])
    if requests.key is None:
        raise SimlatError(
            "cache: the workload has no request keys; set workload.keys (zipf, or trace with a "
            "key_column), or give cache.hit_ratio for a fixed hit ratio"
        )
    from simlat.engine.lru import item_lookups

    keys, bits = _packable(requests.key, lookups) if cfg.per_item else (requests.key, 0)
    total = int(lookups.sum())
    copies = 1 if cfg.l1 is None else replicas if cfg.l1.copies == "replicas" else cfg.l1.copies
    copy = rng.integers(copies, size=len(lookups)) if copies > 1 else None
    l1, l2 = _level(cfg.l1, total, copies), _level(cfg.l2, total)
    return item_lookups(keys, requests.arrival_ms, lookups, bits, l1, l2, l1_copy=copy)


@lru_cache(maxsize=64)
def _che_time(keys, capacity: float) -> float:
    """Che's characteristic time (in requests) of an LRU of ``capacity`` keys under Zipf ``keys``."""
    from simlat.engine.che import che_characteristic_time
    from simlat.workload.keys import zipf_groups

    p, count = zipf_groups(keys)
    return che_characteristic_time(p, capacity, count)


def warmup_seconds(cfg: Cache, workload) -> float:
    """Simulated seconds of warm-up for ``cache.warmup_s``.

    ``auto`` (Zipf keys): per level, the shorter of its TTL and ``WARMUP_CHE_MULTIPLE`` times its
    characteristic time (L2 with the capacity of both levels, whose keys it roughly holds; per item,
    a request-level cache of capacity / mean items), the longest level wins, at most
    ``MAX_WARMUP_LOOKUPS`` lookups. A level that holds the whole key space warms with
    ``WARMUP_CHE_MULTIPLE`` lookups per key. 0 for other keys.
    """
    if cfg.warmup_s != "auto":
        return float(cfg.warmup_s)
    from simlat.dists import mean
    from simlat.workload import offered_rate_rps

    rate = offered_rate_rps(workload)
    if not rate or getattr(workload.keys, "kind", None) != "zipf":
        return 0.0
    per_request = 1.0
    if cfg.per_item:
        ipr = workload.items_per_request
        per_request = float(ipr) if isinstance(ipr, int) else mean(ipr)
    longest = 0.0
    held = 0
    for level in (cfg.l1, cfg.l2):
        if level is not None:
            held += level.capacity
            entries = held / per_request
            if entries >= workload.keys.key_space:
                # the level holds every key and never evicts: Che's time is infinite; warming with
                # WARMUP_CHE_MULTIPLE lookups per key fills it with all but the rarest keys
                fill_s = WARMUP_CHE_MULTIPLE * workload.keys.key_space / (rate * per_request)
            else:
                fill_s = WARMUP_CHE_MULTIPLE * _che_time(workload.keys, entries) / rate
            ttl_s = np.inf if level.ttl_ms is None else level.ttl_ms / 1000.0
            longest = max(longest, min(fill_s, ttl_s))
    return min(longest, MAX_WARMUP_LOOKUPS / (rate * per_request))


def warmup_source(cfg: Cache, workload) -> WarmupSource | None:
    """What warms the caches before the run: ``warmup_s`` seconds of ``workload`` (generated by
    :func:`simlat.workload.warmup.warmup_requests`), or None (no warm-up: none asked, a fixed
    ``hit_ratio``, or keys that are not Zipf). Reduced from the config at the engine's boundary."""
    if workload is None or cfg.fixed_hit_ratios() is not None or getattr(workload.keys, "kind", None) != "zipf":
        return None
    secs = warmup_seconds(cfg, workload)
    if secs <= 0:
        return None
    from simlat.workload.warmup import warmup_requests

    return partial(warmup_requests, workload, secs)


def _warmup(source: WarmupSource | None, rng: np.random.Generator):
    """The warm-up requests of ``source``, from a seed drawn from the cache's stream ``rng``."""
    if source is None:
        return None
    return source(np.random.SeedSequence(int(rng.integers(2**63))))


def _still_warming(l1_items: np.ndarray, l2_items: np.ndarray, lookups: np.ndarray) -> list[str]:
    """A warning when the hit ratio of the run's last quarter is clearly above its second quarter's."""
    q = len(lookups) // 4
    if q < 100:
        return []
    ratios = []
    for part in (slice(q, 2 * q), slice(3 * q, 4 * q)):
        ratios.append((l1_items[part].sum() + l2_items[part].sum()) / max(1, lookups[part].sum()))
    early, late = ratios
    se = np.sqrt(max(late * (1 - late), 1e-4) / q)
    if late - early > max(0.02, 4 * se):
        return [
            f"cache: the hit ratio was still rising ({early:.1%} in the run's second quarter, {late:.1%} "
            "in its last): the caches had not reached steady state; simulate more requests or raise "
            "cache.warmup_s"
        ]
    return []


def _time_spent(cache_cfg: Cache, requests, lookups: np.ndarray, l1_items: np.ndarray, rng: np.random.Generator):
    """Step 5 of the model: each request's time in the caches (ms), and the L2 queue's notes."""
    n = len(lookups)
    cache_ms = np.zeros(n)
    if cache_cfg.l1 is not None:
        cache_ms += lookup_sampler(cache_cfg.l1.lookup_ms, "cache.l1.lookup_ms")(n, rng)
    if cache_cfg.l2 is None:
        return cache_ms, []
    asked = np.flatnonzero(l1_items != lookups)
    cache_ms[asked] += lookup_sampler(cache_cfg.l2.lookup_ms, "cache.l2.lookup_ms")(len(asked), rng)
    if cache_cfg.per_item:
        cache_ms[asked] += (lookups[asked] - l1_items[asked] - 1) * l2_per_key_ms(cache_cfg.l2)
    from simlat.engine.l2_queue import l2_queue  # the L2's capacity (simlat/engine/l2_queue.py)

    wait, l2_notes = l2_queue(cache_cfg.l2, np.asarray(requests.arrival_ms, float)[asked], (lookups - l1_items)[asked])
    cache_ms[asked] += wait
    return cache_ms, l2_notes


def apply_cache(
    cache_cfg: Cache,
    requests,
    rng: np.random.Generator,
    *,
    warmup: WarmupSource | None = None,
    replicas: int = 1,
) -> CacheOutcome:
    """Run ``requests`` (a :class:`simlat.workload.Requests`, open loop) through the caches.

    The model is in this module's docstring. With ``warmup`` (from :func:`warmup_source`), the
    caches are first warmed by its requests. ``replicas``: the fleet's, for
    ``l1.copies: replicas``. Random draws (the warm-up's seed; lookup times; hits under a fixed
    ``hit_ratio``) come from ``rng`` only.
    """
    from simlat.workload import Requests

    items = np.asarray(requests.items, dtype=np.int64)
    n = len(items)
    warm = _warmup(warmup, rng)
    stream = requests
    if warm is not None and len(warm):
        stream = Requests(
            arrival_ms=np.concatenate([warm.arrival_ms, requests.arrival_ms]),
            items=np.concatenate([warm.items, items]),
            key=np.concatenate([warm.key, requests.key]),
        )
    per_request = np.asarray(stream.items, dtype=np.int64) if cache_cfg.per_item else np.ones(len(stream), dtype=np.int64)
    l1_items, l2_items = (a[len(stream) - n :] for a in _lookup_hits(cache_cfg, stream, per_request, rng, replicas))
    lookups = per_request[len(stream) - n :]
    missing = lookups - l1_items - l2_items
    served = missing == 0
    l1_hit = l1_items == lookups
    cache_ms, l2_notes = _time_spent(cache_cfg, requests, lookups, l1_items, rng)
    warnings = () if cache_cfg.fixed_hit_ratios() else tuple(_still_warming(l1_items, l2_items, lookups))
    warnings = (*warnings, *l2_notes)
    return CacheOutcome(
        served=served,
        l1_hit=l1_hit,
        l2_hit=served & ~l1_hit,
        cache_ms=cache_ms,
        items_to_compute=np.where(served, 0, missing if cache_cfg.per_item else items),
        lookups=lookups,
        l1_items=l1_items,
        l2_items=l2_items,
        warmup_requests=0 if warm is None else len(warm),
        warnings=warnings,
    )
