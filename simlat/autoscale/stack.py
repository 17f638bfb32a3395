"""The serving stack in the exact day (``simlat day --engine exact``): the engine's frontend
(:mod:`simlat.engine.frontend`) as a streamed, segment-by-segment stage.

What the exact day takes from ``experiment.frontend``, with the engine's semantics:

- the loop: ONE first-come-first-served server per segment's arrivals, each request an ingress job
  released at its arrival; the batcher sees the ingress departures as arrivals. With a measured
  serving profile (``kind: profile``) each replica has its own loop, simulated as one loop R times
  faster (:meth:`simlat.profiles.serving.StackParams.frontend`): the ingress work of a request is the
  profile's ``loop_ms`` over R, the replicas READY at its arrival (the engine: the fixed fleet); a
  hand-described ``event_loop`` is one loop in front of the fleet (its ``ingress_ms``). The loop's
  closed-form FIFO (:func:`simlat.engine.frontend.fifo_departures`) carries its cumulative work and
  running maximum across segments, so the departures are those of one run through the day;
- each batch's replica time: the hand-off (``handoff_ms``) + the model draw x the slowdown +
  ``item_ms`` per item, in the engine's order of operations;
- the reply: the batcher's completion job, released when the model finishes the batch, starts when
  the loop is free of the ingress jobs released before it; the batch's replies then leave one after
  another (``reply_ms`` each); latency = reply departure - arrival + ``network_ms`` + the overheads.
  A batch finishing after its segment's end waits for the next segment's arrivals before its reply
  time is known (its requests are held until then).

With a fixed fleet, the engine's sampler, the same network draws and no reply work (a measured
profile's stack: ``reply_ms`` and ``batch_ms`` are zero) this is the engine's frontend path bit for
bit (``tests/test_day_stack.py``). An APPROXIMATION with ``reply_ms``: the reply work delays the
batch's own replies but does not hold the loop, so it delays no ingress and no other batch's reply
(the engine puts it on the loop, with its fixed-point passes): the loop's queueing is understated by
the reply work's share of it (measured in the tests). Refused (the quasi-static day runs them):
per-batch loop work (``batch_ms``), a slowdown that depends on the loop's utilisation (the engine's
fixed-point passes), random hand-offs, model noise, and a replica held for the loop's wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simlat import dists
from simlat.config.dists import Constant
from simlat.errors import SimlatError


@dataclass(frozen=True)
class DayStack:
    """The stack as the exact day runs it (times in ms)."""

    loop_ms: float
    """Ingress work per request on the loop (divided by the ready replicas when ``per_replica``)."""
    per_replica: bool
    handoff_ms: float
    item_ms: float
    slowdown: float
    network: Callable[[int], np.ndarray]
    """The next ``n`` requests' network delays (arrival order)."""
    reply: Callable[[int], np.ndarray] | None = None
    """The next ``n`` requests' reply work on the loop (arrival order); None: no reply work."""

    def service(self, sampler: Callable[[int], float]) -> Callable[[int], float]:
        """A batch's replica time: hand-off + model draw x slowdown + ``item_ms`` per item (the
        engine's order of operations, so the same draws give the same bits)."""
        h, f, it = self.handoff_ms, self.slowdown, self.item_ms

        def sample(items: int) -> float:
            return h + sampler(items) * f + it * items

        return sample


def resolve(experiment):
    """``experiment.frontend`` as the engine runs it (a profile becomes its fitted event loop for one
    replica) and whether its loop is per replica; None without a frontend."""
    fe = experiment.frontend
    if fe is None:
        return None, False
    if fe.kind == "profile":
        from simlat.profiles.serving import read

        return read(fe.path).params.frontend(replicas=1), True
    return fe, False


def check(experiment) -> list[str]:
    """Refuse a frontend the exact day does not model (SimlatError naming the field); return the
    warnings for what it approximates."""
    fe, _ = resolve(experiment)
    if fe is None:
        return []
    hint = "; use --engine quasi-static"
    if not dists.is_zero(fe.batch_ms):
        raise SimlatError(f"frontend.batch_ms: loop work per batch is not supported by the exact day engine (only "
                          f"ingress and reply work){hint}")
    if not isinstance(fe.ingress_ms, Constant):
        raise SimlatError(f"frontend.ingress_ms: the exact day engine needs a constant ingress work, not "
                          f"{fe.ingress_ms.kind!r}{hint}")
    if not isinstance(fe.handoff_ms, Constant):
        raise SimlatError(f"frontend.handoff_ms: the exact day engine needs a constant hand-off, not "
                          f"{fe.handoff_ms.kind!r}{hint}")
    if fe.model_noise is not None:
        raise SimlatError(f"frontend.model_noise: model noise is not supported by the exact day engine{hint}")
    if fe.slowdown_points or fe.slowdown_per_loop_utilization > 0:
        raise SimlatError("frontend.slowdown_per_loop_utilization: a slowdown that depends on the loop's "
                          f"utilisation (fixed-point passes) is not supported by the exact day engine{hint}")
    if not fe.slowdown_includes_loop_wait and fe.ingress_ms.value > 0:
        raise SimlatError("frontend.slowdown_includes_loop_wait: false (the replica held for the loop's wait) is "
                          f"not supported by the exact day engine{hint}")
    if not dists.is_zero(fe.reply_ms):
        return ["frontend.reply_ms: the exact day delays a batch's replies by their work but does not put it on the "
                "loop (no ingress or other reply waits for it): optimistic when replies are a large part of the loop's "
                "work (README, 'Autoscaling over a day')"]
    return []


def day_stack(experiment, rng: np.random.Generator) -> DayStack | None:
    """The exact day's stack for ``experiment`` (after :func:`check`); network draws from ``rng``."""
    fe, per_replica = resolve(experiment)
    if fe is None:
        return None
    net, rep = fe.network_ms, fe.reply_ms
    return DayStack(
        loop_ms=float(fe.ingress_ms.value), per_replica=per_replica, handoff_ms=float(fe.handoff_ms.value),
        item_ms=float(fe.item_ms), slowdown=fe.slowdown(0.0),
        network=(lambda n: np.zeros(n)) if dists.is_zero(net) else (lambda n: dists.sample(net, n, rng)),
        reply=None if dists.is_zero(rep) else (lambda n: dists.sample(rep, n, rng)),
    )


class Loop:
    """The loop's FIFO over the day, one segment at a time: ``done_k = max(release_k, done_{k-1}) +
    work_k`` in the engine's closed form (cumulative work and running maximum, both carried, so the
    departures are bit for bit those of one pass over the whole day)."""

    def __init__(self):
        self.cs = 0.0  # cumulative work so far
        self.m = -np.inf  # running maximum of release - work before
        self.r = np.zeros(0)  # this segment's releases, and after each: cumulative work, running maximum
        self.cs_seg = np.zeros(0)
        self.m_seg = np.zeros(0)
        self.cs0, self.m0 = 0.0, -np.inf  # the same before this segment

    def run(self, release: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The departures of this segment's jobs (sorted releases)."""
        self.cs0, self.m0 = self.cs, self.m
        if not len(release):
            self.r = self.cs_seg = self.m_seg = release
            return release
        cs = np.cumsum(np.concatenate(([self.cs], work)))[1:]
        m = np.maximum.accumulate(np.concatenate(([self.m], release - (cs - work))))[1:]
        self.cs, self.m = float(cs[-1]), float(m[-1])
        self.r, self.cs_seg, self.m_seg = release, cs, m
        return cs + m

    def reply_start(self, t: np.ndarray) -> np.ndarray:
        """When a job of no work released at each ``t`` (at or after this segment's start) starts: once
        the ingress jobs released at or before it are done, as the engine's closed form puts it
        (``cs + max(m, t - cs)`` over the jobs before it)."""
        i = np.searchsorted(self.r, t, side="right")
        cs = np.full(len(t), self.cs0)
        m = np.full(len(t), self.m0)
        k = i > 0
        cs[k] = self.cs_seg[i[k] - 1]
        m[k] = self.m_seg[i[k] - 1]
        return cs + np.maximum(m, t - cs)
