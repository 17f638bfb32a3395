"""A sweep over the autoscaling policy's parameters (``fleet.autoscaling.sweep``, ``simlat day --sweep``).

Every point of the grid is the same day under a variant of the policy, with the same seed (common
random numbers: the policies see the same cold starts and the same window seeds, so their
differences are the policy's, not the noise's). The chosen policy is the cheapest (cost, else
replica-hours) whose compliance (of 1-minute windows or of requests, as ``compliance_on`` says)
reaches ``compliance_target``; ties go to the higher compliance, then to the shorter recovery. Each
other policy says why it lost.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from simlat.autoscale.day import DayResult, simulate_day
from simlat.config import Experiment
from simlat.errors import SimlatError

PRELOAD = ["simlat.autoscale.day", "simlat.api", "simlat.engine", "simlat.metrics", "simlat.workload", "scipy.stats"]


@dataclass
class DaySweepResult:
    """One row per policy (:attr:`table`), each policy's day, and the choice explained."""

    table: pd.DataFrame
    days: list[DayResult]
    chosen: int | None
    explanation: list[str] = field(default_factory=list)

    @property
    def chosen_day(self) -> DayResult | None:
        return None if self.chosen is None else self.days[self.chosen]


def _label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()) or "as configured"


Simulate = Callable[..., DayResult]
"""``simulate(experiment, window_s=...) -> DayResult``: the quasi-static day, or any engine's day whose
window table carries :data:`simlat.autoscale.metrics.WINDOW_COLUMNS` (a module-level function, so that
worker processes can run it)."""


def _one(args: tuple[Simulate, Experiment, float | None]) -> DayResult:
    simulate, experiment, window_s = args
    return simulate(experiment, window_s=window_s)


def _run(tasks: list[tuple[Simulate, Experiment, float | None]], workers: int,
         progress: Callable[[int, int], None] | None) -> list[DayResult]:
    if workers <= 1 or len(tasks) <= 1:
        out = []
        for i, t in enumerate(tasks):
            out.append(_one(t))
            if progress is not None:
                progress(i + 1, len(tasks))
        return out
    from simlat.sweep.lifeline import SWEEP_PID_ENV, die_with_parent

    os.environ[SWEEP_PID_ENV] = str(os.getpid())
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent) as pool:
        futures = [pool.submit(_one, t) for t in tasks]
        out = []
        for i, fut in enumerate(futures):
            out.append(fut.result())
            if progress is not None:
                progress(i + 1, len(tasks))
        return out


def run_day_sweep(experiment: Experiment, *, window_s: float | None = None, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None, simulate: Simulate = simulate_day) -> DaySweepResult:
    """Run the day under every policy of ``fleet.autoscaling.sweep`` with ``simulate`` and choose one
    (see the module doc)."""
    cfg = experiment.fleet.autoscaling
    if cfg is None or cfg.sweep is None:
        raise SimlatError("fleet.autoscaling.sweep: absent; simlat day --sweep needs a grid of policy parameters to sweep")
    sweep = cfg.sweep
    variants = cfg.variants()
    tasks = [(simulate, experiment.model_copy(update={"fleet": experiment.fleet.model_copy(update={"autoscaling": v})}), window_s)
             for _, v in variants]
    from simlat.sweep.executor import default_workers

    days = _run(tasks, min(workers or default_workers(), len(tasks)), progress)
    rows = []
    for (point, _), day in zip(variants, days, strict=True):
        s = day.summary
        compliance = s.slo_minutes_share if sweep.compliance_on == "minutes" else s.slo_requests_share
        rows.append({**point, "policy": _label(point), "compliance": compliance,
                     "slo_minutes_share": s.slo_minutes_share, "slo_requests_share": s.slo_requests_share,
                     "slo_windows_share": s.slo_windows_share, "replica_hours": s.replica_hours, "cost_usd": s.cost_usd,
                     "ready_min": s.ready_min, "ready_max": s.ready_max, "ready_mean": s.ready_mean,
                     "breaches": s.breaches, "recovery_s": s.recovery_s, "recovered": s.recovered,
                     "unstable_windows": s.unstable_windows, "meets_target": compliance >= sweep.compliance_target,
                     "elapsed_s": s.elapsed_s})
    table = pd.DataFrame(rows)
    chosen, reasons, explanation = choose(table, sweep.compliance_target, sweep.compliance_on)
    table["chosen"] = [i == chosen for i in range(len(table))]
    table["reason"] = reasons
    table["experiment"] = experiment.name
    table["seed"] = experiment.run.seed
    return DaySweepResult(table=table, days=days, chosen=chosen, explanation=explanation)


def _cost_key(table: pd.DataFrame) -> tuple[pd.Series, str]:
    if table["cost_usd"].notna().all():
        return table["cost_usd"].astype(float), "cost"
    return table["replica_hours"].astype(float), "replica-hours"


def _money(v: float, what: str) -> str:
    return f"${v:,.2f}" if what == "cost" else f"{v:,.2f} replica-hours"


def choose(table: pd.DataFrame, target: float, on: str) -> tuple[int | None, list[str], list[str]]:
    """(index of the chosen policy or None, why each policy was or was not chosen, the choice in sentences)."""
    cost, what = _cost_key(table)
    basis = "of 1-minute windows" if on == "minutes" else "of requests"
    order = pd.DataFrame({"cost": cost, "neg_c": -table["compliance"],
                          "rec": table["recovery_s"].astype(float).fillna(0.0)}).sort_values(
        ["cost", "neg_c", "rec"], kind="mergesort")
    ok = [i for i in order.index if table.at[i, "meets_target"]]
    chosen = int(ok[0]) if ok else None
    reasons = []
    for i in range(len(table)):
        c = table.at[i, "compliance"]
        if i == chosen:
            reasons.append("chosen")
        elif not table.at[i, "meets_target"]:
            reasons.append(f"misses the compliance target: {c:.2%} {basis} < {target:.2%}")
        else:
            assert chosen is not None
            extra = cost[i] - cost[chosen]
            reasons.append(f"meets the target ({c:.2%}) but costs {_money(extra, what)} more" if extra > 0
                           else f"meets the target ({c:.2%}), as cheap; the chosen one complies more or recovers faster")
    if chosen is None:
        best = int(table["compliance"].idxmax())
        explanation = [f"no policy meets the compliance target ({target:.2%} {basis}); the most compliant is "
                       f"{table.at[best, 'policy']} at {table.at[best, 'compliance']:.2%} for {_money(cost[best], what)}"]
    else:
        explanation = [f"chosen: {table.at[chosen, 'policy']}: {table.at[chosen, 'compliance']:.2%} {basis} meet the SLO "
                       f"(target {target:.2%}) for {_money(cost[chosen], what)}, the cheapest that does"]
        cheaper = [i for i in order.index if cost[i] < cost[chosen]]
        if cheaper:
            explanation.append(f"{len(cheaper)} cheaper polic{'y' if len(cheaper) == 1 else 'ies'} lost:")
            explanation += [f"  {table.at[i, 'policy']} ({_money(cost[i], what)}): {reasons[i]}" for i in cheaper]
        else:
            explanation.append("no policy of the grid is cheaper")
    return chosen, reasons, explanation


def write_day_table(table: pd.DataFrame, path) -> None:
    """Write the policy table by the file's suffix (.parquet, .csv, .json)."""
    from pathlib import Path

    from simlat.outputs import write_frame

    write_frame(table, Path(path), "--table")
