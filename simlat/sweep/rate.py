"""Setting an experiment's offered arrival rate, whatever its arrival process.

Rate search needs "the same workload at another rate": rate parameters are scaled by one factor so
the mean offered rate is the one asked for, keeping the process's shape (burst ratios, diurnal
amplitude, a trace's burst pattern). Closed-loop workloads have no offered rate and cannot be
rate-searched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlat.config import Experiment
from simlat.config import workload as w
from simlat.errors import SimlatError


def mean_rate_rps(arrivals: Any) -> float | None:
    """Mean offered rate of an arrival config (None: closed loop, or a trace at its native rate)."""
    kind = arrivals.kind
    if kind in ("poisson", "deterministic", "gamma"):
        return arrivals.rate_rps
    if kind == "diurnal":
        return arrivals.mean_rate_rps
    if kind == "trace":
        return arrivals.target_rate_rps
    if kind == "mmpp":
        r, d = np.asarray(arrivals.rates_rps), np.asarray(arrivals.mean_durations_s)
        return float((r * d).sum() / d.sum())
    if kind == "on_off":
        on, off = arrivals.mean_on_s, arrivals.mean_off_s
        return (arrivals.on_rate_rps * on + arrivals.off_rate_rps * off) / (on + off)
    if kind == "rate_curve":
        t = np.array([p[0] for p in arrivals.points])
        r = np.array([p[1] for p in arrivals.points])
        return float(((r[1:] + r[:-1]) / 2 * np.diff(t)).sum() / (t[-1] - t[0]))
    if kind == "spike":
        return arrivals.base_rate_rps  # the spike is an excursion from the base rate
    return None


def target_rate_rps(experiment: Experiment) -> float:
    """The rate the SLO is asked at: ``slo.target_rate_rps``, else the workload's offered rate."""
    if experiment.slo.target_rate_rps is not None:
        return experiment.slo.target_rate_rps
    rate = mean_rate_rps(experiment.workload.arrivals)
    if rate is None:
        raise SimlatError(
            f"slo.target_rate_rps: required for a sweep when workload.arrivals.kind is "
            f"{experiment.workload.arrivals.kind!r} (the workload has no fixed offered rate)"
        )
    return rate


def with_rate(experiment: Experiment, rate_rps: float) -> Experiment:
    """``experiment`` with its arrivals scaled to a mean offered rate of ``rate_rps``."""
    arr = experiment.workload.arrivals
    if isinstance(arr, w.ClosedLoop):
        raise SimlatError(
            "workload.arrivals.kind: 'closed_loop' cannot be rate-searched (clients set the rate); "
            "use an open arrival process or set sweep.rate_search: null"
        )
    new: w.Arrivals
    if isinstance(arr, w.Trace):
        new = arr.model_copy(update={"target_rate_rps": float(rate_rps)})
    else:
        mean = mean_rate_rps(arr)
        assert mean is not None  # every open process but a native-rate trace has one
        f = rate_rps / mean
        upd: dict[str, Any]
        if isinstance(arr, w.Poisson | w.Deterministic | w.GammaArrivals):
            upd = {"rate_rps": float(rate_rps)}
        elif isinstance(arr, w.Diurnal):
            upd = {"mean_rate_rps": float(rate_rps)}
        elif isinstance(arr, w.MMPP):
            upd = {"rates_rps": [r * f for r in arr.rates_rps]}
        elif isinstance(arr, w.OnOff):
            upd = {"on_rate_rps": arr.on_rate_rps * f, "off_rate_rps": arr.off_rate_rps * f}
        elif isinstance(arr, w.RateCurve):
            upd = {"points": [(t, r * f) for t, r in arr.points]}
        elif isinstance(arr, w.Spike):
            upd = {"base_rate_rps": arr.base_rate_rps * f, "spike_rate_rps": arr.spike_rate_rps * f}
        else:  # pragma: no cover - a new arrival kind must be added here
            raise SimlatError(f"workload.arrivals.kind: {arr.kind!r} has no rate scaling for sweeps")
        new = arr.model_copy(update=upd)
    workload = experiment.workload.model_copy(update={"arrivals": new})
    return experiment.model_copy(update={"workload": workload})
