"""The arrival-process family: one dict from config class to generator, one to its mean offered rate.

A generator is ``fn(cfg, n, horizon_ms, rng) -> Stream``: exactly one of ``n`` (arrival count) and
``horizon_ms`` (keep arrivals before it) is set.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simlat.config import workload as w
from simlat.workload import renewal
from simlat.workload.stream import Stream

Generator = Callable[[object, int | None, float | None, np.random.Generator], Stream]

GENERATORS: dict[type, Generator] = {
    w.Poisson: renewal.poisson,
    w.Deterministic: renewal.deterministic,
    w.GammaArrivals: renewal.gamma,
}

RATES: dict[type, Callable[[object], float | None]] = {
    w.Poisson: lambda c: float(c.rate_rps),
    w.Deterministic: lambda c: float(c.rate_rps),
    w.GammaArrivals: lambda c: float(c.rate_rps),
    w.ClosedLoop: lambda c: None,
}
