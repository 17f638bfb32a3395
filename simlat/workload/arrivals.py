"""The arrival-process family: one dict from config class to generator, one to its mean offered rate.

A generator is ``fn(cfg, n, horizon_ms, rng) -> Stream``: exactly one of ``n`` (arrival count) and
``horizon_ms`` (keep arrivals before it) is set. Closed-loop clients have no generator: the engine
simulates them.

Mean offered rates: the set rate for renewal processes; the time-weighted mean for MMPP and on-off;
the mean over one period for diurnal and a repeating rate curve; the mean over [0, last point] for
a non-repeating curve; the mean over [0, end of the ramp down] for a spike; the target rate (or the
trace's own rate) for a trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simlat.config import workload as w
from simlat.workload import diurnal, modulated, rate_curve, renewal
from simlat.workload.stream import Stream


def _replay(cfg, n, horizon_ms, rng) -> Stream:
    """Trace replay (imported on use: it needs pandas, which the other kinds do not)."""
    from simlat.workload import trace

    return trace.replay(cfg, n, horizon_ms, rng)


def _trace_rate(cfg) -> float:
    """The trace's offered rate (imported on use, like :func:`_replay`)."""
    from simlat.workload import trace

    return trace.offered_rate(cfg)


Generator = Callable[[Any, int | None, float | None, np.random.Generator], Stream]
"""(the arrivals config of its class, n, horizon_ms, rng) -> Stream"""

GENERATORS: dict[type, Generator] = {
    w.Poisson: renewal.poisson,
    w.Deterministic: renewal.deterministic,
    w.GammaArrivals: renewal.gamma,
    w.MMPP: modulated.mmpp,
    w.OnOff: modulated.on_off,
    w.Diurnal: diurnal.diurnal,
    w.RateCurve: rate_curve.rate_curve,
    w.Spike: rate_curve.spike,
    w.Trace: _replay,
}

RATES: dict[type, Callable[[Any], float | None]] = {
    w.Poisson: lambda c: float(c.rate_rps),
    w.Deterministic: lambda c: float(c.rate_rps),
    w.GammaArrivals: lambda c: float(c.rate_rps),
    w.MMPP: lambda c: modulated.mean_rate(c.rates_rps, c.mean_durations_s),
    w.OnOff: lambda c: modulated.mean_rate([c.on_rate_rps, c.off_rate_rps], [c.mean_on_s, c.mean_off_s]),
    w.Diurnal: lambda c: float(c.mean_rate_rps),
    w.RateCurve: lambda c: rate_curve.curve_of(c).mean_rate(),
    w.Spike: rate_curve.spike_mean_rate,
    w.Trace: _trace_rate,
    w.ClosedLoop: lambda c: None,
}
