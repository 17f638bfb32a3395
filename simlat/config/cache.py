"""Prediction caches (L1 in-process LRU, L2 remote). Filled in by the cache work (issue 5)."""

from __future__ import annotations

from simlat.config.base import StrictModel


class Cache(StrictModel):
    """Placeholder until the cache model lands; any key is rejected."""
