"""How long to measure: the ``--budget quick|normal|thorough`` levels.

``point_s`` is the time spent sampling one batch size back-to-back (at least ``min_samples``
calls); the warm-up stops when steady or at ``warmup_s``. ``processes``: separate measuring
processes per variant (the first measures every batch size; the others re-measure ``repeat_sizes``
of them, so the spread between processes is reported). Idle samples are taken after
``idle_gap_s`` of idleness at the smallest and the largest batch size (and the middle one with
``idle_sizes=3``).

``adaptive``: the batch sizes of a variant that is not fixed-shape are chosen as it measures
(:mod:`simlat.calibrate.adaptive`: a coarse subset first, then bisection where the simulator's
interpolation misses a measured midpoint by more than ``tolerance``); the others are recorded as
interpolated. ``rel_ci``: sampling a batch size stops once the median's 95% CI half-width is below
this share of the median (0: off; ``point_s`` and ``max_samples`` still cap it).
``default_time_limit_s``: the run's time limit when none is given (None: unlimited).
"""

from __future__ import annotations

from dataclasses import dataclass

from simlat.errors import SimlatError


@dataclass(frozen=True)
class Budget:
    """Measurement effort per variant."""

    name: str
    point_s: float
    min_samples: int
    max_samples: int
    warmup_s: float
    processes: int
    repeat_sizes: int
    idle_samples: int
    idle_gap_s: float
    idle_sizes: int
    component_point_s: float
    adaptive: bool = False
    coarse_step: int = 4
    tolerance: float = 0.05
    rel_ci: float = 0.0
    default_time_limit_s: float | None = None

    def to_json(self) -> dict:
        """Plain dict for a worker's task."""
        return dict(self.__dict__)


BUDGETS = {
    b.name: b
    for b in [
        Budget("quick", point_s=0.04, min_samples=8, max_samples=300, warmup_s=0.3, processes=1, repeat_sizes=3,
               idle_samples=3, idle_gap_s=0.02, idle_sizes=2, component_point_s=0.02),
        Budget("normal", point_s=0.25, min_samples=25, max_samples=4000, warmup_s=1.5, processes=2, repeat_sizes=3,
               idle_samples=4, idle_gap_s=0.25, idle_sizes=2, component_point_s=0.1),
        Budget("thorough", point_s=1.5, min_samples=60, max_samples=30000, warmup_s=5.0, processes=3, repeat_sizes=99,
               idle_samples=25, idle_gap_s=1.0, idle_sizes=3, component_point_s=0.5),
        Budget("adaptive", point_s=0.15, min_samples=15, max_samples=3000, warmup_s=0.3, processes=2, repeat_sizes=3,
               idle_samples=3, idle_gap_s=0.25, idle_sizes=2, component_point_s=0.05,
               adaptive=True, coarse_step=4, tolerance=0.05, rel_ci=0.02, default_time_limit_s=540.0),
    ]
}


def get_budget(name: str) -> Budget:
    """The named budget or a SimlatError listing the valid names."""
    if name not in BUDGETS:
        raise SimlatError(f"--budget: {name!r} is not a budget; valid: {', '.join(BUDGETS)}")
    return BUDGETS[name]
