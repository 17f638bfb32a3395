"""Load balancers for per-replica queues.

Static policies do not look at the replicas' state, so every request is routed up front,
vectorised: ``round_robin`` sends request ``i`` to replica ``i mod R``; ``random`` draws a
replica uniformly. State-dependent policies pick at arrival from the replicas' outstanding
requests (queued + in service):

- ``join_shortest_queue``: the replica with the fewest outstanding (ties: lowest index);
- ``power_of_two``: two distinct replicas drawn at random, the one with fewer outstanding
  (ties: the first drawn).
"""

from __future__ import annotations

import numpy as np

STATIC = ("round_robin", "random")


def route_static(policy: str, n: int, replicas: int, rng: np.random.Generator) -> np.ndarray:
    """Replica index per request for a static policy."""
    if policy == "round_robin":
        return np.arange(n, dtype=np.int64) % replicas
    if policy == "random":
        return rng.integers(0, replicas, size=n, dtype=np.int64)
    raise ValueError(f"{policy} is not a static balancer")


def pair_draws(replicas: int, rng: np.random.Generator, n: int = 65536) -> tuple[list[int], list[int]]:
    """``n`` pairs of distinct replicas for power-of-two choices, as two lists."""
    first = rng.integers(0, replicas, size=n)
    second = (first + rng.integers(1, replicas, size=n)) % replicas if replicas > 1 else first
    return first.tolist(), second.tolist()
