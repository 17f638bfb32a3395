"""Piecewise-linear arrival intensity and its exact inversion (the time-change theorem).

A non-homogeneous Poisson process with cumulative intensity L(t) is L^-1 applied to the epochs of
a unit-rate Poisson process. For a rate that is linear on each segment, L is quadratic there and
its inverse has a closed form, so any number of arrivals is mapped with one ``np.searchsorted``
and a few vector operations. Times here are in seconds and rates in requests per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlat.errors import SimlatError

CHUNK = 1 << 20


MIN_WIDTH_S = 1e-9
"""A rate segment narrower than a nanosecond is a step."""


@dataclass(frozen=True)
class PiecewiseLinear:
    """Rate ``rate[k] + slope[k] * (t - start[k])`` on ``[start[k], start[k+1])``.

    The last segment ends at ``end``; with ``periodic`` the whole curve repeats with period ``end``
    (``start[0]`` must be 0), otherwise the last segment's rate continues for ever past ``end``
    with slope 0 (its rate at ``end``).
    """

    start: np.ndarray
    rate: np.ndarray
    slope: np.ndarray
    end: float
    periodic: bool = False

    @classmethod
    def through(cls, times, rates, periodic: bool = False) -> PiecewiseLinear:
        """Linear interpolation through (time, rate) points; equal consecutive times make a step.

        Segments shorter than ``MIN_WIDTH_S`` are steps too: their slope would overflow.
        """
        t = np.asarray(times, dtype=np.float64)
        r = np.asarray(rates, dtype=np.float64)
        width = np.diff(t)
        keep = width > MIN_WIDTH_S
        if not keep.any():
            raise SimlatError(
                f"workload.arrivals: the rate curve spans {float(t[-1] - t[0]):.3g} s; it needs at least one "
                f"segment longer than {MIN_WIDTH_S:g} s"
            )
        slope = np.zeros_like(width)
        slope[keep] = (r[1:][keep] - r[:-1][keep]) / width[keep]
        return cls(t[:-1][keep], r[:-1][keep], slope[keep], float(t[-1]), periodic)

    def _widths(self) -> np.ndarray:
        return np.diff(np.append(self.start, self.end))

    def _masses(self) -> np.ndarray:
        w = self._widths()
        return self.rate * w + 0.5 * self.slope * w * w

    @property
    def span_mass(self) -> float:
        """Expected arrivals on [start[0], end]."""
        return float(self._masses().sum())

    def mean_rate(self) -> float:
        """Mean rate over [start[0], end] (over one period when periodic)."""
        return self.span_mass / (self.end - float(self.start[0]))

    def tail_rate(self) -> float:
        """Rate after ``end`` (non-periodic curves)."""
        w = self._widths()[-1]
        return float(self.rate[-1] + self.slope[-1] * w)

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Expected arrivals in [start[0], t] (``t`` in seconds)."""
        t = np.asarray(t, dtype=np.float64)
        span = self.end - self.start[0]
        q = np.zeros_like(t)
        if self.periodic:
            q = np.floor((t - self.start[0]) / span)
            t = t - q * span
        cum = np.concatenate([[0.0], np.cumsum(self._masses())])
        k = np.clip(np.searchsorted(self.start, t, side="right") - 1, 0, len(self.start) - 1)
        x = np.minimum(t - self.start[k], self._widths()[k])
        out = cum[k] + self.rate[k] * x + 0.5 * self.slope[k] * x * x
        if not self.periodic:
            out = out + np.maximum(t - self.end, 0.0) * self.tail_rate()
        return out + q * cum[-1]

    def invert(self, u: np.ndarray) -> np.ndarray:
        """Times t with cumulative(t) = u for sorted ``u``; ``inf`` where the curve never gets there."""
        masses = self._masses()
        cum = np.concatenate([[0.0], np.cumsum(masses)])
        total = float(cum[-1])
        if self.periodic:
            out = np.empty(len(u))
            for lo in range(0, len(u), CHUNK):  # chunks keep the temporaries in cache
                part = u[lo : lo + CHUNK]
                q = np.floor(part / total)
                rem = part - q * total
                k = np.searchsorted(cum[:-1], rem, side="right") - 1
                t = self._within(rem - cum[k], k, None)
                t += q * (self.end - self.start[0])
                out[lo : lo + CHUNK] = t
            return out
        # u is sorted: find each segment's slice of u (m log n) instead of each u's segment (n log m)
        edges = np.searchsorted(u, cum, side="left")
        counts = np.diff(edges)
        inside = u[: edges[-1]] - np.repeat(cum[:-1], counts)
        t = np.empty(len(u))
        t[: edges[-1]] = self._within(inside, None, counts)
        tail = self.tail_rate()
        beyond = u[edges[-1] :]
        t[edges[-1] :] = self.end + (beyond - total) / tail if tail > 0 else np.inf
        return t

    def _within(self, du: np.ndarray, k: np.ndarray | None, counts: np.ndarray | None) -> np.ndarray:
        """Times for masses ``du`` into segments given by index ``k`` or by run lengths ``counts``
        (the root of rate * x + slope * x^2 / 2 = du, in a form stable for any slope sign)."""

        def per(a: np.ndarray) -> np.ndarray:
            if k is not None:
                return a[k]
            assert counts is not None, "either k or counts"
            return np.repeat(a, counts)

        r = per(self.rate)
        if np.any(self.slope != 0):
            s = per(self.slope)
            s *= du
            s *= 2.0
            s += r * r
            np.maximum(s, 0.0, out=s)
            np.sqrt(s, out=s)
            r += s  # r + sqrt(r^2 + 2 s du); the root is 2 du / that
            du = 2.0 * du
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.divide(du, r, out=np.zeros_like(du), where=du > 0)
        np.minimum(x, per(self._widths()), out=x)  # rounding at a segment's end
        x += per(self.start)
        return x
