"""Load balancers for per-replica queues: one small object per ``fleet.balancer`` kind.

Static balancers do not look at the replicas' state, so every request is routed up front,
vectorised (:meth:`Balancer.route`); state-dependent ones pick at arrival from the replicas'
outstanding requests (queued + in service):

- ``round_robin``: request ``i`` goes to replica ``i mod R``;
- ``random``: a replica drawn uniformly;
- ``join_shortest_queue``: the replica with the fewest outstanding (ties: lowest index);
- ``power_of_two``: two distinct replicas drawn at random, the one with fewer outstanding
  (ties: the first drawn).

Each balancer gives two pickers with their own draw patterns (both fixed by the seed):
:meth:`Balancer.open_picker` for an open loop (random draws in vectorised blocks) and
:meth:`Balancer.pick` for a closed loop (one draw per pick, as requests are created). The engine's
hot loops (:mod:`simlat.engine.routed`, :mod:`simlat.engine.event_queue`) inline the open-loop
picks of join-shortest-queue and power-of-two for speed; the naive reference
(:mod:`simlat.engine.reference`) calls :meth:`Balancer.open_picker`, and the equivalence tests
hold the two to the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from simlat.engine.registry import by_name

PAIR_BLOCK = 65536
"""Power-of-two pairs drawn at once in an open loop."""

Picker = Callable[[int, Sequence[int]], int]
"""``pick(i, outstanding) -> replica`` for request ``i``, in arrival order."""


def pair_draws(replicas: int, rng: np.random.Generator, n: int = PAIR_BLOCK) -> tuple[list[int], list[int]]:
    """``n`` pairs of distinct replicas for power-of-two choices, as two lists."""
    first = rng.integers(0, replicas, size=n)
    second = (first + rng.integers(1, replicas, size=n)) % replicas if replicas > 1 else first
    return first.tolist(), second.tolist()


class Balancer:
    """Routes each request to one of ``R`` per-replica queues."""

    name: str = ""
    static: bool = False
    """True when routes do not depend on the replicas' state (known before the run)."""

    def route(self, n: int, replicas: int, rng: np.random.Generator) -> np.ndarray:
        """Replica index of each of ``n`` requests (static balancers only)."""
        raise ValueError(f"{self.name} is not a static balancer")

    def open_picker(self, n: int, replicas: int, rng: np.random.Generator) -> Picker:
        """Picks for an open loop of ``n`` requests; ``rng`` is the balancer's stream."""
        route = self.route(n, replicas, rng).tolist()
        return lambda i, out: route[i]

    def pick(self, out: Sequence[int], i: int, rng: np.random.Generator) -> int:
        """One pick in a closed loop: request ``i``, outstanding counts ``out``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<balancer {self.name}>"


class RoundRobin(Balancer):
    name, static = "round_robin", True

    def route(self, n, replicas, rng):
        return np.arange(n, dtype=np.int64) % replicas

    def pick(self, out, i, rng):
        return i % len(out)


class Random(Balancer):
    name, static = "random", True

    def route(self, n, replicas, rng):
        return rng.integers(0, replicas, size=n, dtype=np.int64)

    def pick(self, out, i, rng):
        return int(rng.integers(len(out)))


class JoinShortestQueue(Balancer):
    name = "join_shortest_queue"

    def open_picker(self, n, replicas, rng):
        return lambda i, out: self.pick(out, i, rng)

    def pick(self, out, i, rng):
        return out.index(min(out))


class PowerOfTwo(Balancer):
    name = "power_of_two"

    def open_picker(self, n, replicas, rng):
        pairs: list[tuple[int, int]] = []

        def two_choices(i: int, out: Sequence[int]) -> int:
            if i % PAIR_BLOCK == 0:
                pairs[:] = zip(*pair_draws(replicas, rng), strict=True)
            r1, r2 = pairs[i % PAIR_BLOCK]
            return r2 if out[r2] < out[r1] else r1

        return two_choices

    def pick(self, out, i, rng):
        r1, r2 = (int(x) for x in rng.choice(len(out), size=2, replace=False))
        return r2 if out[r2] < out[r1] else r1


BALANCERS: dict[str, Balancer] = by_name("balancers", RoundRobin(), Random(), JoinShortestQueue(), PowerOfTwo())
"""One balancer per ``fleet.balancer`` kind."""


def balancer_for(name: str) -> Balancer:
    """The balancer of a ``fleet.balancer`` kind."""
    try:
        return BALANCERS[name]
    except KeyError:
        raise ValueError(f"fleet.balancer: {name!r} is not one of {sorted(BALANCERS)}") from None
