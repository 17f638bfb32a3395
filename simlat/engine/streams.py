"""The engine's named random streams.

The engine's ``SeedSequence`` is spawned into named streams (``STREAMS``), so a change in one part
(say the overhead model) never shifts another's draws, and the same seed gives the same bytes out.
Service draws come from one stream per queue (the shared queue, or each replica's own queue), in
dispatch order, so every path and the naive reference (:mod:`simlat.engine.reference`) see the
same draws for the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAMS = ("service", "overheads", "balancer", "cache", "clients")
"""Named random streams spawned, in this order, from the engine's SeedSequence."""


@dataclass(frozen=True)
class Streams:
    """One SeedSequence per part of the engine."""

    service: np.random.SeedSequence
    overheads: np.random.SeedSequence
    balancer: np.random.SeedSequence
    cache: np.random.SeedSequence
    clients: np.random.SeedSequence

    @classmethod
    def spawn(cls, seed: np.random.SeedSequence) -> Streams:
        """The named streams of ``seed``: its first children, whatever it spawned before (so the
        same seed object gives the same streams every time)."""
        return cls(
            *(
                np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size)
                for i in range(len(STREAMS))
            )
        )

    def service_rngs(self, queues: int) -> list[np.random.Generator]:
        """One generator per queue for service draws."""
        return [np.random.default_rng(s) for s in self.service.spawn(queues)]
