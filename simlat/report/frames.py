"""Chart data: small, clean tables derived from a :class:`~simlat.sweep.result.SweepResult`.

Pure functions only (no I/O). Swept parameters have dotted names (``batching.max_batch_size``),
which Vega-Lite would read as nested fields, so chart data carries them under safe column names
(:func:`safe_name`). Infinite values (an overloaded point's percentile) become NaN (null in the
chart) and are left out of latency axes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simlat.sweep.result import SweepResult

# Latency decomposition: (points column and chosen_decomposition_ms key, label shown), in stacking
# order; the names are simlat.metrics.DECOMPOSITION's.
COMPONENTS: list[tuple[str, str]] = [
    ("queue_wait_ms", "queue"),
    ("batch_wait_ms", "batch wait"),
    ("service_ms", "compute"),
    ("cache_ms", "cache"),
    ("overhead_ms", "overhead"),
]

BATCH_SIZE_KEYS = ("max_batch_size",)
WAIT_KEYS = ("max_wait_ms",)
HIT_RATIO_COLUMNS = ("hit_ratio", "cache_hit_ratio")


def safe_name(param: str) -> str:
    """A column name Vega-Lite reads literally: ``batching.max_batch_size -> batching__max_batch_size``."""
    return "".join(c if c.isalnum() or c == "_" else "__" if c == "." else "_" for c in param)


def display_value(value: Any) -> Any:
    """A chart-friendly scalar for a swept value (numbers stay numbers, the rest becomes text)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return value
    if isinstance(value, dict):
        return value.get("kind", str(value))
    return str(value)


def value_key(value: Any) -> tuple:
    """A comparable key for a swept value: 8, 8.0 and np.int64(8) are equal; text compares as text."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ("none",)
    if isinstance(value, bool | np.bool_):
        return ("b", bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return ("n", float(value))
    return ("s", str(display_value(value)))


def flags(values: pd.Series) -> pd.Series:
    """A boolean column with missing values (None, NaN) as False."""
    return values.map(lambda v: False if pd.api.types.is_scalar(v) and pd.isna(v) else bool(v)).astype(bool)


def has_values(df: pd.DataFrame, field: str) -> bool:
    """Whether ``field`` has at least one finite positive value (else a chart axis has no extent)."""
    if field not in df.columns:
        return False
    v = pd.to_numeric(df[field], errors="coerce")
    return bool(((v > 0) & (v < np.inf)).any())


def clean_points(result: SweepResult) -> pd.DataFrame:
    """``result.points`` with +-inf as NaN, swept parameters under :func:`safe_name` columns."""
    df = result.points.copy()
    df = df.replace([np.inf, -np.inf], np.nan)
    for p in result.params:
        if p in df.columns:
            values = df.pop(p)  # the dotted name leaves the chart data: Vega-Lite would read it as nesting
            df[safe_name(p)] = values.map(display_value)
    if "label" not in df.columns:
        df["label"] = df["config_id"].astype(str)
    return df


def _float(row: pd.Series, col: str) -> float:
    v = row.get(col, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def reference_id(result: SweepResult) -> str | None:
    """The configuration the single-point charts describe: the chosen one, else the closest to the SLO.

    "Closest" is the stable configuration with the lowest upper CI bound of the SLO percentile at the
    target rate (None for an empty sweep).
    """
    pts = result.points
    if result.chosen is not None and result.chosen in set(pts.get("config_id", [])):
        return result.chosen
    if pts.empty:
        return None
    df = clean_points(result)
    if "stable" in df.columns:
        stable = df[flags(df["stable"])]
        df = stable if not stable.empty else df
    col = next((c for c in ("slo_hi_ms", "slo_estimate_ms", "p99_ms") if c in df.columns and df[c].notna().any()), None)
    if col is None:
        return str(df.iloc[0]["config_id"])
    return str(df.loc[df[col].idxmin(), "config_id"])


def highlighted_ids(result: SweepResult, limit: int = 8, stable_only: bool = False) -> list[str]:
    """Configurations worth a line of their own: the chosen one, then the Pareto frontier by cost.

    With no Pareto column, the configurations with the highest sustainable rate. At most ``limit``;
    ``stable_only``: only configurations stable at the target rate.
    """
    df = clean_points(result)
    ids: list[str] = []
    ref = reference_id(result)
    if ref is not None:
        ids.append(ref)
    if "pareto" in df.columns:
        front = df[flags(df["pareto"])]
        sort_col = "cost_per_hour" if "cost_per_hour" in front.columns else "config_id"
        ids += [str(c) for c in front.sort_values(sort_col)["config_id"]]
    if len(ids) < 2 and "max_rate_rps" in df.columns:
        ids += [str(c) for c in df.sort_values("max_rate_rps", ascending=False)["config_id"]]
    stable = set(df.loc[flags(df["stable"]), "config_id"].astype(str)) if "stable" in df.columns else None
    out: list[str] = []
    for cid in ids:
        if cid not in out and (not stable_only or stable is None or cid in stable):
            out.append(cid)
    return out[:limit]


def load_curve_frame(result: SweepResult, ids: list[str]) -> pd.DataFrame:
    """Rate-search points of ``ids``, stable ones only, with labels; columns of ``load_curves`` plus ``label``."""
    lc = result.load_curves.replace([np.inf, -np.inf], np.nan)
    if lc.empty:
        return lc.assign(label=pd.Series(dtype=str))
    lc = lc[lc["config_id"].astype(str).isin(ids)]
    if "stable" in lc.columns:
        lc = lc[flags(lc["stable"])]
    lc = lc[lc["slo_estimate_ms"].notna() & (lc["slo_estimate_ms"] > 0)]
    labels = clean_points(result).set_index("config_id")["label"]
    lc = lc.assign(label=lc["config_id"].map(labels).fillna(lc["config_id"].astype(str)))
    order = {cid: i for i, cid in enumerate(ids)}
    lc = lc.assign(order=lc["config_id"].map(order))
    return lc.sort_values(["order", "rate_rps"]).reset_index(drop=True)


def pareto_frame(result: SweepResult) -> pd.DataFrame:
    """Stable configurations with a finite SLO percentile at the target rate, flagged for the chart.

    Adds ``verdict`` ("meets SLO" / "misses SLO"), ``is_chosen`` and ``frontier`` (on the 2-D
    cost vs latency frontier: no other point is both cheaper-or-equal and faster-or-equal).
    """
    df = clean_points(result)
    if "stable" in df.columns:
        df = df[flags(df["stable"])]
    df = df[df["slo_estimate_ms"].notna() & (df["slo_estimate_ms"] > 0) & df["cost_per_hour"].notna()].copy()
    meets = flags(df["meets_slo"]) if "meets_slo" in df.columns else df["slo_hi_ms"] <= result.slo_latency_ms
    df["verdict"] = np.where(meets, "meets SLO", "misses SLO")
    df["is_chosen"] = df["config_id"].astype(str) == str(result.chosen)
    frontier = np.zeros(len(df), dtype=bool)
    cost = df["cost_per_hour"].to_numpy(float)
    lat = df["slo_estimate_ms"].to_numpy(float)
    for i in range(len(df)):
        dominated = (cost <= cost[i]) & (lat <= lat[i]) & ((cost < cost[i]) | (lat < lat[i]))
        frontier[i] = not dominated.any()
    df["frontier"] = frontier
    return df.reset_index(drop=True)


def cdf_frame(latencies_ms: np.ndarray, max_nines: float = 4.0, n_levels: int = 400) -> pd.DataFrame:
    """Empirical quantiles on a grid dense in the tail.

    Columns ``quantile``, ``nines`` (= -log10(1 - quantile), the tail-stretched axis) and
    ``latency_ms``. The grid stops where the sample runs out (``1 - 1/n``) or at ``max_nines``.
    """
    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[np.isfinite(lat)]
    if lat.size < 2:
        return pd.DataFrame({"quantile": [], "nines": [], "latency_ms": []})
    top = min(max_nines, math.log10(lat.size))
    nines = np.linspace(0.0, top, n_levels)
    q = 1.0 - 10.0 ** (-nines)
    return pd.DataFrame({"quantile": q, "nines": nines, "latency_ms": np.quantile(lat, q)})


def decomposition_frame(result: SweepResult, ids: list[str]) -> pd.DataFrame:
    """Long table ``label, component, component_ms, order`` of mean latency parts per configuration.

    The chosen configuration uses ``chosen_decomposition_ms`` when filled, else its ``points`` row.
    """
    df = clean_points(result).set_index("config_id")
    rows = []
    for rank, cid in enumerate(ids):
        if cid not in df.index:
            continue
        row = df.loc[cid]
        name = str(row["label"])
        if cid == result.chosen:
            name = "chosen: " + name
        for order, (col, label) in enumerate(COMPONENTS):
            val = None
            if cid == result.chosen and col in result.chosen_decomposition_ms:
                val = float(result.chosen_decomposition_ms[col])
            if val is None and col in df.columns:
                val = _float(row, col)
            if val is None or not math.isfinite(val):
                continue
            rows.append({"label": name, "rank": rank, "component": label, "component_ms": max(val, 0.0), "order": order})
    return pd.DataFrame(rows, columns=["label", "rank", "component", "component_ms", "order"])


def batch_hist_frame(hist: dict[int, int]) -> pd.DataFrame:
    """``batch_size, batches, share`` sorted by batch size (sizes with no batches left out)."""
    items = sorted((int(k), int(v)) for k, v in hist.items() if int(v) > 0)
    df = pd.DataFrame(items, columns=["batch_size", "batches"])
    total = df["batches"].sum()
    df["share"] = df["batches"] / total if total else 0.0
    return df


def find_param(result: SweepResult, leaf_names: tuple[str, ...]) -> str | None:
    """The swept parameter whose last dotted part is one of ``leaf_names`` and that takes >1 value."""
    for p in result.params:
        if p.rsplit(".", 1)[-1] in leaf_names and p in result.points.columns:
            if result.points[p].map(value_key).nunique() > 1:
                return p
    return None


def slice_frame(result: SweepResult, vary: list[str]) -> pd.DataFrame:
    """Configurations equal to the reference one in every swept parameter except ``vary``."""
    df = clean_points(result)
    ref = reference_id(result)
    if ref is None:
        return df.iloc[0:0]
    ref_row = result.points[result.points["config_id"].astype(str) == ref].iloc[0]
    mask = np.ones(len(df), dtype=bool)
    for p in result.params:
        if p in vary or p not in result.points.columns:
            continue
        mask &= (result.points[p].map(value_key) == value_key(ref_row[p])).to_numpy()
    return df[mask].reset_index(drop=True)


def fixed_settings(result: SweepResult, vary: list[str]) -> str:
    """``"replicas=4 variant=bf16"``: the reference configuration's other swept values, for subtitles."""
    ref = reference_id(result)
    if ref is None:
        return ""
    row = result.points[result.points["config_id"].astype(str) == ref].iloc[0]
    parts = [f"{p.rsplit('.', 1)[-1]}={display_value(row[p])}" for p in result.params if p not in vary and p in row]
    return " ".join(parts)


def heatmap_frame(result: SweepResult) -> tuple[pd.DataFrame | None, str]:
    """p99 over max_batch_size x max_wait_ms, other parameters held at the reference configuration.

    Returns (frame with ``max_batch_size, max_wait_ms`` and the points columns, note); the frame is
    None when the two were not both swept.
    """
    bs, wait = find_param(result, BATCH_SIZE_KEYS), find_param(result, WAIT_KEYS)
    if bs is None or wait is None:
        missing = " and ".join(n for n, p in (("max_batch_size", bs), ("max_wait_ms", wait)) if p is None)
        return None, f"Not drawn: {missing} took a single value in this sweep."
    df = slice_frame(result, [bs, wait])
    df = df.assign(
        max_batch_size=pd.to_numeric(df[safe_name(bs)], errors="coerce"),
        max_wait_ms=pd.to_numeric(df[safe_name(wait)], errors="coerce"),
    )
    df = df[df["max_batch_size"].notna() & df["max_wait_ms"].notna()]  # e.g. a case without batching
    fixed = fixed_settings(result, [bs, wait])
    return df, (f"Other settings as in the reference configuration: {fixed}." if fixed else "")


def cache_param(result: SweepResult) -> str | None:
    """The swept cache-size parameter (``cache.l1.capacity``, ``cache.l2.capacity``...), or None."""
    for p in result.params:
        parts = p.split(".")
        if parts[0] == "cache" and parts[-1] == "capacity" and p in result.points.columns:
            if result.points[p].map(value_key).nunique() > 1:
                return p
    return None


def replicas_param(result: SweepResult) -> str | None:
    """The swept replica count (``fleet.replicas``), or None."""
    return find_param(result, ("replicas",))


def cache_frame(result: SweepResult, hit_ratios: pd.DataFrame | None = None) -> tuple[pd.DataFrame | None, str]:
    """Per cache capacity: hit ratio, SLO percentile with CI, and the replicas needed for the SLO.

    The hit ratio comes from the sweep's ``hit_ratio`` column; without one, from ``hit_ratios``
    (columns ``capacity, hit_ratio`` and optionally ``che_hit_ratio``: a replay of the key stream).

    Other parameters are held at the reference configuration. "Replicas needed" is the fewest
    replicas meeting the SLO at that capacity when replicas were swept too (NaN when none meets it);
    otherwise ``ceil(target rate / per-replica sustainable rate)`` from ``max_rate_rps`` (an
    estimate assuming the fleet scales linearly), which the note says.
    """
    cp = cache_param(result)
    if cp is None:
        return None, "Not drawn: no cache capacity was swept."
    hit_col = next((c for c in HIT_RATIO_COLUMNS if c in result.points.columns), None)
    if hit_col is None and hit_ratios is None:
        return None, f"Not drawn: the sweep results have no hit-ratio column ({' or '.join(HIT_RATIO_COLUMNS)})."
    rp = replicas_param(result)
    df = slice_frame(result, [cp]).copy()
    df["capacity"] = pd.to_numeric(df[safe_name(cp)], errors="coerce")
    df = df[df["capacity"] > 0]  # log axis; a configuration without the cache has no capacity
    notes = []
    if hit_col is not None:
        df["hit_ratio"] = df[hit_col].astype(float)
    else:
        assert hit_ratios is not None
        by_cap = hit_ratios.assign(capacity=hit_ratios["capacity"].astype(float)).set_index("capacity")
        for col in ("hit_ratio", "che_hit_ratio"):
            if col in by_cap.columns:
                df[col] = df["capacity"].map(by_cap[col]).astype(float)
        notes.append("Hit ratio: the experiment's key stream replayed through the cache at each capacity.")
    if "che_hit_ratio" in df.columns and df["che_hit_ratio"].notna().any():
        df["che_hit_ratio"] = df["che_hit_ratio"].astype(float)
    else:
        df = df.drop(columns=["che_hit_ratio"], errors="ignore")
    if rp is not None:
        wide = slice_frame(result, [cp, rp])
        meets = wide[flags(wide["meets_slo"])] if "meets_slo" in wide.columns else wide.iloc[0:0]
        need = meets.assign(cap=pd.to_numeric(meets[safe_name(cp)], errors="coerce")).groupby("cap")["replicas"].min()
        df["replicas_needed"] = df["capacity"].map(need).astype(float)
        notes.append("Replicas needed: the fewest swept replicas meeting the SLO at each capacity.")
    else:
        per_replica = df["max_rate_rps"].astype(float) / df["replicas"].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.ceil(result.target_rate_rps / per_replica.to_numpy())
        df["replicas_needed"] = np.where(np.isfinite(need) & (need > 0), need, np.nan)
        notes.append(
            "Replicas needed: estimated as target rate / (max sustainable rate per replica), "
            "assuming the fleet scales linearly; replicas were not swept."
        )
    fixed = fixed_settings(result, [cp] + ([rp] if rp else []))
    if fixed:
        notes.append(f"Other settings as in the reference configuration: {fixed}.")
    return df.sort_values("capacity").reset_index(drop=True), " ".join(notes)
