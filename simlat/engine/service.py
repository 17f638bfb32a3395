"""Service-time models: how long one batch takes on one replica, as a function of its items.

:func:`build_service` turns a ``config.ServiceTime`` into a :class:`ServiceModel`. One
implementation per config class lives in ``SERVICE_MODELS`` beside the union; the calibrated
``kind: profile`` is built by :func:`build_profile_service` from the curves of :mod:`simlat.profiles`
(imported lazily so that plain simulations never load profile files).

A sampler is a plain closure ``items -> ms``: the engine calls it once per batch, so it must be
cheap. Random draws are made ``BUFFER`` at a time with numpy and handed out one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simlat import dists
from simlat.config import service as cs

BUFFER = 65536
"""Random numbers drawn per refill of a sampler's buffer."""

Sampler = Callable[[int], float]


@dataclass(frozen=True)
class ServiceModel:
    """A batch service-time model.

    ``make_sampler(rng)`` returns the fast scalar sampler (items -> ms); ``mean(items)`` is the
    mean time of a batch of that many items; ``max_items`` is the largest batch the model knows
    (``None``: unbounded).
    """

    make_sampler: Callable[[np.random.Generator], Sampler]
    mean: Callable[[int], float]
    max_items: int | None = None

    def batch_sampler(self, rng: np.random.Generator) -> Sampler:
        """A fast ``items -> ms`` sampler drawing from ``rng`` (buffered)."""
        return self.make_sampler(rng)

    def mean_ms(self, items: float) -> float:
        """Mean service time of a batch of ``items`` items, ms."""
        return float(self.mean(items))


def buffered(draw: Callable[[int], np.ndarray]) -> Callable[..., float]:
    """A function returning successive values of ``draw(BUFFER)``, refilled as needed.

    It takes one ignored argument, so that it is itself a sampler for a model whose batch time
    does not depend on the items (one Python call per draw instead of two).
    """
    buf: list[float] = []
    pos = BUFFER

    def next_value(_items: int = 0) -> float:
        nonlocal buf, pos
        if pos >= BUFFER:
            buf = draw(BUFFER).tolist()
            pos = 0
        v = buf[pos]
        pos += 1
        return v

    return next_value


def _deterministic(cfg: cs.DeterministicService) -> ServiceModel:
    ms = float(cfg.ms)
    return ServiceModel(make_sampler=lambda rng: lambda items: ms, mean=lambda items: ms)


def _exponential(cfg: cs.ExponentialService) -> ServiceModel:
    m = float(cfg.mean_ms)

    def make(rng: np.random.Generator) -> Sampler:
        return buffered(lambda n: rng.exponential(m, size=n))

    return ServiceModel(make_sampler=make, mean=lambda items: m)


def _lognormal(cfg: cs.LognormalService) -> ServiceModel:
    med, sigma = float(cfg.median_ms), float(cfg.sigma)

    def make(rng: np.random.Generator) -> Sampler:
        return buffered(lambda n: med * np.exp(sigma * rng.standard_normal(n)))

    mean = med * float(np.exp(sigma * sigma / 2))
    return ServiceModel(make_sampler=make, mean=lambda items: mean)


def _empirical(cfg: cs.EmpiricalService) -> ServiceModel:
    samples = np.asarray(cfg.samples_ms, dtype=float)

    def make(rng: np.random.Generator) -> Sampler:
        return buffered(lambda n: rng.choice(samples, size=n))

    mean = float(samples.mean())
    return ServiceModel(make_sampler=make, mean=lambda items: mean)


def _affine(cfg: cs.AffineService) -> ServiceModel:
    a, b = float(cfg.base_ms), float(cfg.per_item_ms)
    noise = cfg.noise
    if noise is None:
        return ServiceModel(
            make_sampler=lambda rng: lambda items: a + b * items, mean=lambda items: a + b * items
        )
    noise_mean = dists.mean(noise)
    if cfg.noise_mode == "multiplicative":

        def make(rng: np.random.Generator) -> Sampler:
            nxt = buffered(lambda n: dists.sample(noise, n, rng))
            return lambda items: (a + b * items) * nxt()

        return ServiceModel(make_sampler=make, mean=lambda items: (a + b * items) * noise_mean)

    def make_add(rng: np.random.Generator) -> Sampler:
        nxt = buffered(lambda n: dists.sample(noise, n, rng))
        return lambda items: a + b * items + nxt()

    return ServiceModel(make_sampler=make_add, mean=lambda items: a + b * items + noise_mean)


def build_profile_service(cfg: cs.ProfileService, *, device: str | None = None) -> ServiceModel:
    """``kind: profile``: the sum of the profile's measured curves (model plus added components),
    each drawn from its quantile function at the batch's items (see :mod:`simlat.profiles`)."""
    from simlat.profiles.sampling import make_sampler, profile_curves  # read only when asked for

    curves = profile_curves(cfg, device=device)
    max_items = min(c.max_items for c in curves)

    def mean(items: float) -> float:
        return sum(c.mean(items) for c in curves)

    return ServiceModel(make_sampler=lambda rng: make_sampler(curves, rng), mean=mean, max_items=max_items)


SERVICE_MODELS: dict[type, Callable[..., ServiceModel]] = {
    cs.DeterministicService: _deterministic,
    cs.ExponentialService: _exponential,
    cs.LognormalService: _lognormal,
    cs.EmpiricalService: _empirical,
    cs.AffineService: _affine,
    cs.ProfileService: build_profile_service,
}
"""One implementation per ``config.service.ServiceTime`` class."""


def build_service(cfg: cs.ServiceTime) -> ServiceModel:
    """The :class:`ServiceModel` for a service-time config."""
    return SERVICE_MODELS[type(cfg)](cfg)
