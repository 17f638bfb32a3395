"""Prediction caches: an L1 in-process LRU, then an L2 remote cache (Redis), in front of the model.

Every lookup happens at the request's arrival. A hit costs only the lookup time; a miss goes on to
the next level, then to the model, and is written back. The hit ratio is not an input: it emerges
from the workload's key stream (``workload.keys``), the capacities and the TTLs, unless
``hit_ratio`` fixes it for a what-if question. The simulation model is in
:mod:`simlat.engine.cache`.

Capacities count entries (one per key, or per item with ``per_item``); times are in ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.config.dists import Constant, Dist


class RedisProfileLatency(StrictModel):
    """Draw lookups (GET) from a Redis calibration profile written by ``simlat calibrate --cache``.

    ``path``: a relative path resolves against the experiment file's folder.
    """

    kind: Literal["redis_profile"] = "redis_profile"
    path: Path


_DIST_MEMBERS = get_args(get_args(Dist)[0])
LookupLatency = Annotated[Union[(*_DIST_MEMBERS, RedisProfileLatency)], Field(discriminator="kind")]  # type: ignore[valid-type]  # built from Dist's members
"""A scalar distribution in ms, or ``kind: redis_profile`` for a measured Redis GET distribution."""


class L1Cache(StrictModel):
    """In-process LRU cache.

    ``capacity``: entries (per copy); the least recently used one is evicted when full.
    ``ttl_ms``: an entry expires this long after it was written (reads do not extend it); None: never.
    ``lookup_ms``: time of one lookup (a hash-map probe in the serving process; 0 by default).
    ``copies``: how many independent L1 caches there are. 1: one cache in the process that
    receives requests before the balancer. ``replicas`` (or a number): one per serving process;
    each request consults one of them, chosen uniformly at random (the balancer ignores keys), so
    each copy sees a thinned key stream.
    """

    capacity: PositiveInt
    ttl_ms: PositiveFloat | None = None
    lookup_ms: Dist = Constant(value=0.0)
    copies: PositiveInt | Literal["replicas"] = 1


class L2Cache(StrictModel):
    """Remote cache (Redis) shared by the fleet, asked only when L1 misses.

    ``capacity``: entries, evicted least recently used first (Redis ``maxmemory-policy allkeys-lru``,
    modelled exactly, not with Redis's sampled approximation). ``ttl_ms``: an entry expires this
    long after it was written (``SET ... PX``; a GET does not extend it); None: never.
    ``lookup_ms``: one round trip (GET), either a distribution or
    ``{kind: redis_profile, path: calibration/....json}``. With ``per_item``, a request asks for all
    its items that missed L1 in one MGET of m keys, which takes ``lookup_ms + (m - 1) * per_key_ms``;
    ``per_key_ms`` defaults to the profile's measured MGET slope (0 for a plain distribution).
    The write-back SET after a miss is asynchronous and off the request's path.
    """

    capacity: PositiveInt
    ttl_ms: PositiveFloat | None = None
    lookup_ms: LookupLatency
    per_key_ms: NonNegativeFloat | None = None
    max_ops_per_s: PositiveFloat | None = Field(
        default=None,
        description="Keys per second the Redis serves (an MGET of m keys counts m); lookups queue FCFS at it. "
        "Default: the Redis profile's measured throughput; None with no profile throughput: no queueing, and a "
        "warning gives the load.",
    )


class HitRatio(StrictModel):
    """Fixed hit probabilities for what-if questions: ``l1`` of all lookups, ``l2`` of the lookups
    that missed L1. Each lookup draws its outcome independently; keys are not used."""

    l1: float = Field(default=0.0, ge=0, le=1)
    l2: float = Field(default=0.0, ge=0, le=1)


class Cache(StrictModel):
    """Prediction caches in front of the model: ``l1``, ``l2`` or both.

    ``per_item``: a request with many items (fan-out candidates) looks up each item on its own; only
    the missing items go to the model, and the request skips the model when every item hits. Item j
    of a request with key k has cache key (k, j): a returning key asks again for its first items.
    ``hit_ratio``: a number (hits counted at the first configured level) or ``{l1: .., l2: ..}``;
    fixes the hit probabilities instead of simulating the keys.
    ``warmup_s``: simulated seconds of the same workload (independent draws, before time 0) that fill
    the caches before the run, so that short runs see a warm cache. ``auto``: per level, the TTL or
    the time to make 4x its capacity in lookups, whichever is shorter; the longest level wins.
    0: start cold. Zipf keys only (a trace's keys are the run itself; a trace run starts cold).
    """

    l1: L1Cache | None = None
    l2: L2Cache | None = None
    per_item: bool = False
    hit_ratio: Annotated[float, Field(ge=0, le=1)] | HitRatio | None = None
    warmup_s: Literal["auto"] | NonNegativeFloat = "auto"

    @model_validator(mode="after")
    def _levels(self):
        if self.l1 is None and self.l2 is None:
            raise ValueError("configure at least one level: l1, l2 or both")
        if isinstance(self.hit_ratio, HitRatio):
            for level in ("l1", "l2"):
                if getattr(self.hit_ratio, level) > 0 and getattr(self, level) is None:
                    raise ValueError(
                        f"hit_ratio.{level}: {getattr(self.hit_ratio, level)} needs a cache.{level} level"
                    )
        return self

    def fixed_hit_ratios(self) -> tuple[float, float] | None:
        """(L1, L2-given-L1-miss) hit probabilities of the ``hit_ratio`` override, or None."""
        h = self.hit_ratio
        if h is None:
            return None
        if isinstance(h, HitRatio):
            return (h.l1, h.l2)
        return (float(h), 0.0) if self.l1 is not None else (0.0, float(h))
