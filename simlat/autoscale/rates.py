"""Mean offered rate of each window of the day, from the workload's rate curve (exact integrals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simlat.config.workload import Deterministic, Diurnal, GammaArrivals, Poisson, RateCurve, Spike
from simlat.errors import SimlatError


def _constant(cfg, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.full(len(a), float(cfg.rate_rps))


def _diurnal(cfg: Diurnal, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of ``m (1 + A sin(w (t - phase)))`` over [a, b]: ``m (1 + A (cos(w(a-p)) - cos(w(b-p))) / (w (b - a)))``."""
    w = 2.0 * np.pi / cfg.period_s
    swing = (np.cos(w * (a - cfg.phase_s)) - np.cos(w * (b - cfg.phase_s))) / (w * (b - a))
    return cfg.mean_rate_rps * (1.0 + cfg.amplitude * swing)


def _curve(curve, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (curve.cumulative(b) - curve.cumulative(a)) / (b - a)


def _rate_curve(cfg: RateCurve, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from simlat.workload.rate_curve import curve_of

    return _curve(curve_of(cfg), a, b)


def _spike(cfg: Spike, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from simlat.workload.rate_curve import spike_curve

    return _curve(spike_curve(cfg), a, b)


WINDOW_RATES: dict[type[Any], Callable[[Any, np.ndarray, np.ndarray], np.ndarray]] = {
    Poisson: _constant,
    Deterministic: _constant,
    GammaArrivals: _constant,
    Diurnal: _diurnal,
    RateCurve: _rate_curve,
    Spike: _spike,
}
"""Arrival kinds whose rate over time is known in closed form, and the window means of each."""


def window_rates(arrivals, edges_s: np.ndarray) -> np.ndarray:
    """Mean offered rate (requests/s) on each ``[edges_s[i], edges_s[i+1])``."""
    fn = WINDOW_RATES.get(type(arrivals))
    if fn is None:
        kinds = ", ".join(sorted(c.model_fields["kind"].default for c in WINDOW_RATES))
        raise SimlatError(
            f"workload.arrivals.kind: {arrivals.kind!r} has no rate curve simlat day can follow; use one of {kinds}"
        )
    a, b = np.asarray(edges_s[:-1], float), np.asarray(edges_s[1:], float)
    return np.maximum(fn(arrivals, a, b), 0.0)
