"""Request keys (for the prediction caches): placeholder until Zipf and trace keys land."""

from __future__ import annotations

import numpy as np


def sample_keys(keys, arrivals, stream, rng: np.random.Generator) -> np.ndarray:
    """Key per request."""
    raise NotImplementedError(f"keys kind {keys.kind!r} is not implemented yet")
