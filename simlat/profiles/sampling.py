"""Sampling a service profile: interpolated quantile functions and fast ``items -> ms`` samplers.

A :class:`Curve` holds one measured condition (or overhead component) of a variant as quantile
functions at increasing batch sizes; :func:`make_sampler` draws the sum of several curves, and
:func:`profile_curves` selects the curves a ``kind: profile`` service config names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from simlat.errors import SimlatError
from simlat.profiles.device import check_device
from simlat.profiles.schema import Point, ServiceProfile, load_profile

if TYPE_CHECKING:
    from simlat.config.service import ProfileService

DENSE_GRID = 2048
"""Intervals of the uniform grid a sampler reads its quantile function from."""

BUFFER = 65536
"""Uniform draws made per refill of a sampler's buffer."""



class Curve:
    """Quantile functions measured at increasing batch sizes, resampled on a uniform level grid.

    The quantile function at ``items`` between two measured sizes is the linear interpolation of
    their quantile functions (so the shape of the distribution moves smoothly; a mixture would be
    bimodal). ``fixed_shape``: items are padded up to the next measured size instead. Below the
    smallest measured size the smallest one is used (a batch never runs faster than padded);
    above the largest, :class:`SimlatError`: no silent extrapolation.
    """

    def __init__(self, sizes: list[int], levels: list[float], quantiles: list[list[float]], *, fixed_shape: bool, label: str):
        if not sizes:
            raise SimlatError(f"{label}: no measured batch sizes")
        self.sizes = np.asarray(sizes, dtype=np.float64)
        grid = np.linspace(0.0, 1.0, DENSE_GRID + 1)
        self.tables = np.vstack([np.interp(grid, levels, q) for q in quantiles])
        # mean of the piecewise-linear quantile function on the dense grid (what the sampler draws)
        t = self.tables
        self.means = (t[:, :-1] + t[:, 1:]).sum(axis=1) / (2 * DENSE_GRID)
        self.fixed_shape = fixed_shape
        self.label = label
        self.max_items = int(sizes[-1])

    def _locate(self, items: float) -> tuple[int, int, float]:
        """Rows and weight of the upper row: quantile function = (1-w) row_lo + w row_hi."""
        if not items >= 1 or (isinstance(items, float) and math.isnan(items)):
            raise SimlatError(f"{self.label}: batch of {items!r} items is invalid: it must be >= 1")
        if items > self.max_items:
            raise SimlatError(
                f"{self.label}: batch of {items:g} items exceeds the largest measured batch size"
                f" ({self.max_items}); recalibrate with larger --batch-sizes or cap max_batch_size"
            )
        s = self.sizes
        hi = int(np.searchsorted(s, items, side="left"))
        if s[hi] == items or hi == 0 or self.fixed_shape:
            return hi, hi, 0.0
        lo = hi - 1
        return lo, hi, float((items - s[lo]) / (s[hi] - s[lo]))

    def table(self, items: float) -> np.ndarray:
        """The quantile function at ``items`` on the dense uniform grid."""
        lo, hi, w = self._locate(items)
        if w == 0.0:
            return self.tables[hi]
        return (1.0 - w) * self.tables[lo] + w * self.tables[hi]

    def mean(self, items: float) -> float:
        """Mean of the distribution at ``items`` (quantile functions mix linearly, so do means)."""
        lo, hi, w = self._locate(items)
        return float((1.0 - w) * self.means[lo] + w * self.means[hi])

    def quantile(self, items: float, q: float) -> float:
        """The ``q`` quantile at ``items``."""
        t = self.table(items)
        return float(np.interp(q, np.linspace(0.0, 1.0, DENSE_GRID + 1), t))


def curve_from_points(points: list[Point], levels: list[float], *, fixed_shape: bool, label: str) -> Curve:
    """A :class:`Curve` over a list of profile points."""
    return Curve(
        [p.batch_size for p in points],
        levels,
        [p.dist.quantiles_ms for p in points],
        fixed_shape=fixed_shape,
        label=label,
    )


def _curve_sampler(curve: Curve, rng: np.random.Generator) -> Callable[[int], float]:
    """Draws from one curve: a buffered uniform, read off the cached table at ``items``."""
    n = DENSE_GRID
    cache: dict[int, list[float]] = {}
    buf: list[float] = []
    pos = BUFFER

    def draw(items: int) -> float:
        nonlocal buf, pos
        t = cache.get(items)
        if t is None:
            t = curve.table(items).tolist()
            t.append(t[-1])  # guard for x == n exactly
            cache[items] = t
        if pos >= BUFFER:
            buf = (rng.random(BUFFER) * n).tolist()
            pos = 0
        x = buf[pos]
        pos += 1
        k = int(x)
        a = t[k]
        return a + (x - k) * (t[k + 1] - a)

    return draw


def make_sampler(curves: list[Curve], rng: np.random.Generator) -> Callable[[int], float]:
    """A fast ``items -> ms`` sampler: the sum of one independent draw from each curve.

    Uniform draws come from ``rng`` ``BUFFER`` at a time (one stream per curve, spawned from
    ``rng``); each curve's table at a given items count is computed once and cached as a list.
    """
    if len(curves) == 1:
        return _curve_sampler(curves[0], rng)
    draws = [_curve_sampler(c, r) for c, r in zip(curves, rng.spawn(len(curves)), strict=True)]
    if len(draws) == 2:
        d0, d1 = draws
        return lambda items: d0(items) + d1(items)

    def total(items: int) -> float:
        t = 0.0
        for d in draws:
            t += d(items)
        return t

    return total


def select_curves(profile: ServiceProfile, model: str, variant: str, condition: str, components: list[str], source: str) -> list[Curve]:
    """The curves one ProfileService draws from: the variant's condition curve, then each component."""
    if model not in {x.name for x in profile.models}:
        raise SimlatError(
            f"service.model: {model!r} is not in {source}; it has: {', '.join(x.name for x in profile.models)}"
        )
    m = profile.model(model)
    by_name = {v.name: v for v in m.variants}
    if variant not in by_name:
        ok = [v.name for v in m.variants if v.status == "ok"]
        raise SimlatError(f"service.variant: {variant!r} is not in {source} for model {model!r}; measured variants: {', '.join(ok)}")
    v = by_name[variant]
    if v.status != "ok":
        raise SimlatError(f"service.variant: {variant!r} of model {model!r} was skipped in {source}: {v.reason}")
    points = v.steady if condition == "steady" else v.idle
    if not points:
        raise SimlatError(f"service.condition: {condition!r} was not measured for {model}/{variant} in {source}")
    label = f"profile {source} {model}/{variant} ({condition})"
    curves = [curve_from_points(points, profile.quantile_levels, fixed_shape=v.fixed_shape, label=label)]
    comps = {c.name: c for c in m.components}
    for name in components:
        if name not in comps:
            raise SimlatError(
                f"service.add_components: {name!r} was not measured for model {model!r} in {source};"
                f" measured components: {', '.join(comps) or '(none)'}"
            )
        curves.append(curve_from_points(comps[name].points, profile.quantile_levels, fixed_shape=False, label=f"{label} + {name}"))
    return curves


def profile_curves(cfg: ProfileService, *, device: str | None = None) -> list[Curve]:
    """The measured curves a ``kind: profile`` service config draws from (model, then components).

    ``device`` (the experiment's) is checked against the profile's device: a mismatch warns
    (:class:`~simlat.profiles.device.ProfileDeviceWarning`). The engine turns the curves into its
    service model (:mod:`simlat.engine.service`).
    """
    profile = load_profile(cfg.path, field="service.path")
    name = cfg.path.name
    check_device(profile, device, name)
    return select_curves(profile, cfg.model, cfg.variant, cfg.condition, list(cfg.add_components), name)
