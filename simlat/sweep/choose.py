"""The operating point: the configuration the objective prefers among those meeting the SLO, the
Pareto frontier of cost vs SLO latency vs throughput, and headroom."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

OBJECTIVES = ("min_cost", "min_replicas", "max_throughput_per_replica")


def headroom(max_rate_rps: float, target_rps: float) -> float:
    """Load growth absorbed before the SLO breaks: ``max_rate / target - 1`` (NaN if none meets)."""
    if max_rate_rps is None or math.isnan(max_rate_rps) or target_rps <= 0:
        return math.nan
    return max_rate_rps / target_rps - 1.0


def pareto_mask(points: pd.DataFrame) -> np.ndarray:
    """Non-dominated rows for (cost min, p99 at target min, max sustainable rate max).

    Rows unstable at the target rate are never on the frontier; a missing cost counts replicas.
    """
    cost = points["cost_per_hour"].to_numpy(float)
    cost = np.where(np.isnan(cost), points["replicas"].to_numpy(float), cost)
    p99 = points["p99_ms"].to_numpy(float)
    thr = np.nan_to_num(points["max_rate_rps"].to_numpy(float), nan=0.0)
    ok = points["stable"].to_numpy(bool) & ~np.isnan(p99)
    mask = np.zeros(len(points), bool)
    for i in np.flatnonzero(ok):
        no_worse = ok & (cost <= cost[i]) & (p99 <= p99[i]) & (thr >= thr[i])
        better = (cost < cost[i]) | (p99 < p99[i]) | (thr > thr[i])
        mask[i] = not np.any(no_worse & better)
    return mask


def choose(points: pd.DataFrame, objective: str, min_headroom: float = 0.0) -> str | None:
    """The config_id the objective picks among rows with ``meets_slo`` and at least ``min_headroom``.

    Ties break towards lower cost, then more headroom, then the tighter SLO interval.
    """
    qualifies = points["meets_slo"].astype(bool)
    if min_headroom > 0:
        qualifies &= points["headroom"].fillna(-np.inf) >= min_headroom
    ok = points[qualifies].copy()
    if ok.empty:
        return None
    ok["_cost"] = ok["cost_per_hour"].fillna(np.inf)
    ok["_neg_tpr"] = -(ok["max_rate_rps"].fillna(0.0) / ok["replicas"])
    ok["_neg_headroom"] = -ok["headroom"].fillna(-np.inf)
    keys = {
        "min_cost": ["_cost", "replicas", "_neg_headroom", "slo_hi_ms"],
        "min_replicas": ["replicas", "_cost", "_neg_headroom", "slo_hi_ms"],
        "max_throughput_per_replica": ["_neg_tpr", "_cost", "slo_hi_ms"],
    }[objective]
    return str(ok.sort_values(keys + ["config_id"], kind="mergesort").iloc[0]["config_id"])
