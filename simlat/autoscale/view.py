"""The day in the terminal: the summary in sentences and one row per hour."""

from __future__ import annotations

import json
import math

from simlat.autoscale.day import DayResult


def hourly(result: DayResult):
    """One row per hour of the day: mean offered rate, ready replicas (min-max), most starting, mean
    utilisation, worst windowed p99 and the share of windows meeting the SLO."""
    w = result.windows.copy()
    w["hour"] = (w["start_s"] // 3600).astype(int)
    g = w.groupby("hour")
    return g.agg(
        offered_rps=("offered_rps", "mean"), ready_min=("ready", "min"), ready_max=("ready", "max"),
        starting_max=("starting", "max"), utilization=("utilization", "mean"), p99_max_ms=("p99_ms", "max"),
        unstable=("stable", lambda s: int((~s).sum())), meets_slo=("meets_slo", "mean"),
    ).reset_index()


def _num(v, fmt: str, none: str = "-") -> str:
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def summary_lines(result: DayResult, slo_text: str) -> list[str]:
    s = result.summary
    lines = [
        f"{s.experiment}: {s.windows} windows of {s.window_s:g} s, policy {s.policy} ({s.method}: each window "
        "simulated alone at its mean rate; queues are not carried across windows)" if s.method == "quasi-static" else
        f"{s.experiment}: {s.windows} windows of {s.window_s:g} s, policy {s.policy} ({s.method}: one event-level run "
        f"through the day, {s.served_requests or 0:,} requests; queues carry over)",
        f"offered: {s.offered_requests:,.0f} requests; ready replicas {s.ready_min}-{s.ready_max} (mean {s.ready_mean:.2f})",
        f"SLO {slo_text}: met in {s.slo_minutes_share:.2%} of 1-minute windows ({s.slo_windows_share:.2%} of "
        f"{s.window_s:g}-s windows) and by {s.slo_requests_share:.3%} of requests "
        f"({s.unstable_windows} unstable window(s), counted as missing it)"
        + ("; a minute takes the verdict of the window(s) overlapping it" if s.window_s != 60 and s.method == "quasi-static" else ""),
        f"replica-hours {s.replica_hours:.2f}; cost "
        + (f"${s.cost_usd:,.2f} at ${s.price_per_replica_hour:g}/replica-hour" if s.cost_usd is not None else "unknown (no price)"),
        f"cold start: {s.cold_start}" if s.cold_start_mean_s is None
        else f"cold start: {s.cold_start_mean_s:.1f} s mean, from {s.cold_start}",
    ]
    if s.recovery_s is None:
        lines.append("recovery: the SLO is never missed")
    else:
        end = "" if s.recovered else " (still missing it when the day ends)"
        lines.append(f"recovery: {s.breaches} breach(es) of the SLO; the longest lasts {s.recovery_s:g} s from "
                     f"{s.recovery_from_s:g} s{end}")
    if s.largest_step_at_s is not None:
        rec = "never within the day" if s.step_recovery_s is None else f"{s.step_recovery_s:g} s"
        lines.append(f"largest rate step: +{s.largest_step_rps:,.0f} req/s at {s.largest_step_at_s:g} s; SLO met again after {rec}")
    lines.append(f"simulated in {s.elapsed_s:.1f} s")
    lines += [f"warning: {w}" for w in s.warnings]
    return lines


def table_lines(result: DayResult) -> list[str]:
    h = hourly(result)
    out = [f"{'hour':>4} {'offered/s':>10} {'ready':>7} {'starting':>8} {'util':>5} {'p99 max ms':>10} {'unstable':>8} {'SLO met':>7}"]
    for r in h.itertuples():
        ready = f"{r.ready_min}" if r.ready_min == r.ready_max else f"{r.ready_min}-{r.ready_max}"
        out.append(f"{r.hour:>4} {r.offered_rps:>10,.0f} {ready:>7} {r.starting_max:>8} {r.utilization:>5.2f} "
                   f"{_num(r.p99_max_ms, '.2f'):>10} {r.unstable:>8} {r.meets_slo:>7.0%}")
    return out


def summary_json(result: DayResult, meta: dict) -> str:
    data = {**meta, **result.summary.to_dict()}
    return json.dumps(data, separators=(",", ":"), default=lambda v: None)


def sweep_json(swept, result: DayResult, meta: dict) -> str:
    """The policy sweep as one JSON object: the explanation, the chosen day's summary, every policy."""
    data = {**meta, "explanation": swept.explanation,
            "chosen": result.summary.to_dict() if swept.chosen is not None else None,
            "policies": json.loads(swept.table.to_json(orient="records"))}
    return json.dumps(data, separators=(",", ":"), default=lambda v: None)


def day_lines(result: DayResult, swept, slo_text: str) -> list[str]:
    """What ``simlat day`` prints: the sweep (if any), the day's numbers and the hourly table."""
    lines = [] if swept is None else sweep_lines(swept) + [""]
    return lines + summary_lines(result, slo_text) + [""] + table_lines(result)


def sweep_lines(swept) -> list[str]:
    """The policy sweep: the choice explained, then one line per policy (cheapest first)."""
    t = swept.table
    cost = "cost_usd" if t["cost_usd"].notna().all() else "replica_hours"
    out = list(swept.explanation) + ["", f"{'policy':<48} {'compliance':>10} {'req. share':>10} {'rep-hours':>9} {'cost $':>9}  why"]
    for r in t.sort_values(cost, kind="mergesort").itertuples():
        mark = "*" if r.chosen else " "
        out.append(f"{mark}{r.policy:<47} {r.compliance:>10.3%} {r.slo_requests_share:>10.3%} {r.replica_hours:>9.1f} "
                   f"{_num(r.cost_usd, ',.2f'):>9}  {r.reason}")
    return out
