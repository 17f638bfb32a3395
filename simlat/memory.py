"""What a run will need in memory, said before it starts.

Requests are rows of numpy arrays (arrival, items, key, the per-request record columns), all held
until the run is summarised, for every replication. Measured on this code (peak RSS growth, 1M
requests): about 190 bytes per request without a cache, 385 with an L1 cache; per-item cache
lookups add about 40 bytes per item. The estimate uses those figures, rounded up.
"""

from __future__ import annotations

from simlat.errors import SimlatError

BYTES_PER_REQUEST = 220
BYTES_PER_CACHED_REQUEST = 200
BYTES_PER_ITEM_LOOKUP = 40
ANNOUNCE_BYTES = 1 << 30
"""Runs estimated above this (1 GiB) are announced before they start."""


def _requests(experiment, requests: int | None) -> int | None:
    run = experiment.run
    if requests is not None:
        return requests
    if run.duration_s is None:
        return run.n_requests
    from simlat.workload import offered_rate_rps

    try:
        rate = offered_rate_rps(experiment.workload)
    except (SimlatError, KeyError, ValueError):
        return None
    return None if rate is None else int(rate * run.duration_s) + 1


def estimate_bytes(experiment, requests: int | None = None) -> int | None:
    """Estimated peak memory of ``simlat.api.run(experiment)``; None when the length is unknown
    (closed loop bounded by duration)."""
    n = _requests(experiment, requests)
    if n is None:
        return None
    per = BYTES_PER_REQUEST
    cache = experiment.cache
    if cache is not None:
        per += BYTES_PER_CACHED_REQUEST
        items = experiment.workload.items_per_request
        if getattr(cache, "per_item", False) and isinstance(items, int):
            per += BYTES_PER_ITEM_LOOKUP * items
    return n * per * experiment.run.replications


def check_memory(experiment, requests: int | None = None) -> int | None:
    """The estimate, or a SimlatError when it exceeds ``run.max_memory_gb``."""
    need = estimate_bytes(experiment, requests)
    cap = experiment.run.max_memory_gb * 1e9
    if need is not None and need > cap:
        n = _requests(experiment, requests)
        raise SimlatError(
            f"run: {n:,} requests x {experiment.run.replications} replication(s) need about {need / 1e9:.1f} GB "
            f"of memory, more than run.max_memory_gb ({experiment.run.max_memory_gb:g}); run fewer requests, "
            "or raise run.max_memory_gb if the machine has the memory"
        )
    return need


def describe(need: int) -> str:
    """``about 2.3 GB``."""
    return f"about {need / 1e9:.1f} GB"
