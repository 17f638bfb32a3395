"""Markov-modulated Poisson arrivals (``mmpp``) and on-off bursts (``on_off``, two states).

States are visited cyclically; state i lasts Exp(mean_durations_s[i]) and emits Poisson arrivals
at rates_rps[i]. The random sojourns make a piecewise-constant intensity, and arrivals are unit-rate
Poisson epochs mapped through its inverse cumulative (exact and vectorised). The process starts in
state 0 at time 0.
"""

from __future__ import annotations

import numpy as np

from simlat.config.workload import MMPP, OnOff
from simlat.errors import SimlatError
from simlat.workload.intensity import PiecewiseLinear
from simlat.workload.stream import Stream, truncate, unit_arrivals

MAX_SOJOURNS = 3e7  # state changes per run (each costs about 16 bytes, plus temporaries)


def _sojourns(rates: np.ndarray, means: np.ndarray, cycles: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Durations (s) and rates of ``cycles`` full cycles through the states."""
    d = rng.exponential(1.0, size=(cycles, len(means))) * means
    return d.ravel(), np.tile(rates, cycles)


def modulated(rates_rps, mean_durations_s, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Arrivals of a cyclic MMPP."""
    rates = np.asarray(rates_rps, dtype=np.float64)
    means = np.asarray(mean_durations_s, dtype=np.float64)
    cycle_time, cycle_mass = means.sum(), float(rates @ means)
    horizon = np.inf if horizon_ms is None else horizon_ms  # n is given when horizon_ms is not
    horizon_s = horizon / 1000.0
    cycles_needed = n / cycle_mass if n is not None else horizon_s / cycle_time
    if cycles_needed * len(means) > MAX_SOJOURNS:
        raise SimlatError(
            f"workload.arrivals: the states last {cycle_time:.3g} s per cycle, so this run would need about "
            f"{cycles_needed * len(means):.3g} state changes (more than {MAX_SOJOURNS:.0e}); lengthen the "
            "mean durations or shorten the run"
        )
    u = unit_arrivals(rng, n, None) if n is not None else None
    durs: list[np.ndarray] = []
    rts: list[np.ndarray] = []
    time = mass = 0.0
    while (u is not None and mass <= u[-1]) or (u is None and time * 1000.0 < horizon):
        if u is not None:
            need = (u[-1] - mass) / cycle_mass
        else:
            need = (horizon_s - time) / cycle_time
        cycles = int(min(need + 4.0 * np.sqrt(need) + 4, 2_000_000))
        d, r = _sojourns(rates, means, cycles, rng)
        durs.append(d)
        rts.append(r)
        time += float(d.sum())
        mass += float(r @ d)
    d, r = np.concatenate(durs), np.concatenate(rts)
    start = np.concatenate([[0.0], np.cumsum(d)[:-1]])
    curve = PiecewiseLinear(start, r, np.zeros_like(r), float(start[-1] + d[-1]))
    if u is None:
        u = unit_arrivals(rng, None, float(curve.cumulative(np.array([horizon_s]))[0]))
    return Stream(truncate(curve.invert(u) * 1000.0, n, horizon_ms))


def mmpp(cfg: MMPP, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """Cyclic MMPP from the config."""
    return modulated(cfg.rates_rps, cfg.mean_durations_s, n, horizon_ms, rng)


def on_off(cfg: OnOff, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """On at ``on_rate_rps`` for Exp(mean_on_s), then ``off_rate_rps`` for Exp(mean_off_s)."""
    return modulated([cfg.on_rate_rps, cfg.off_rate_rps], [cfg.mean_on_s, cfg.mean_off_s], n, horizon_ms, rng)


def mean_rate(rates_rps, mean_durations_s) -> float:
    """Time-weighted mean rate: sum(rate_i * mean_i) / sum(mean_i)."""
    r = np.asarray(rates_rps, dtype=np.float64)
    m = np.asarray(mean_durations_s, dtype=np.float64)
    return float(r @ m / m.sum())
