"""The outcome of a sweep: one table row per configuration, load curves, and the chosen point.

This is the contract between :mod:`simlat.sweep` (which fills it) and :mod:`simlat.report`
(which draws it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class SweepResult:
    """Everything a planner's report needs.

    ``points``: one row per configuration. Columns: ``config_id`` (stable hash), one column per swept
    parameter (names in ``params``, dotted experiment paths such as ``batching.max_batch_size``),
    ``label`` (short human name), ``cost_per_hour``, ``replicas``, ``max_rate_rps`` (highest arrival
    rate meeting the SLO, NaN if none), ``stable`` (at the target rate), ``p50_ms``, ``p99_ms``,
    ``p99_lo_ms``, ``p99_hi_ms``, ``p999_ms``, ``slo_estimate_ms``, ``slo_lo_ms``, ``slo_hi_ms``,
    ``slo_met_probability``, ``meets_slo`` (with >= 95% confidence), ``utilization`` (mean over
    replicas), ``mean_batch_size``, decomposition means ``queue_wait_ms``, ``batch_wait_ms``,
    ``service_ms``, ``overhead_ms``, ``cache_ms``, ``headroom`` (max_rate / target - 1),
    ``pareto`` (on the cost / p99 / throughput frontier), ``requests_simulated``, ``drop_rate``,
    ``limit`` (what bounds ``max_rate_rps``: a key of :data:`simlat.sweep.search.LIMITS`),
    ``reason`` (why it was not chosen, or "chosen"); with a cache, ``hit_ratio`` (of lookups,
    after warm-up, at the simulated rate nearest the target).

    ``load_curves``: one row per (config_id, rate_rps) evaluated by the rate search: ``config_id``,
    ``rate_rps``, ``slo_estimate_ms``, ``slo_lo_ms``, ``slo_hi_ms``, ``p99_ms``, ``stable``.

    ``chosen_quantiles``: the chosen point's latency distribution at the target rate, as kept by its
    search (``quantile, nines, latency_ms``; ``chosen_requests`` requests behind it). The report only
    renders this object: it never simulates.

    ``explanation``: why the chosen point is chosen (the binding constraint, why each better-ranked
    configuration lost); ``warnings``: e.g. the answer on the edge of the grid.
    """

    experiment_name: str
    slo_percentile: float
    slo_latency_ms: float
    target_rate_rps: float
    objective: str
    params: list[str]
    points: pd.DataFrame
    load_curves: pd.DataFrame
    chosen: str | None = None
    recommendation: str = ""
    chosen_latencies_ms: np.ndarray | None = None
    chosen_batch_hist: dict[int, int] = field(default_factory=dict)
    chosen_decomposition_ms: dict[str, float] = field(default_factory=dict)
    profiles: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0
    attribution: list[str] = field(default_factory=list)
    # Added by the sweep: how many configurations came from the result cache, and where they ran.
    cached_configs: int = 0
    executor: str = ""
    cpu_s: float = 0.0  # CPU seconds the workers spent on the configurations computed (not cached)
    chosen_quantiles: pd.DataFrame | None = None
    chosen_requests: int = 0
    explanation: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seed: int | None = None
    services: list[tuple[str, str, str]] = field(default_factory=list)
    """(profile file name, model, variant) of every profile-based configuration."""
    inputs: list[tuple[str, str]] = field(default_factory=list)
    """(label, value) pairs: arrivals, fan-out, overheads, SLO, run and sweep settings, profiles."""
    run_warnings: list[str] = field(default_factory=list)
    """The simulator's warnings at the chosen (or closest) configuration's target rate."""
    command: str = ""
    chosen_max_batch: int | None = None
    min_headroom: float = 0.0
    simlat_version: str = field(default_factory=lambda: __import__("simlat").__version__)

    def to_pandas(self) -> pd.DataFrame:
        """One row per configuration: parameters as columns, then the results (:func:`simlat.sweep.table.sweep_table`)."""
        from simlat.sweep.table import sweep_table

        return sweep_table(self)
