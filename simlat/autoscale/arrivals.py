"""The day's arrivals, one time slice at a time (the exact day engine, :mod:`simlat.autoscale.stream`).

A source's ``take(t0_ms, t1_ms)`` returns the sorted arrivals in ``[t0, t1)``; successive calls ask
for successive slices. Exact for each kind:

- ``poisson``, ``rate_curve`` (``repeat`` included), ``spike``: a non-homogeneous Poisson process
  by inversion of the integrated rate ``L``: the count in a slice is ``Poisson(L(t1) - L(t0))`` and,
  given the count, the points are sorted uniforms in ``[L(t0), L(t1))`` (made sorted directly as
  normalised cumulative exponential sums) mapped through ``L^-1``;
- ``diurnal``: Lewis-Shedler thinning of a Poisson stream at the peak rate, slice by slice;
- ``trace``: the trace's timestamps, scaled to ``target_rate_rps`` and tiled (``loop``) as
  :func:`simlat.workload.trace.replay` does, cut at the slice's edges.

Other kinds (renewal, MMPP, on/off) are refused.
"""

from __future__ import annotations

import numpy as np

from simlat.config.workload import Diurnal, Poisson, RateCurve, Spike, Trace
from simlat.errors import SimlatError
from simlat.workload.intensity import PiecewiseLinear


class CurveSource:
    """A non-homogeneous Poisson process with a piecewise-linear rate, by inversion."""

    def __init__(self, curve: PiecewiseLinear, rng: np.random.Generator):
        self.curve, self.rng = curve, rng

    def take(self, t0_ms: float, t1_ms: float) -> np.ndarray:
        L0, L1 = self.curve.cumulative(np.array([t0_ms / 1000.0, t1_ms / 1000.0]))
        m = float(L1 - L0)
        n = int(self.rng.poisson(m)) if m > 0 else 0
        if n == 0:
            return np.zeros(0)
        u = self.rng.standard_exponential(n + 1)
        np.cumsum(u, out=u)
        u = u[:-1] * (m / u[-1])
        u += L0
        t = self.curve.invert(u)
        t *= 1000.0
        np.maximum.accumulate(t, out=t)  # rounding at the segment joins must not unsort them
        return np.clip(t, t0_ms, np.nextafter(t1_ms, -np.inf))


class DiurnalSource:
    """Thinning at the peak rate (exact), slice by slice."""

    def __init__(self, cfg: Diurnal, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.peak = cfg.mean_rate_rps * (1.0 + cfg.amplitude)

    def take(self, t0_ms: float, t1_ms: float) -> np.ndarray:
        from simlat.workload.diurnal import rate_at

        span = (t1_ms - t0_ms) / 1000.0
        n = int(self.rng.poisson(self.peak * span))
        if n == 0:
            return np.zeros(0)
        cand = self.rng.standard_exponential(n + 1)  # sorted uniforms: normalised exponential sums
        np.cumsum(cand, out=cand)
        cand = cand[:-1] * (span / cand[-1])
        cand += t0_ms / 1000.0
        keep = self.rng.random(n) * self.peak < rate_at(self.cfg, cand)
        return cand[keep] * 1000.0


class TraceSource:
    """The trace's times, scaled and tiled."""

    def __init__(self, cfg: Trace):
        from simlat.workload.trace import load, scale_factor

        data = load(cfg)
        factor = scale_factor(cfg, data) * 1000.0
        self.offsets = data.offsets_s * factor
        self.loop = cfg.loop
        n = data.rows
        self.period = (data.span_s + data.span_s / (n - 1)) * factor if n > 1 else max(self.offsets[-1], 1.0)

    def take(self, t0_ms: float, t1_ms: float) -> np.ndarray:
        if not self.loop:
            i, k = np.searchsorted(self.offsets, [t0_ms, t1_ms], side="left")
            return self.offsets[i:k]
        out = []
        for tile in range(int(t0_ms // self.period), int(t1_ms // self.period) + 1):
            base = tile * self.period
            i, k = np.searchsorted(self.offsets, [t0_ms - base, t1_ms - base], side="left")
            out.append(self.offsets[i:k] + base)
        return np.concatenate(out) if out else np.zeros(0)


def arrival_source(arrivals, rng: np.random.Generator):
    """The source of ``workload.arrivals`` (see the module doc)."""
    from simlat.workload.rate_curve import curve_of, spike_curve

    if isinstance(arrivals, Poisson):
        return CurveSource(PiecewiseLinear.through([0.0, 1.0], [arrivals.rate_rps] * 2), rng)
    if isinstance(arrivals, RateCurve):
        return CurveSource(curve_of(arrivals), rng)
    if isinstance(arrivals, Spike):
        return CurveSource(spike_curve(arrivals), rng)
    if isinstance(arrivals, Diurnal):
        return DiurnalSource(arrivals, rng)
    if isinstance(arrivals, Trace):
        return TraceSource(arrivals)
    raise SimlatError(f"workload.arrivals.kind: {arrivals.kind!r} is not supported by the exact day engine; use poisson, "
                      "rate_curve, spike, diurnal or trace (or --engine quasi-static)")


class ArraySource:
    """Given arrival times (ms, sorted): replays of recorded arrivals, and the tests' reference runs."""

    def __init__(self, arrival_ms: np.ndarray):
        self.t = np.asarray(arrival_ms, dtype=float)

    def take(self, t0_ms: float, t1_ms: float) -> np.ndarray:
        i, k = np.searchsorted(self.t, [t0_ms, t1_ms], side="left")
        return self.t[i:k]
