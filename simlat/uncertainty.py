"""Prediction intervals: what a real run will measure, not only what the simulation's noise allows.

A simulation interval (``*_ci_ms``, :mod:`simlat.metrics`) says how precisely the simulator knows
its own p99. A prediction interval says where a real run's measured p99 will fall, so it adds,
on the log scale (independent parts, variances add):

- ``sim``: the simulation's own noise (from its 95% interval);
- ``calibration``: the model profile's between-process spread (``process_medians_ms`` of the
  profile points the run uses) and the serving profile's capacity resolution, turned into p99
  spread by simulating the run again with every server-holding time scaled by ``exp(+-sd)``;
- ``run_to_run``: the measured spread of p99 between repeated probes of the real serving stack at
  that load (slow spells, server state, arrival noise of a run), from the serving profile;
- ``fit``: the serving-stack fit's own residual on its calibration probes.

``PI = point * exp(+-z * sqrt(sum of variances))`` with z for the two-sided level (1.645 for 90%).
Without a measured serving stack there is no prediction interval: the profile alone has missed
real servers' p99 by 50-96% (docs/validation.md), and the summary says so.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

PROFILE_ONLY_MISS = "a prediction from the model profile alone missed measured p99 by 50-96% (docs/validation.md)"


@dataclass(frozen=True)
class PredictionInterval:
    """A point prediction with its prediction interval and the parts of its spread (sd of log)."""

    point: float
    low: float
    high: float
    level: float
    parts: dict = field(default_factory=dict)

    @property
    def sd_log(self) -> float:
        return math.sqrt(sum(v * v for v in self.parts.values()))

    def probability_below(self, threshold: float) -> float:
        """P(real p99 <= threshold) under the interval's lognormal."""
        if not (self.point > 0 and math.isfinite(self.point)):
            return 0.0
        sd = self.sd_log
        if sd <= 0:
            return float(self.point <= threshold)
        return float(norm.cdf((math.log(threshold) - math.log(self.point)) / sd))

    def to_json(self) -> dict:
        return {"point": self.point, "low": self.low, "high": self.high, "level": self.level,
                "sd_log": self.sd_log, "parts": dict(self.parts)}


def sd_from_ci(value: float, low: float, high: float, z95: float = 1.96) -> float:
    """sd of log from a 95% interval (inf bounds give a large, finite sd)."""
    if not (value > 0 and low > 0):
        return 0.5
    hi = high if math.isfinite(high) else value * 2.0
    return max(0.0, (math.log(hi) - math.log(low)) / (2 * z95))


def interval(point: float, parts: dict[str, float], level: float = 0.9) -> PredictionInterval:
    """Combine the parts' sds of log into a ``level`` prediction interval around ``point``."""
    sd = math.sqrt(sum(v * v for v in parts.values()))
    z = float(norm.ppf(0.5 + level / 2))
    return PredictionInterval(point, point * math.exp(-z * sd), point * math.exp(z * sd), level,
                              {k: float(v) for k, v in parts.items()})


MAX_ELASTICITY = 20.0


def elasticity(utilization: float) -> float:
    """d log(p99) / d log(server-holding time) at replica utilisation ``u``: ``1 / (1 - u)``, exact for
    the M/M/1 sojourn percentiles (``p = -ln(1 - q) s / (1 - rho)``), capped at :data:`MAX_ELASTICITY`."""
    u = min(max(float(utilization), 0.0), 1.0)
    return min(MAX_ELASTICITY, 1.0 / max(1.0 - u, 1.0 / MAX_ELASTICITY))


def for_run(point: float, ci: tuple[float, float] | None, *, load: float, utilization: float, serving,
            process_sd: float, level: float = 0.9) -> PredictionInterval:
    """The prediction interval of a simulated percentile ``point`` with simulation interval ``ci``,
    for a run whose replicas are at ``load`` x the serving profile's capacity and ``utilization``."""
    u = serving.uncertainty
    share = u.model_share
    cap_sd = u.capacity_resolution / (2 * math.sqrt(3))
    parts = {
        "sim": sd_from_ci(point, *(ci or (point, point))),
        "calibration": elasticity(utilization) * math.hypot(process_sd * share, cap_sd),
        "run_to_run": u.run_sd(load),
        "fit": u.fit_sd(load),
    }
    return interval(point, parts, level)


def profile_process_sd(service_cfg) -> float:
    """sd of log of the model profile's per-process medians, RMS over its points (0 if not a profile).

    Read once per profile file version (path, size, mtime) and model/variant/condition: a day of
    windows or a sweep asks for it at every run."""
    if getattr(service_cfg, "kind", None) != "profile":
        return 0.0
    from pathlib import Path

    try:
        st = Path(service_cfg.path).stat()
    except OSError:
        return 0.0
    return _process_sd(str(service_cfg.path), st.st_size, st.st_mtime_ns, service_cfg.model, service_cfg.variant,
                       service_cfg.condition)


@functools.lru_cache(maxsize=32)
def _process_sd(path: str, size: int, mtime_ns: int, model: str, variant: str, condition: str) -> float:
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return 0.0
    sds = []
    for m in data.get("models", []):
        if m.get("name") != model:
            continue
        for v in m.get("variants", []):
            if v.get("name") != variant:
                continue
            for pt in v.get(condition, []) or []:
                meds = (pt.get("dist") or {}).get("process_medians_ms") or []
                if len(meds) >= 2 and min(meds) > 0:
                    sds.append(float(np.std(np.log(meds), ddof=1)))
    return float(np.sqrt(np.mean(np.square(sds)))) if sds else 0.0
