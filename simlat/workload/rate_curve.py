"""Non-homogeneous Poisson arrivals with a piecewise-linear rate: ``rate_curve`` and ``spike``.

Exact: unit-rate Poisson epochs are mapped through the inverse cumulative rate
(:class:`simlat.workload.intensity.PiecewiseLinear`), so arrivals come out sorted and vectorised.
"""

from __future__ import annotations

import numpy as np

from simlat.config.workload import RateCurve, Spike
from simlat.errors import SimlatError
from simlat.workload.intensity import PiecewiseLinear
from simlat.workload.stream import Stream, truncate, unit_arrivals


def curve_of(cfg: RateCurve) -> PiecewiseLinear:
    """The curve through ``points``; before the first point the rate is the first point's rate.

    With ``repeat`` the curve on [0, last time] repeats; otherwise the last rate continues.
    """
    times = [0.0] + [p[0] for p in cfg.points]
    rates = [cfg.points[0][1]] + [p[1] for p in cfg.points]
    return PiecewiseLinear.through(times, rates, periodic=cfg.repeat)


def spike_curve(cfg: Spike) -> PiecewiseLinear:
    """Base rate until ``start_s``; a linear ramp to the spike rate over ``ramp_s``; hold for
    ``duration_s``; a linear ramp back over ``ramp_s``; the base rate afterwards."""
    up = cfg.start_s + cfg.ramp_s
    down = up + cfg.duration_s
    times = [0.0, cfg.start_s, up, down, down + cfg.ramp_s]
    rates = [cfg.base_rate_rps, cfg.base_rate_rps, cfg.spike_rate_rps, cfg.spike_rate_rps, cfg.base_rate_rps]
    if cfg.start_s == 0:
        times, rates = times[1:], rates[1:]
    return PiecewiseLinear.through(times, rates)


def spike_mean_rate(cfg: Spike) -> float:
    """Mean rate over [0, end of the ramp down]: the window the spike shapes."""
    return spike_curve(cfg).mean_rate()


def replay_curve(curve: PiecewiseLinear, n: int | None, horizon_ms: float | None, rng: np.random.Generator, field: str) -> Stream:
    """Arrivals of the NHPP with this curve: ``n`` of them or those before ``horizon_ms``."""
    if n is not None:
        u = unit_arrivals(rng, n, None)
    else:
        assert horizon_ms is not None, "either n or horizon_ms"
        u = unit_arrivals(rng, None, float(curve.cumulative(np.array([horizon_ms / 1000.0]))[0]))
    t_ms = curve.invert(u) * 1000.0
    if n is not None and not np.isfinite(t_ms[-1]):
        raise SimlatError(
            f"{field}: the rate ends at 0 without repeat, so the curve offers only about "
            f"{curve.span_mass:.0f} requests, fewer than the {n} asked; end at a positive rate, "
            "set repeat: true, or bound the run by run.duration_s"
        )
    return Stream(truncate(t_ms, n, horizon_ms))


def rate_curve(cfg: RateCurve, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Arrivals following ``points`` (linear between them)."""
    return replay_curve(curve_of(cfg), n, horizon_ms, rng, "workload.arrivals.points")


def spike(cfg: Spike, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Arrivals of a base Poisson stream with one spike."""
    return replay_curve(spike_curve(cfg), n, horizon_ms, rng, "workload.arrivals")
