"""``simlat compare A B``: two runs or two sweeps side by side.

Runs are the JSON objects ``simlat simulate --json`` prints; sweeps are the tables ``simlat sweep
--table`` writes (.parquet, .csv or .json, one row per configuration). Sweeps are matched on their
shared parameter columns (the columns before ``label``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from simlat.errors import SimlatError

RUN_FIELDS = ("p50_ms", "p99_ms", "p999_ms", "mean_ms", "throughput_rps", "goodput_rps", "drop_rate",
              "slo_estimate_ms", "slo_met_probability", "stable", "requests")
SWEEP_FIELDS = ("max_rate_rps", "limit", "headroom", "slo_estimate_ms", "slo_hi_ms", "p99_ms", "cost_per_hour",
                "meets_slo", "chosen")


def read(path: Path) -> tuple[str, object]:
    """("run", dict) or ("sweep", DataFrame)."""
    path = Path(path)
    if not path.is_file():
        raise SimlatError(f"{path}: no such file (compare takes simulate --json outputs or sweep --table files)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return "sweep", pd.read_parquet(path)
        if suffix == ".csv":
            return "sweep", pd.read_csv(path)
        data = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise SimlatError(f"{path}: cannot be read ({err})") from None
    if isinstance(data, dict):
        return "run", data
    if isinstance(data, list):
        return "sweep", pd.DataFrame(data)
    raise SimlatError(f"{path}: neither a run (a JSON object) nor a sweep table (a list of rows)")


def _params(df: pd.DataFrame) -> list[str]:
    cols = list(df.columns)
    return cols[: cols.index("label")] if "label" in cols else []


def compare_runs(a: dict, b: dict) -> pd.DataFrame:
    """One row per figure: A, B, B - A and B / A - 1."""
    rows = []
    for f in ("experiment", "seed", "simlat_version", *RUN_FIELDS):
        if f not in a and f not in b:
            continue
        va, vb = a.get(f), b.get(f)
        delta = rel = None
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
            delta = vb - va
            rel = vb / va - 1 if va else None
        rows.append({"field": f, "A": va, "B": vb, "B - A": delta, "B / A - 1": rel})
    return pd.DataFrame(rows)


def compare_sweeps(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Configurations matched on the shared parameter columns, with ``_A`` / ``_B`` result columns
    (configurations in only one sweep have blanks on the other side)."""
    keys = [p for p in _params(a) if p in _params(b)]
    if not keys:
        raise SimlatError("the two sweeps share no parameter column to match configurations on")
    fields = [f for f in SWEEP_FIELDS if f in a.columns or f in b.columns]
    left = a[keys + [f for f in fields if f in a.columns]].copy()
    right = b[keys + [f for f in fields if f in b.columns]].copy()
    for df in (left, right):
        df[keys] = df[keys].astype(str)
    out = left.merge(right, on=keys, how="outer", suffixes=("_A", "_B"))
    if "max_rate_rps_A" in out.columns and "max_rate_rps_B" in out.columns:
        out["max_rate_change"] = out["max_rate_rps_B"] / out["max_rate_rps_A"] - 1
    return out


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def print_frame(df: pd.DataFrame, title: str, console=None, limit: int = 40) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=title, title_justify="left")
    for c in df.columns:
        table.add_column(str(c), no_wrap=True)
    for _, r in df.head(limit).iterrows():
        table.add_row(*(_cell(v) for v in r))
    console.print(table)
    if len(df) > limit:
        console.print(f"({len(df) - limit} more rows; write them with --out)")
