"""Per configuration: the full summary at the target rate and the highest rate meeting the SLO.

Bisection on the arrival rate (like MLPerf LoadGen's server scenario searching for peak QPS under
a latency bound). A point "meets" only when the upper end of the SLO percentile's confidence
interval is within the bound; an unstable point is above capacity and is never bisected through.
The fleet's capacity estimate bounds the search from above, so hopeless rates are never simulated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from simlat.config import Experiment
from simlat.config.sweep import Sweep
from simlat.errors import SimlatError
from simlat.sweep.evaluate import MEETS, Evaluation, evaluate, failed, skipped


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
    evals: list[Evaluation] = []

    def at(rate: float, capacity: float) -> Evaluation:
        if capacity > 0 and rate >= capacity:
            ev = skipped(rate, capacity)
        else:
            limit = sweep.rate_search.max_requests if sweep.rate_search is not None else None
            ev = evaluate(task.experiment, sweep, rate, task.seed, limit)
        evals.append(ev)
        return ev

    ev_t = evaluate(task.experiment, sweep, target, task.seed)
    evals.append(ev_t)
    cap = ev_t.capacity_rps if ev_t.capacity_rps > 0 else math.nan
    rs = sweep.rate_search
    if rs is None:
        return Outcome(task.config_id, ev_t, target if ev_t.verdict == MEETS else math.nan, evals)
    cap_or_zero = 0.0 if math.isnan(cap) else cap
    if ev_t.verdict == MEETS:
        lo = target
        hi = rs.high_rps if rs.high_rps is not None else cap
        if rs.high_rps is not None and not math.isnan(cap):
            hi = min(hi, cap)
        if math.isnan(hi):  # no capacity estimate: double until the SLO breaks
            hi = 2 * lo
            for _ in range(rs.max_steps):
                if at(hi, cap_or_zero).verdict != MEETS:
                    break
                lo, hi = hi, 2 * hi
        if hi <= lo:
            return Outcome(task.config_id, ev_t, lo, evals, "search capped at high_rps")
        if rs.high_rps is not None and hi == rs.high_rps and hi < cap_or_zero:
            if at(hi, cap_or_zero).verdict == MEETS:
                return Outcome(task.config_id, ev_t, hi, evals, "meets the SLO up to rate_search.high_rps")
    else:  # halve from min(target, capacity) until a rate meets the SLO, down to low_rps
        hi = target if math.isnan(cap) else min(target, cap)
        floor = rs.low_rps if rs.low_rps is not None else 0.05 * target
        if floor >= hi:
            return Outcome(task.config_id, ev_t, math.nan, evals, "fails at rate_search.low_rps")
        lo = math.nan
        rate = max(hi / 2, floor)
        for _ in range(rs.max_steps):
            if at(rate, cap_or_zero).verdict == MEETS:
                lo = rate
                break
            hi = rate
            if rate <= floor:
                break
            rate = max(rate / 2, floor)
        if math.isnan(lo):
            return Outcome(task.config_id, ev_t, math.nan, evals, "fails the SLO even at the lowest rate")
    for _ in range(rs.max_steps):
        if hi / lo - 1 <= rs.tolerance:
            break
        mid = math.sqrt(lo * hi)
        if at(mid, cap_or_zero).verdict == MEETS:
            lo = mid
        else:
            hi = mid
    return Outcome(task.config_id, ev_t, lo, evals)
