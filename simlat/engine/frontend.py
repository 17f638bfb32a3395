"""The serving stack as a resource: an event loop in series with the batcher and the model.

Configured by ``experiment.frontend`` (:mod:`simlat.config.frontend` documents every field). The
event loop is ONE first-come-first-served server that does two kinds of jobs:

- an ingress job per request, released when the request arrives (work ``ingress_ms``); when it
  ends, the request reaches the batcher;
- a batch job per batch, released when the batch is dispatched (work ``batch_ms``: forming the
  batch, stacking inputs, handing it to the model thread); it delays whatever the loop does next,
  not this batch (the hand-off to the model is ``handoff_ms``);
- a completion job per batch, released when the model finishes the batch (``reply_ms`` for each
  request of the batch, replies leaving one after another).

The batcher and the model are the ordinary engine (:func:`simlat.engine.simulation.simulate`),
fed with the ingress departures, with each batch's replica time made of a hand-off draw, the
service draw scaled by the interpreter-lock slowdown at rho, the loop's busy fraction
(``frontend.slowdown(rho)``) and a noise draw, and the
time the finished batch waits for the loop (the batcher learns that the model is free only when
the loop runs the completion callback).

The loop and the batcher depend on each other (completions compete with ingress for the loop), so
the two are solved by fixed-point passes: loop (ingress only) -> engine -> loop (ingress and
completions) -> engine -> ... ``frontend.iterations`` times, with the same random draws in every
pass. Latency = reply departure - arrival + ``network_ms``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simlat import dists
from simlat.engine.records import SimResult
from simlat.engine.service import ServiceModel, build_service
from simlat.engine.simulation import simulate
from simlat.errors import SimlatError
from simlat.workload import Requests


def fifo_departures(release: np.ndarray, work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One FIFO server over jobs sorted by release time: (start, departure) of each job.

    ``done_k = max(release_k, done_{k-1}) + work_k``, in closed form with cumulative sums.
    """
    cs = np.cumsum(work)
    before = cs - work
    done = cs + np.maximum.accumulate(release - before)
    return done - work, done


def _draws(dist, n: int, rng: np.random.Generator) -> np.ndarray:
    if dist is None:
        return np.ones(n)
    if dists.is_zero(dist):
        return np.zeros(n)
    return np.asarray(dists.sample(dist, n, rng), dtype=float)


class _InServerModel:
    """The replica's time per batch: hand-off + scaled model draw * noise + the wait for the loop.

    Calls are numbered in dispatch order; each pass replays the same per-batch draws.
    """

    def __init__(self, base: ServiceModel, hand: np.ndarray, noise: np.ndarray, item_ms: float = 0.0):
        self.base = base
        self.item_ms = item_ms
        self.hand = hand
        self.noise = noise
        self.factor = 1.0
        self.extra = 0.0  # the same for every batch, so a batch's model part is its service - extra

    def service(self) -> ServiceModel:
        """A :class:`ServiceModel` for this pass."""
        hand, noise, extra, factor, item = self.hand, self.noise, self.extra, self.factor, self.item_ms
        calls = [0]  # draws are taken in call order, shared by every queue's sampler

        def make(rng: np.random.Generator):
            draw = self.base.batch_sampler(rng)

            def sample(items: int) -> float:
                k = calls[0]
                calls[0] = k + 1
                return hand[k] + draw(items) * factor * noise[k] + item * items + extra

            return sample

        return ServiceModel(
            make_sampler=make,
            mean=lambda items: float(np.mean(hand)) + self.base.mean_ms(items) * factor + item * items + extra,
            max_items=self.base.max_items,
        )


def simulate_with_frontend(experiment, requests: Requests | None, *, seed: np.random.SeedSequence,
                           progress: bool = False) -> SimResult:
    """Simulate the event loop, the batcher and the model together (see the module doc)."""
    fe = experiment.frontend
    if requests is None:
        raise SimlatError("frontend: a closed-loop workload cannot be combined with a frontend stage (yet)")
    core = experiment.model_copy(update={"frontend": None})
    eng_seed, fe_seed = seed.spawn(2)
    rng = np.random.default_rng(fe_seed)
    n = len(requests)
    if n == 0:
        raise SimlatError("workload: no request arrives during the run, so the frontend has nothing to serve")
    a = np.asarray(requests.arrival_ms, dtype=float)
    ing = _draws(fe.ingress_ms, n, rng)
    rep = _draws(fe.reply_ms, n, rng)
    net = _draws(fe.network_ms, n, rng)
    bms = _draws(fe.batch_ms, n, rng)  # at most n batches
    model = _InServerModel(build_service(experiment.service), _draws(fe.handoff_ms, n, rng),
                           _draws(fe.model_noise, n, rng), fe.item_ms)

    _, e = fifo_departures(a, ing)  # first pass: the loop does ingress only
    span = max(a[-1] - a[0], 1e-9) if n > 1 else 1.0
    rho = min(1.0, float(ing.sum() + rep.sum()) / span)
    res = None
    for _ in range(fe.iterations):
        model.factor = fe.slowdown(rho)
        res = simulate(core, Requests(arrival_ms=e, items=requests.items, key=requests.key), seed=eng_seed,
                       progress=progress, service=model.service())
        r = res.records
        served = ~r.dropped & (r.batch_id >= 0)  # served by the model (not dropped, not a cache hit)
        hits = ~r.dropped & (r.batch_id < 0)  # answered by a cache: the loop replies after the lookup
        bid = r.batch_id[served].astype(np.int64)
        nb = int(bid.max()) + 1 if len(bid) else 0
        disp = np.full(nb, np.nan)
        disp[bid] = r.dispatch_ms[served]
        svc = np.full(nb, np.nan)
        svc[bid] = r.service_ms[served]
        model_end = disp + svc - model.extra
        rep_sum = np.bincount(bid, weights=rep[served], minlength=nb)
        # the loop: ingress jobs, completion jobs and cache-hit replies, first come first served
        release = np.concatenate([a, model_end, disp, r.done_ms[hits]])
        work = np.concatenate([ing, rep_sum, bms[:nb], rep[hits]])
        order = np.argsort(release, kind="stable")
        start_s, done_s = fifo_departures(release[order], work[order])
        start = np.empty_like(start_s)
        start[order] = start_s
        done = np.empty_like(done_s)
        done[order] = done_s
        e_new = done[:n]
        c_start = start[n:n + nb]
        hit_done = done[n + 2 * nb:]
        # the batcher learns that the model is free when the loop reaches the completion: the
        # replica is held for that wait (its mean, damped between passes, so the passes settle)
        wait = float(np.mean(c_start - model_end)) if nb else 0.0
        if not fe.slowdown_includes_loop_wait:
            model.extra = 0.5 * (model.extra + wait)
        if fe.slowdown_load == "loop_utilization":
            rho = min(1.0, float(work.sum()) / max(float(done.max() - a[0]), 1e-9))
        converged = np.allclose(e_new, e, atol=1e-6)
        e = e_new
        if converged:
            break
    # reply departures: completion start + batch work + the replies before it in the batch
    r = res.records
    served = ~r.dropped & (r.batch_id >= 0)
    ids = np.flatnonzero(served)
    bid = r.batch_id[ids].astype(np.int64)
    order = np.lexsort((ids, bid))
    ids, bid = ids[order], bid[order]
    reply_done = np.full(n, np.nan)
    if len(ids):
        cum = np.cumsum(rep[ids])
        first = np.r_[0, np.flatnonzero(np.diff(bid)) + 1]
        base = np.repeat(cum[first] - rep[ids][first], np.diff(np.r_[first, len(ids)]))
        reply_done[ids] = c_start[bid] + (cum - base)
    reply_done[hits] = hit_done
    latency = reply_done - a + net + r.overhead_ms
    latency[r.dropped] = np.nan
    records = replace(r, arrival_ms=a, queue_wait_ms=r.queue_wait_ms + (e - a), done_ms=reply_done,
                      overhead_ms=net + r.overhead_ms, latency_ms=latency)
    mean_batch = float(np.mean(r.batch_size[served])) if served.any() else 1.0
    loop_cap = 1000.0 / max(float(ing.mean() + rep.mean()) + float(bms.mean()) / max(1.0, mean_batch), 1e-9)
    return replace(res, records=records, end_ms=float(np.nanmax(reply_done)) if len(ids) or hits.any() else res.end_ms,
                   capacity_rps=min(res.capacity_rps, loop_cap), offered_rps=res.offered_rps)
