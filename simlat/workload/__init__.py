"""Workload generation: arrival processes, trace replay, fan-out and keys, as numpy arrays.

Contract (used by the engine): :func:`generate` returns a :class:`Requests` with arrival times in ms
(float64, sorted, >= 0), items per request (int64 >= 1) and an optional int64 key per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Requests:
    """Requests as rows of numpy arrays."""

    arrival_ms: np.ndarray
    items: np.ndarray
    key: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrival_ms)
