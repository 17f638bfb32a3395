"""Per configuration: the full summary at the target rate and the highest rate meeting the SLO.

Bisection on the arrival rate (like MLPerf LoadGen's server scenario searching for peak QPS under
a latency bound). A point "meets" only when the upper end of the SLO percentile's confidence
interval is within the bound; an unstable point is above capacity and is never bisected through.
The fleet's capacity estimate bounds the search from above, so hopeless rates are never simulated,
but only as a guess: the estimate is refreshed at each higher rate that meets the SLO (a cache's hit
ratio, and so the capacity, rises with the rate), and the search ends only where a rate above the
answer was simulated and missed the SLO or was overloaded, or lies at or above the capacity
estimated within ``tolerance`` of the answer. :func:`limit_of` says which of these binds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from simlat.config import Experiment
from simlat.config.sweep import Sweep
from simlat.errors import SimlatError
from simlat.sweep.evaluate import MEETS, UNSTABLE, Evaluation, evaluate, failed, skipped


@dataclass
class SearchTask:
    """Everything a worker needs for one configuration (picklable)."""

    config_id: str
    experiment: Experiment
    sweep: Sweep
    target_rps: float
    seed: int


@dataclass
class Outcome:
    """What the search found for one configuration."""

    config_id: str
    target: Evaluation
    max_rate_rps: float
    evaluations: list[Evaluation] = field(default_factory=list)
    note: str = ""
    cpu_s: float = 0.0  # CPU time the search took in its worker (0 when read from the cache)
    limit: str = ""  # what bounds max_rate_rps: a key of LIMITS


def search(task: SearchTask) -> Outcome:
    """Evaluate the target rate, then bisect for the maximum sustainable rate.

    A configuration the simulator rejects (say, a batch larger than its profile measured) gives an
    outcome with verdict "error" and the message in ``note``, so one bad point does not stop a sweep.
    An unexpected exception (a bug in simlat) is recorded the same way, named as a bug, rather than
    aborting the other configurations.
    """
    t0 = time.process_time()
    try:
        out = _search(task)
    except SimlatError as err:
        ev = failed(task.target_rps, str(err))
        out = Outcome(task.config_id, ev, math.nan, [ev], f"error: {err}")
    except (ArithmeticError, LookupError, ValueError, TypeError, AttributeError) as err:
        text = f"internal error in simlat (a bug; please report it): {type(err).__name__}: {err}"
        ev = failed(task.target_rps, text)
        out = Outcome(task.config_id, ev, math.nan, [ev], f"error: {text}")
    out.cpu_s = time.process_time() - t0
    return out


def _search(task: SearchTask) -> Outcome:
    sweep, target = task.sweep, task.target_rps
    rs = sweep.rate_search
    ev_t = evaluate(task.experiment, sweep, target, task.seed, keep_quantiles=True)
    evals: list[Evaluation] = [ev_t]
    if rs is None:
        ok = ev_t.verdict == MEETS
        return Outcome(task.config_id, ev_t, target if ok else math.nan, evals, limit="not_searched" if ok else "none")
    # The capacity estimated by the run at the highest rate known to meet the SLO: rates at or
    # above it are skipped as unstable. It is refreshed as that rate rises, because capacity can
    # depend on the rate (a cache's hit ratio rises with the request rate).
    cap = _capacity(ev_t)
    ceiling = rs.high_rps if rs.high_rps is not None else math.inf
    budget = 3 * rs.max_steps

    def at(rate: float) -> Evaluation:
        nonlocal budget
        budget -= 1
        if not math.isnan(cap) and rate >= cap:
            ev = skipped(rate, cap)
        else:
            ev = evaluate(task.experiment, sweep, rate, task.seed, rs.max_requests)
        evals.append(ev)
        return ev

    if ev_t.verdict == MEETS:
        lo, hi, hi_ev = target, math.inf, None
    else:  # halve from min(target, capacity) until a rate meets the SLO, down to low_rps
        hi, hi_ev = target, ev_t
        if not math.isnan(cap) and cap < target:
            hi_ev = skipped(cap, cap)
            hi = cap
            evals.append(hi_ev)
        floor = rs.low_rps if rs.low_rps is not None else 0.05 * target
        if floor >= hi:
            return Outcome(task.config_id, ev_t, math.nan, evals, "fails at rate_search.low_rps", limit="none")
        lo = math.nan
        rate = max(hi / 2, floor)
        for _ in range(rs.max_steps):
            ev = at(rate)
            if ev.verdict == MEETS:
                lo = rate
                cap = _capacity(ev, cap)
                break
            hi, hi_ev = rate, ev
            if rate <= floor:
                break
            rate = max(rate / 2, floor)
        if math.isnan(lo):
            return Outcome(task.config_id, ev_t, math.nan, evals, "fails the SLO even at the lowest rate", limit="none")
    note, limit = "", "steps"
    while budget > 0:
        if math.isinf(hi):  # no rate above lo is known to fail: find one
            if lo >= ceiling:
                note, limit = "meets the SLO up to rate_search.high_rps", "high_rps"
                break
            if math.isnan(cap):  # no capacity estimate: double until the SLO breaks
                probe = min(2 * lo, ceiling)
            elif cap > lo * (1 + rs.tolerance):
                probe = min(cap, ceiling)
            else:  # lo is within tolerance of the capacity estimated at lo: stability binds
                probe = max(cap, lo * (1 + rs.tolerance))
            ev = at(probe)
            if ev.verdict == MEETS:
                lo = probe
                cap = _capacity(ev, cap)
            else:
                hi, hi_ev = probe, ev
            continue
        if hi / lo - 1 <= rs.tolerance:
            # Converged, unless hi was only skipped against an estimate that has since grown.
            if hi_ev is not None and not hi_ev.simulated and not math.isnan(cap) and cap > hi * (1 + rs.tolerance):
                hi, hi_ev = math.inf, None
                continue
            limit = _limit(hi_ev)
            break
        mid = math.sqrt(lo * hi)
        ev = at(mid)
        if ev.verdict == MEETS:
            lo = mid
            cap = _capacity(ev, cap)
        else:
            hi, hi_ev = mid, ev
    return Outcome(task.config_id, ev_t, lo, evals, note, limit=limit)


def _limit(ev: Evaluation | None) -> str:
    if ev is None:
        return "steps"
    if not ev.simulated:
        return "capacity"
    return "stability" if ev.verdict == UNSTABLE else "slo"


def _capacity(ev: Evaluation, default: float = math.nan) -> float:
    """The fleet capacity a simulated evaluation estimated (``default`` when it has none)."""
    c = ev.capacity_rps
    return c if ev.simulated and c is not None and not math.isnan(c) and c > 0 else default


LIMITS = {
    "slo": "the SLO (the next rate tried misses it)",
    "stability": "stability (the next rate tried is overloaded)",
    "capacity": "the capacity estimate (the next rate is at or above the fleet's estimated capacity)",
    "high_rps": "rate_search.high_rps (the search stops there)",
    "not_searched": "not searched (sweep.rate_search is null)",
    "steps": "rate_search.max_steps (the search ran out of steps before it converged)",
    "none": "no rate meets the SLO",
}


def limit_of(outcome: Outcome) -> str:
    """What bounds the outcome's max sustainable rate (a key of :data:`LIMITS`)."""
    if outcome.max_rate_rps is None or math.isnan(outcome.max_rate_rps):
        return "none"
    return outcome.limit or "steps"
