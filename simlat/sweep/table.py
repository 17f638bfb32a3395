"""The sweep as a table a planner can take away: one row per configuration, the swept parameters as
columns (by their dotted paths), then the results; written as Parquet, CSV or JSON, and a compact
top-N for the terminal.

The result columns come from :data:`COLUMNS` (name, meaning); an interval is a ``*_lo_ms`` /
``*_hi_ms`` pair beside its estimate, so a new kind of interval is two more entries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS: list[tuple[str, str]] = [
    ("label", "short name of the configuration"),
    ("device", "device it runs on"),
    ("replicas", "replicas in the fleet"),
    ("gpus", "GPUs in all, with colocated models (instances share them; the cost counts these)"),
    ("cost_per_hour", "USD per hour"),
    ("max_rate_rps", "highest arrival rate meeting the SLO (req/s)"),
    ("limit", "what bounds max_rate_rps: slo, stability, capacity, high_rps, not_searched, none"),
    ("headroom", "max_rate_rps / target rate - 1"),
    ("stable", "stable (not overloaded) at the target rate"),
    ("meets_slo", "meets the SLO at the target rate with the sweep's confidence"),
    ("slo_estimate_ms", "SLO percentile at the target rate"),
    ("slo_lo_ms", "its confidence interval, low end (simulation)"),
    ("slo_hi_ms", "its confidence interval, high end (simulation)"),
    ("pi_lo_ms", "90% prediction interval of the SLO percentile for a real run, low end (NaN: no serving profile)"),
    ("pi_hi_ms", "90% prediction interval, high end (simulation, calibration, run-to-run and fit spread)"),
    ("slo_met_probability", "probability the SLO is met at the target rate (from the prediction interval when a serving profile is measured)"),
    ("p50_ms", "median latency at the target rate"),
    ("p99_ms", "p99 latency at the target rate"),
    ("p99_lo_ms", "p99 confidence interval, low end"),
    ("p99_hi_ms", "p99 confidence interval, high end"),
    ("p999_ms", "p99.9 latency at the target rate"),
    ("utilization", "mean replica utilisation at the target rate"),
    ("mean_batch_size", "mean requests per batch at the target rate"),
    ("drop_rate", "share of requests dropped at the target rate"),
    ("hit_ratio", "cache hit ratio of lookups (with a cache)"),
    ("pareto", "on the cost / latency / throughput frontier"),
    ("chosen", "the recommended configuration"),
    ("reason", "why it was not chosen (or 'chosen')"),
    ("requests_simulated", "requests simulated for this configuration"),
    ("note", "search or simulator notes"),
    ("config_id", "stable hash of the configuration"),
]
TENANT_SUFFIXES = ("_p50_ms", "_p99_ms", "_p99_lo_ms", "_p99_hi_ms", "_meets_slo")
"""Columns of each colocated model (prefixed by its name), after :data:`COLUMNS`."""


def sweep_table(result) -> pd.DataFrame:
    """One row per configuration: parameters, then :data:`COLUMNS` present, then experiment, seed and
    simlat version (so a file read later says where it came from)."""
    pts = result.points
    df = pd.DataFrame(index=pts.index)
    for p in result.params:
        if p in pts.columns:
            df[p] = pts[p]
    for name, _ in COLUMNS:
        if name == "chosen":
            df[name] = pts["config_id"].astype(str) == str(result.chosen) if "config_id" in pts.columns else False
        elif name in pts.columns and name not in df.columns:
            df[name] = pts[name]
    for name in pts.columns:  # colocated models: <name>_p50_ms, <name>_p99_ms (+ _lo/_hi), <name>_meets_slo
        if name not in df.columns and name.endswith(TENANT_SUFFIXES):
            df[name] = pts[name]
    df["experiment"] = result.experiment_name
    df["seed"] = getattr(result, "seed", None)
    df["simlat_version"] = getattr(result, "simlat_version", "")
    return df.reset_index(drop=True)


def write_table(result, path: str | Path) -> Path:
    """Write :func:`sweep_table` by the file's suffix (.parquet, .csv, .json); any other is refused."""
    from simlat.outputs import write_frame

    return write_frame(sweep_table(result), Path(path), "--table")


def top_rows(result, n: int = 10) -> pd.DataFrame:
    """The ``n`` configurations a planner looks at first: the chosen one, the rest meeting every
    constraint by cost then headroom, then the closest misses."""
    df = sweep_table(result)
    if df.empty:
        return df
    rank = df["reason"].map(lambda r: 0 if r == "chosen" else 1 if str(r).startswith("meets every") else
                            2 if str(r).startswith("headroom") else 3)
    cost = df["cost_per_hour"] if "cost_per_hour" in df.columns else df["replicas"]
    order = pd.DataFrame({"rank": rank, "cost": cost.fillna(float("inf")),
                          "neg_h": -df["headroom"].fillna(-float("inf")),
                          "hi": df["slo_hi_ms"].fillna(float("inf"))})
    idx = order.sort_values(["rank", "cost", "neg_h", "hi"], kind="mergesort").index[:n]
    return df.loc[idx]


def _num(v, fmt: str) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if f != f or f in (float("inf"), float("-inf")) else fmt.format(f)


def print_top(result, n: int = 10, console=None) -> None:
    """A compact table of :func:`top_rows` on the terminal (no wrapping mid-cell when piped)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 200)
    df = top_rows(result, n)
    if df.empty:
        return
    pct = f"p{float(result.slo_percentile):g}"
    table = Table(title=f"{result.experiment_name}: top {len(df)} of {len(result.points)} configurations", title_justify="left")
    for col in ("configuration", "$/h", "max rate/s", "limit", "headroom", f"{pct} ms [95% CI]", "why not chosen"):
        table.add_column(col, no_wrap=col != "why not chosen", overflow="fold")
    for _, r in df.iterrows():
        ci = f"{_num(r.get('slo_estimate_ms'), '{:.2f}')} [{_num(r.get('slo_lo_ms'), '{:.2f}')}, {_num(r.get('slo_hi_ms'), '{:.2f}')}]"
        table.add_row(
            str(r["label"]),
            _num(r.get("cost_per_hour"), "{:,.2f}"),
            _num(r.get("max_rate_rps"), "{:,.0f}"),
            str(r.get("limit", "")),
            _num(r.get("headroom"), "{:.1%}"),
            ci if bool(r.get("stable", True)) else "unstable",
            "-" if r["reason"] == "chosen" else str(r["reason"]),
            style="bold green" if r["reason"] == "chosen" else None,
        )
    console.print(table)
