"""Sweep specification: the grid over experiment fields, the objective, prices and accuracy knobs.

The grid's keys are dotted experiment paths (``batching.max_batch_size``, ``fleet.replicas``,
``service.variant``, ``cache.l1.capacity``). Whether each path exists and each value is valid there
is checked against the experiment schema when the grid is expanded (:mod:`simlat.sweep.grid`),
because that needs the whole experiment; this module checks what it can alone.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from simlat.config.base import StrictModel

_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _check_path(path: str) -> str:
    if not _PATH.match(path):
        raise ValueError(f"{path!r} is not a dotted experiment path (like batching.max_batch_size)")
    if path.split(".")[0] in ("sweep", "name"):
        raise ValueError(f"{path!r}: the sweep cannot vary its own block or the experiment name")
    return path


class RateSearch(StrictModel):
    """Bisection on the arrival rate for the highest rate at which the SLO still holds.

    ``low_rps`` / ``high_rps`` bound the search (defaults: 5% of the target rate, and the fleet's
    capacity estimate). The search stops when ``high / low - 1 <= tolerance``. Each probed rate
    runs at most ``max_requests`` (a rate still undecided then is within statistical resolution of
    the limit and counts as failing); the target rate itself runs up to ``sweep.max_requests``.
    """

    low_rps: PositiveFloat | None = None
    high_rps: PositiveFloat | None = None
    tolerance: float = Field(default=0.03, gt=0, lt=1)
    max_steps: PositiveInt = 12
    max_requests: PositiveInt = 160_000

    @model_validator(mode="after")
    def _order(self):
        if self.low_rps is not None and self.high_rps is not None and self.low_rps >= self.high_rps:
            raise ValueError(f"low_rps ({self.low_rps}) must be < high_rps ({self.high_rps})")
        return self


class Sweep(StrictModel):
    """A grid of configurations, the question asked of them, and how precisely to answer it.

    - ``grid``: ``{dotted.path: [values...]}``; the configurations are the Cartesian product.
    - ``cases``: optional list of ``{dotted.path: value}`` mappings that vary together (a profile
      file with its device, say); the product is ``cases x grid``.
    - ``objective``: how the operating point is chosen among configurations meeting the SLO.
    - ``min_headroom``: only configurations whose maximum SLO-meeting rate is at least
      ``(1 + min_headroom) x`` the target rate qualify (0.25: absorbs 25% load growth).
    - ``prices``: USD per GPU-hour by device or profile name; ``cost_per_replica_hour`` is the
      fallback for configurations whose device has no price. A GPU is paid once however many
      instances share it (``fleet.instances_per_gpu``): cost = GPUs x price.
    - Accuracy: each rate is simulated with ``min_requests``, doubling until the SLO percentile's
      confidence interval is entirely below or above the bound, or its relative half-width is at
      most ``ci_rel_tolerance``, or ``max_requests`` is reached.
    - ``max_configs``: a grid larger than this is refused before it is expanded (each configuration
      holds a validated experiment in memory: 10^5 of them take about 1 GB).
    """

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(default_factory=list)
    objective: Literal["min_cost", "min_replicas", "max_throughput_per_replica"] = "min_cost"
    min_headroom: float = Field(default=0.0, ge=0)
    prices: dict[str, PositiveFloat] = Field(default_factory=dict)
    cost_per_replica_hour: PositiveFloat | None = None
    rate_search: RateSearch | None = RateSearch()
    min_requests: PositiveInt = 20_000
    max_requests: PositiveInt = 640_000
    ci_rel_tolerance: float = Field(default=0.02, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    max_configs: PositiveInt = Field(
        default=10_000,
        description="The most configurations the grid may expand to (raise it for a larger sweep on purpose).",
    )

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]):
        for path, values in v.items():
            _check_path(path)
            if not values:
                raise ValueError(f"{path}: needs at least one value")
        return v

    @field_validator("cases")
    @classmethod
    def _cases(cls, v: list[dict[str, Any]]):
        keys = None
        for i, case in enumerate(v):
            if not case:
                raise ValueError(f"[{i}]: a case must set at least one path")
            for path in case:
                _check_path(path)
            if keys is not None and set(case) != keys:
                raise ValueError(f"[{i}]: every case must set the same paths ({sorted(keys)}), got {sorted(case)}")
            keys = set(case)
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.min_requests > self.max_requests:
            raise ValueError(f"min_requests ({self.min_requests}) must be <= max_requests ({self.max_requests})")
        if self.size > self.max_configs:
            shape = " x ".join(str(len(v)) for v in ([self.cases] if self.cases else []) + list(self.grid.values()))
            raise ValueError(
                f"the grid expands to {self.size:,} configurations ({shape}), more than max_configs "
                f"({self.max_configs:,}); shrink the grid or set sweep.max_configs to allow it"
            )
        overlap = set(self.grid) & {p for case in self.cases[:1] for p in case}
        if overlap:
            raise ValueError(f"paths {sorted(overlap)} are set by both grid and cases")
        return self

    @property
    def params(self) -> list[str]:
        """The varied paths, cases first, in file order."""
        case_keys = list(self.cases[0]) if self.cases else []
        return case_keys + list(self.grid)

    @property
    def size(self) -> int:
        """Number of configurations."""
        n = max(1, len(self.cases))
        for values in self.grid.values():
            n *= len(values)
        return n
