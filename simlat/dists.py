"""Samplers for the scalar distributions of :mod:`simlat.config.dists`.

One function per family in ``_SAMPLERS``; :func:`sample` draws a vector, :func:`mean` gives the mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simlat.config import dists as d


def _gamma(c: d.Gamma, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = 1.0 / (c.cv * c.cv)
    return rng.gamma(shape, c.mean / shape, size=n)


def _choice(c: d.DiscreteChoice, n: int, rng: np.random.Generator) -> np.ndarray:
    values = np.asarray(c.values, dtype=float)
    if c.weights is None:
        return rng.choice(values, size=n)
    w = np.asarray(c.weights, dtype=float)
    return rng.choice(values, size=n, p=w / w.sum())


_SAMPLERS: dict[type, Callable[..., np.ndarray]] = {
    d.Constant: lambda c, n, rng: np.full(n, float(c.value)),
    d.Exponential: lambda c, n, rng: rng.exponential(c.mean, size=n),
    d.Gamma: _gamma,
    d.Lognormal: lambda c, n, rng: c.median * np.exp(c.sigma * rng.standard_normal(n)),
    d.Uniform: lambda c, n, rng: rng.uniform(min(c.low, c.high), max(c.low, c.high), size=n),
    d.Empirical: lambda c, n, rng: rng.choice(np.asarray(c.samples, dtype=float), size=n),
    d.DiscreteChoice: _choice,
}

_MEANS: dict[type, Callable[..., float]] = {
    d.Constant: lambda c: float(c.value),
    d.Exponential: lambda c: float(c.mean),
    d.Gamma: lambda c: float(c.mean),
    d.Lognormal: lambda c: float(c.median * np.exp(c.sigma**2 / 2)),
    d.Uniform: lambda c: (c.low + c.high) / 2.0,
    d.Empirical: lambda c: float(np.mean(c.samples)),
    d.DiscreteChoice: lambda c: float(np.average(c.values, weights=c.weights)),
}


def sample(dist: d.Dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` float64 values from ``dist``."""
    return _SAMPLERS[type(dist)](dist, n, rng)


def mean(dist: d.Dist) -> float:
    """The distribution's mean."""
    return _MEANS[type(dist)](dist)


def is_zero(dist: d.Dist) -> bool:
    """True for the constant 0 (lets callers skip work)."""
    return isinstance(dist, d.Constant) and dist.value == 0
