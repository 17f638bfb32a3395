"""The report's sections, in order: each a chart (or the reason it is left out) and a caption.

Pure: turns a :class:`~simlat.sweep.result.SweepResult` into :class:`Section` objects; the writer
renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import altair as alt

from simlat.report import charts, frames
from simlat.report.calibration import profile_frame
from simlat.report.specs import percentile_name
from simlat.sweep.result import SweepResult

if TYPE_CHECKING:
    pass


@dataclass
class Section:
    """One chart of the report: ``key`` names its container and image file; ``chart`` is None when
    the data for it is missing, and ``notes`` then says why."""

    key: str
    title: str
    chart: alt.TopLevelMixin | None
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def _chosen_text(result: SweepResult) -> str:
    return "the chosen configuration" if result.chosen else "the configuration closest to the SLO (none meets it)"


def calibration_section(result: SweepResult) -> Section:
    """Latency vs batch size per variant, from the calibration profiles."""
    title = "Calibration: latency vs batch size"
    if not result.profiles:
        return Section("calibration", title, None, notes=["No calibration profiles were used by this sweep."])
    used = set(getattr(result, "services", None) or []) or None
    df, notes = profile_frame(list(result.profiles), used)
    if used:
        shown = ", ".join(sorted({f"{m}/{v}" for _, m, v in used}))
        notes = [n for n in notes if "was skipped in calibration" not in n] + [f"Variants the sweep uses: {shown}."]
    if df.empty:
        return Section("calibration", title, None, notes=notes + ["No readable steady-state measurements."])
    return Section(
        "calibration",
        title,
        charts.calibration_chart(df),
        "What one replica measured: the service time of a whole batch. Flat lines mean batching is "
        "nearly free; steep ones mean a larger batch mostly adds latency.",
        notes,
    )


def load_curve_section(result: SweepResult) -> Section:
    """SLO percentile vs offered load for the chosen and Pareto configurations."""
    name = percentile_name(result.slo_percentile)
    title = f"{name} vs offered load"
    ids = frames.highlighted_ids(result)
    df = frames.load_curve_frame(result, ids)
    if df.empty:
        return Section("load_curves", title, None, notes=["The sweep recorded no stable load-curve points."])
    shown = df["config_id"].nunique()
    total = result.points["config_id"].nunique()
    on_front = int(frames.flags(result.points["pareto"]).sum()) if "pareto" in result.points.columns else 0
    front = "the Pareto frontier" if on_front <= len(ids) - 1 else f"the cheapest {len(ids) - 1} of the {on_front} on the Pareto frontier"
    sub = [
        f"{shown} of {total} configurations: {_chosen_text(result)} and {front}.",
        "Bands: 95% CI. Overloaded (unstable) rates are not drawn.",
    ]
    return Section(
        "load_curves",
        title,
        charts.load_curve_chart(df, result.slo_latency_ms, result.target_rate_rps, result.slo_percentile, sub),
        load_curve_caption(result, df),
    )


def load_curve_caption(result: SweepResult, df) -> str:
    """Whether the drawn lines reach the SLO line, and what bounds their max rate, from the data."""
    drawn = list(dict.fromkeys(df["config_id"].astype(str)))
    crosses = {cid for cid in drawn if (df.loc[df["config_id"].astype(str) == cid, "slo_hi_ms"] > result.slo_latency_ms).any()}
    pts = result.points.set_index(result.points["config_id"].astype(str))
    limits = pts.loc[[c for c in drawn if c in pts.index], "limit"].value_counts() if "limit" in pts.columns else None
    text = "The grey line marks the target rate. "
    if crosses:
        text += (f"{len(crosses)} of the {len(drawn)} lines reach the red SLO line: there the SLO binds the load that "
                 "configuration sustains. ")
    else:
        text += "None of these lines reaches the red SLO line within the rates searched. "
    if limits is not None and len(limits):
        words = {"slo": "the SLO", "stability": "overload", "capacity": "the fleet's estimated capacity",
                 "high_rps": "rate_search.high_rps", "steps": "the search's step limit"}
        text += "Max rates bound by " + ", ".join(f"{words.get(k, k)} ({n})" for k, n in limits.items() if k in words) + "."
    return text


def pareto_section(result: SweepResult) -> Section:
    """Cost vs SLO percentile at the target rate."""
    title = "Cost vs latency"
    df = frames.pareto_frame(result)
    if df.empty:
        return Section("pareto", title, None, notes=["No configuration was stable at the target rate."])
    dropped = result.points["config_id"].nunique() - len(df)
    sub = [f"At {result.target_rate_rps:,.0f} req/s; horizontal bars: 95% CI of the {percentile_name(result.slo_percentile)}; black line: cheapest latency at each price."]
    if dropped:
        sub.append(f"{dropped} configuration(s) unstable at the target rate are not drawn.")
    return Section(
        "pareto",
        title,
        charts.pareto_chart(df, result.slo_latency_ms, result.slo_percentile, result.target_rate_rps, sub),
        pareto_caption(result),
    )


def pareto_caption(result: SweepResult) -> str:
    """What green means and how the operating point relates to the green points, from the sweep's settings."""
    text = "Green points meet the SLO with at least 95% confidence at the target rate"
    h = getattr(result, "min_headroom", 0.0) or 0.0
    if result.chosen is None:
        return text + "; none was chosen."
    if h > 0:
        return (text + f"; the operating point is the cheapest of them with at least {h:.0%} headroom, so cheaper "
                "green points can lose on headroom (see 'Why this choice').")
    return text + "; the operating point is the cheapest of them."


def cdf_section(result: SweepResult) -> Section:
    """Latency CDF at the chosen point (the quantiles its search kept; nothing is re-simulated)."""
    title = "Latency distribution"
    q = getattr(result, "chosen_quantiles", None)
    if q is not None and len(q) >= 2:
        df, n = q, result.chosen_requests
    else:
        lat = result.chosen_latencies_ms
        if lat is None or len(lat) < 2:
            why = "no configuration was chosen" if result.chosen is None else "the sweep kept no latencies for the chosen point"
            return Section("cdf", title, None, notes=[f"Not drawn: {why}."])
        df, n = frames.cdf_frame(lat), len(lat)
    sub = f"{n:,} simulated requests at {result.target_rate_rps:,.0f} req/s."
    return Section("cdf", title, charts.cdf_chart(df, result.slo_latency_ms, result.slo_percentile, sub),
                   "Read across at a percentile to get its latency; the tail is stretched so p99 and p99.9 are visible.")


def decomposition_section(result: SweepResult) -> Section:
    """Mean latency decomposition for the chosen and Pareto configurations."""
    title = "Latency decomposition"
    df = frames.decomposition_frame(result, frames.highlighted_ids(result, stable_only=True))
    if df.empty:
        return Section(
            "decomposition", title, None,
            notes=["Not drawn: no configuration was stable at the target rate (an overloaded queue has no mean)."],
        )
    return Section(
        "decomposition",
        title,
        charts.decomposition_chart(df, f"At {result.target_rate_rps:,.0f} req/s, mean milliseconds per request."),
        "Queue: waiting for a free replica; batch wait: waiting for the batch to fill; compute: the model; "
        "cache: lookups; overhead: network and serialization.",
    )


def batch_hist_section(result: SweepResult) -> Section:
    """Batch sizes formed at the chosen point."""
    title = "Batch sizes"
    if not result.chosen_batch_hist:
        return Section("batch_sizes", title, None, notes=["Not drawn: no batch-size histogram for the chosen point."])
    df = frames.batch_hist_frame(result.chosen_batch_hist)
    return Section("batch_sizes", title, charts.batch_hist_chart(df, f"{int(df['batches'].sum()):,} batches."),
                   batch_caption(result, df))


def batch_caption(result: SweepResult, df) -> str:
    """What the histogram says, from its numbers: mean size, share of full batches, and what limits."""
    total = df["batches"].sum()
    if not total:
        return ""
    mean = float((df["batch_size"] * df["batches"]).sum() / total)
    row = result.points[result.points["config_id"].astype(str) == str(result.chosen)]
    col = next((p for p in result.params if p.endswith("max_batch_size")), None)
    limit = None
    if col is not None and len(row):
        limit = int(row.iloc[0][col])
    elif getattr(result, "chosen_max_batch", None):
        limit = int(result.chosen_max_batch)
    if limit is None:
        return f"Mean batch {mean:.1f} requests; the largest batch formed held {int(df['batch_size'].max())}."
    full = float(df.loc[df["batch_size"] >= limit, "batches"].sum() / total)
    text = f"Mean batch {mean:.1f} requests; {full:.0%} of batches were full (max batch {limit})."
    if full < 0.5:
        text += " Most batches close on max wait or on a free replica, not on size: max batch size does not limit batching at this load."
    else:
        text += " Most batches fill: max batch size limits batching at this load."
    return text


def heatmap_section(result: SweepResult) -> Section:
    """max_batch_size x max_wait_ms heatmap of the SLO percentile."""
    title = "Batching parameters"
    df, note = frames.heatmap_frame(result)
    if df is None or df.empty:
        return Section("heatmap", title, None, notes=[note or "Not drawn: no matching configurations."])
    if not frames.has_values(df, "slo_estimate_ms"):
        return Section("heatmap", title, None, notes=[f"Not drawn: every cell is overloaded at the target rate. {note}"])
    return Section("heatmap", title, charts.heatmap_chart(df, result.slo_latency_ms, result.slo_percentile, note),
                   "Colours turn from green to red as the latency passes the SLO (yellow is at the SLO); 'unstable' cells are overloaded at the target rate.")


def cache_section(result: SweepResult) -> Section:
    """Hit ratio, latency and replicas needed vs cache capacity, from the sweep's ``hit_ratio`` column."""
    title = "Cache capacity"
    df, note = frames.cache_frame(result)
    if df is None or df.empty:
        return Section("cache", title, None, notes=[note or "Not drawn: no matching configurations."])
    return Section("cache", title, charts.cache_chart(df, result.slo_latency_ms, result.slo_percentile, note),
                   "A larger cache answers more requests without the model: lower latency and fewer replicas.")


BUILDERS = [
    calibration_section,
    load_curve_section,
    pareto_section,
    cdf_section,
    decomposition_section,
    batch_hist_section,
    heatmap_section,
]


def build_sections(result: SweepResult, experiment=None) -> list[Section]:
    """All sections in report order. Pure rendering of ``result``: ``experiment`` is accepted for
    compatibility and not used (the report never simulates)."""
    sections = [build(result) for build in BUILDERS]
    has_cache = frames.cache_param(result) is not None
    return sections + ([cache_section(result)] if has_cache else [])
