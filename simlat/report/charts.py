"""Chart builders: pure functions from a small table (see :mod:`simlat.report.frames`) to an Altair chart.

Every title, unit, scale and number format comes from the spec table
(:mod:`simlat.report.specs`). Builders do no I/O and keep no state: the same table gives the same
``chart.to_dict()``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import altair as alt
import pandas as pd

from simlat.report.frames import COMPONENTS, has_values
from simlat.report.specs import MetricSpec, percentile_name, spec

WIDTH = 620
HEIGHT = 320
SLO_COLOR = "#d62728"
TARGET_COLOR = "#555555"
VERDICT_COLORS = {"meets SLO": "#2ca02c", "misses SLO": "#d62728"}
COMPONENT_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d"]


def slo_spec(pct: float, field: str = "slo_estimate_ms", suffix: str = "latency") -> MetricSpec:
    """The spec of the SLO percentile columns, titled with the percentile (``p99 latency``)."""
    base = spec(field)
    name = percentile_name(pct)
    titles = {"slo_estimate_ms": f"{name} {suffix}", "slo_lo_ms": f"{name} CI low", "slo_hi_ms": f"{name} CI high"}
    return replace(base, title=titles.get(field, base.title))


def _title(text: str, subtitle: str | list[str] = "") -> alt.TitleParams:
    if subtitle:
        return alt.TitleParams(text, subtitle=subtitle, anchor="start", subtitleColor="#555")
    return alt.TitleParams(text, anchor="start")


def _tooltips(df: pd.DataFrame, fields: list[str | MetricSpec]) -> list[alt.Tooltip]:
    out = []
    for f in fields:
        s = f if isinstance(f, MetricSpec) else spec(f)
        if s.field not in df.columns:
            continue
        numeric = pd.api.types.is_numeric_dtype(df[s.field]) and not pd.api.types.is_bool_dtype(df[s.field])
        out.append(s.tooltip("quantitative" if numeric else "nominal"))
    return out


def _hrule(value: float, text: str, color: str = SLO_COLOR) -> alt.LayerChart:
    """A horizontal rule at ``y = value`` with its label, on its own one-row data."""
    data = pd.DataFrame({"y": [value], "text": [text]})
    base = alt.Chart(data)
    rule = base.mark_rule(color=color, strokeDash=[6, 4], strokeWidth=2).encode(
        y="y:Q", tooltip=alt.Tooltip("text:N", title="Line")
    )
    label = base.mark_text(align="left", baseline="bottom", dx=4, dy=-3, color=color, fontWeight="bold").encode(
        y="y:Q", x=alt.value(0), text="text:N"
    )
    return rule + label


def _vrule(
    value: float, text: str, color: str = SLO_COLOR, side: str = "right", bottom: float | None = None
) -> alt.LayerChart:
    """A vertical rule at ``x = value`` with its label on the ``side`` of the rule given, at the top,
    or at the bottom of a plot ``bottom`` pixels high (to keep clear of a label at the top)."""
    data = pd.DataFrame({"x": [value], "text": [text]})
    base = alt.Chart(data)
    rule = base.mark_rule(color=color, strokeDash=[6, 4], strokeWidth=2).encode(
        x="x:Q", tooltip=alt.Tooltip("text:N", title="Line")
    )
    align: Literal["left", "right"] = "left" if side == "right" else "right"
    dx = 4 if side == "right" else -4
    baseline: Literal["top", "bottom"] = "top" if bottom is None else "bottom"
    y: float = 0 if bottom is None else bottom
    dy = 4 if bottom is None else -4
    label = base.mark_text(align=align, baseline=baseline, dx=dx, dy=dy, color=color, fontWeight="bold").encode(
        x="x:Q", y=alt.value(y), text="text:N"
    )
    return rule + label


def calibration_chart(df: pd.DataFrame) -> alt.TopLevelMixin:
    """Measured batch latency vs batch size, one line per variant: median, band from p1 to p99.

    One panel per model when the profiles hold several (each with its own latency axis); a variant
    keeps its colour across panels.
    """
    x, med, p99, lo = spec("items"), spec("median_ms"), spec("p99_batch_ms"), spec("p01_ms")
    var = spec("variant_name")
    models = list(dict.fromkeys(df["model"])) if "model" in df.columns else []
    faceted = len(models) > 1
    base = alt.Chart() if faceted else alt.Chart(df)
    base = base.encode(
        x=alt.X(x.field, type="quantitative", title=x.axis_title, scale=x.alt_scale(base=2)),
        color=alt.Color(var.field, type="nominal", title=var.title, legend=alt.Legend(labelLimit=320)),
    )
    band = base.mark_area(opacity=0.15).encode(
        y=alt.Y(lo.field, type="quantitative", title="Batch latency (ms)", scale=med.alt_scale()),
        y2=alt.Y2(p99.field),
    )
    tips = _tooltips(df, ["variant", "items", "median_ms", "p99_batch_ms", "mean_ms", "n"])
    line = base.mark_line(point=True).encode(
        y=alt.Y(med.field, type="quantitative", title="Batch latency (ms)", scale=med.alt_scale()),
        tooltip=tips,
    )
    title = _title(
        "Calibration: batch latency vs batch size per variant",
        "Steady state (back-to-back batches). Line: median; band: p1 to p99 of the measured batch times.",
    )
    # the line layer first: the legend takes its symbol from the first layer, not the faint band
    if not faceted:
        return alt.layer(line, band).properties(width=WIDTH, height=HEIGHT, title=title)
    return (
        alt.layer(line, band, data=df)
        .properties(width=400, height=260)
        .facet(
            facet=alt.Facet("model:N", title=None, sort=models, header=alt.Header(labelFontSize=13, labelFontWeight="bold")),
            columns=2,
        )
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def load_curve_chart(
    df: pd.DataFrame, slo_ms: float, target_rps: float, pct: float, subtitle: str | list[str] = ""
) -> alt.TopLevelMixin:
    """SLO percentile vs offered load per configuration, with CI bands, the SLO line and the target rate."""
    x, y = spec("rate_rps"), slo_spec(pct)
    lo, hi = slo_spec(pct, "slo_lo_ms"), slo_spec(pct, "slo_hi_ms")
    order = list(dict.fromkeys(df["label"])) if "label" in df.columns else None
    color = alt.Color("label:N", title="Configuration", sort=order, legend=alt.Legend(labelLimit=360, orient="bottom", columns=1))
    base = alt.Chart(df).encode(x=alt.X(x.field, type="quantitative", title=x.axis_title), color=color)
    band = base.mark_area(opacity=0.18).encode(
        y=alt.Y(lo.field, type="quantitative", title=y.axis_title, scale=y.alt_scale()),
        y2=alt.Y2(hi.field),
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y(y.field, type="quantitative", title=y.axis_title, scale=y.alt_scale()),
        tooltip=_tooltips(df, ["label", "rate_rps", y, lo, hi, "p99_ms"]),
    )
    name = percentile_name(pct)
    return alt.layer(
        line,
        band,
        _hrule(slo_ms, f"SLO: {name} ≤ {slo_ms:g} ms"),
        _vrule(target_rps, f"target {target_rps:,.0f} req/s", TARGET_COLOR, bottom=HEIGHT),
    ).properties(
        width=WIDTH,
        height=HEIGHT,
        title=_title(f"{name} latency vs offered load", subtitle),
    )


def pareto_chart(
    df: pd.DataFrame, slo_ms: float, pct: float, target_rps: float, subtitle: str | list[str] = ""
) -> alt.TopLevelMixin:
    """Cost per hour vs the SLO percentile at the target rate: every stable configuration, the frontier
    (no configuration both cheaper and faster) as a step line, the chosen one ringed, the SLO line."""
    x, y = slo_spec(pct), spec("cost_per_hour")
    lo, hi = slo_spec(pct, "slo_lo_ms"), slo_spec(pct, "slo_hi_ms")
    xenc = alt.X(x.field, type="quantitative", title=f"{x.title} at {target_rps:,.0f} req/s ({x.unit})", scale=x.alt_scale())
    yenc = alt.Y(y.field, type="quantitative", title=y.axis_title)
    base = alt.Chart(df)
    color = alt.Color(
        "verdict:N",
        title="At the target rate",
        scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
    )
    tips = _tooltips(
        df,
        ["label", y, x, lo, hi, "slo_met_probability", "max_rate_rps", "headroom", "replicas", "utilization", "mean_batch_size"],
    )
    bars = base.mark_rule(opacity=0.5).encode(x=alt.X(lo.field, type="quantitative"), x2=alt.X2(hi.field), y=yenc, color=color)
    dots = base.mark_circle(size=70, opacity=0.85).encode(x=xenc, y=yenc, color=color, tooltip=tips)
    front = (
        alt.Chart(df[df["frontier"]] if "frontier" in df.columns else df.iloc[0:0])
        .mark_line(interpolate="step-after", color="#333", strokeWidth=1.5)
        .encode(x=xenc, y=yenc, order=alt.Order(x.field, type="quantitative"))
    )
    chosen = df[df["is_chosen"]] if "is_chosen" in df.columns else df.iloc[0:0]
    ring = alt.Chart(chosen).mark_point(size=420, shape="circle", filled=False, color="black", strokeWidth=2.5).encode(
        x=xenc, y=yenc, tooltip=tips
    )
    ring_text = alt.Chart(chosen).mark_text(align="left", dx=14, dy=-10, fontWeight="bold").encode(
        x=xenc, y=yenc, text=alt.value("chosen")
    )
    name = percentile_name(pct)
    # dots first: the legend takes its symbol from the first layer; no empty layers (Vega warns)
    parts = [dots, bars, front] + ([ring, ring_text] if len(chosen) else [])
    return alt.layer(*parts, _vrule(slo_ms, f"SLO {name} ≤ {slo_ms:g} ms", side="left")).properties(
        width=WIDTH,
        height=HEIGHT,
        title=_title("Cost vs latency: the Pareto frontier", subtitle),
    )


_NINES_LABEL = "datum.value == 0 ? 'p0' : 'p' + format(100 - 100 * pow(10, -datum.value), '.4~f')"


def cdf_chart(df: pd.DataFrame, slo_ms: float, pct: float, subtitle: str = "") -> alt.TopLevelMixin:
    """Latency distribution at the chosen point on a tail-stretched percentile axis, with the SLO."""
    import math

    x, q = spec("latency_ms"), spec("quantile")
    top = float(df["nines"].max()) if len(df) else 4.0
    yenc = alt.Y(
        "nines:Q",
        title="Percentile (tail stretched)",
        scale=alt.Scale(domain=[0, math.ceil(top)]),
        axis=alt.Axis(values=list(range(0, math.ceil(top) + 1)), labelExpr=_NINES_LABEL),
    )
    line = alt.Chart(df).mark_line(color="#4c78a8", strokeWidth=2).encode(
        x=alt.X(x.field, type="quantitative", title=x.axis_title),
        y=yenc,
        tooltip=[x.tooltip(), q.tooltip()],
    )
    name = percentile_name(pct)
    nines = -math.log10(1 - pct / 100.0)
    pct_rule = alt.Chart(pd.DataFrame({"y": [nines], "text": [name]})).mark_rule(color="#999", strokeDash=[2, 2]).encode(y="y:Q")
    top_ms = float(df["latency_ms"].max()) if len(df) else slo_ms
    layers = [line, pct_rule]
    subtitles = [subtitle] if isinstance(subtitle, str) and subtitle else list(subtitle or [])
    if slo_ms <= 1.5 * top_ms:
        layers.append(_vrule(slo_ms, f"SLO {name} ≤ {slo_ms:g} ms", side="left"))
    else:  # an SLO far right of the data would squash the distribution into a corner
        subtitles.append(f"SLO {name} ≤ {slo_ms:g} ms lies off the axis, {slo_ms / top_ms:.0f}x the slowest request.")
    return alt.layer(*layers).properties(
        width=WIDTH, height=HEIGHT, title=_title("Latency distribution at the chosen point", subtitles)
    )


def decomposition_chart(df: pd.DataFrame, subtitle: str = "") -> alt.Chart:
    """Mean latency split into queue, batch wait, compute, cache and overhead, one bar per configuration."""
    v, c = spec("component_ms"), spec("component")
    domain = [label for _, label in COMPONENTS]
    rows = list(dict.fromkeys(df.sort_values("rank")["label"])) if len(df) else []
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort=rows, axis=alt.Axis(labelLimit=420)),
            x=alt.X(v.field, type="quantitative", title=v.axis_title, stack="zero"),
            color=alt.Color(c.field, type="nominal", title=c.title, scale=alt.Scale(domain=domain, range=COMPONENT_COLORS), sort=domain),
            order=alt.Order("order:Q"),
            tooltip=[alt.Tooltip("label:N", title="Configuration"), c.tooltip("nominal"), v.tooltip()],
        )
        .properties(
            width=WIDTH - 160,
            height=alt.Step(28),
            title=_title("Latency decomposition (mean per request)", subtitle),
        )
    )


def batch_hist_chart(df: pd.DataFrame, subtitle: str = "") -> alt.Chart:
    """Share of batches by batch size at the chosen point."""
    b, n, s = spec("batch_size"), spec("batches"), spec("share")
    return (
        alt.Chart(df)
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X(b.field, type="ordinal", title=b.axis_title, axis=alt.Axis(labelOverlap="greedy", labelAngle=0)),
            y=alt.Y(s.field, type="quantitative", title=s.axis_title, axis=alt.Axis(format=".0%")),
            tooltip=[b.tooltip(), n.tooltip(), s.tooltip()],
        )
        .properties(width=WIDTH, height=HEIGHT * 0.8, title=_title("Batch-size distribution at the chosen point", subtitle))
    )


def heatmap_chart(df: pd.DataFrame, slo_ms: float, pct: float, subtitle: str = "") -> alt.TopLevelMixin:
    """The SLO percentile over max_batch_size x max_wait_ms; cells coloured around the SLO, labelled."""
    bs, w = spec("max_batch_size"), spec("max_wait_ms")
    y = slo_spec(pct)
    data = df.assign(cell_text=[_cell_text(v, slo_ms) for v in df[y.field]])
    base = alt.Chart(data).encode(
        x=alt.X(w.field, type="ordinal", title=w.axis_title, axis=alt.Axis(labelAngle=0)),
        y=alt.Y(bs.field, type="ordinal", title=bs.axis_title, sort="descending"),
    )
    tips = _tooltips(data, ["max_batch_size", "max_wait_ms", y, slo_spec(pct, "slo_lo_ms"), slo_spec(pct, "slo_hi_ms"), "slo_met_probability", "mean_batch_size", "utilization"])
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            y.field,
            type="quantitative",
            title=y.axis_title,
            scale=alt.Scale(type=y.scale, scheme="redyellowgreen", reverse=True, domain=heat_domain(data[y.field], slo_ms),
                            domainMid=slo_ms),
        ),
        tooltip=tips,
    )
    text = base.mark_text(fontSize=12).encode(text="cell_text:N", tooltip=tips)
    return alt.layer(cells, text).properties(
        width=WIDTH * 0.8,
        height=HEIGHT * 0.9,
        title=_title(f"{percentile_name(pct)} latency by max batch size and max wait (SLO {slo_ms:g} ms)", subtitle),
    )


def heat_domain(values: pd.Series, slo_ms: float) -> list[float]:
    """Colour domain around the SLO: always contains it (else Vega moves the midpoint, and yellow no
    longer means "at the SLO"), at least a factor 2 either side, and every finite cell."""
    v = pd.to_numeric(values, errors="coerce")
    v = v[(v > 0) & (v < float("inf"))]
    lo = min(float(v.min()) if len(v) else slo_ms, slo_ms / 2)
    hi = max(float(v.max()) if len(v) else slo_ms, slo_ms * 2)
    return [lo, hi]


def _cell_text(value: float, slo_ms: float) -> str:
    if value is None or pd.isna(value):
        return "unstable"
    return f"{value:.3g}"


def cache_chart(df: pd.DataFrame, slo_ms: float, pct: float, subtitle: str = "") -> alt.HConcatChart:
    """Three panels over cache capacity: hit ratio, the SLO percentile (CI band, SLO line), replicas needed."""
    cap, hr, rn = spec("capacity"), spec("hit_ratio"), spec("replicas_needed")
    y, lo, hi = slo_spec(pct), slo_spec(pct, "slo_lo_ms"), slo_spec(pct, "slo_hi_ms")
    ticks = sorted({float(v) for v in df[cap.field]}) if cap.field in df.columns else []
    xenc = alt.X(cap.field, type="quantitative", title=cap.axis_title, scale=cap.alt_scale(), axis=alt.Axis(values=ticks, format="~s"))
    base = alt.Chart(df).encode(x=xenc)
    tips = _tooltips(df, ["capacity", "hit_ratio", y, lo, hi, "replicas_needed", "label"])
    w, h = 250, 240
    hit_y = alt.Y(hr.field, type="quantitative", title=hr.axis_title, axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    hit = base.mark_line(point=True, color="#4c78a8").encode(y=hit_y, tooltip=tips)
    if "che_hit_ratio" in df.columns:  # the closed form beside the simulated ratio, when the sweep gives it
        che = alt.Chart(df).mark_line(strokeDash=[4, 3], color="#888").encode(
            x=xenc, y=alt.Y("che_hit_ratio:Q", title=hr.axis_title),
            tooltip=[cap.tooltip(), alt.Tooltip("che_hit_ratio:Q", title="Che's approximation", format=".1%")],
        )
        hit = alt.layer(hit, che)
    hit = hit.properties(width=w, height=h, title="Hit ratio" + (" (dashed: Che's approximation)" if "che_hit_ratio" in df.columns else ""))
    lat_band = base.mark_area(opacity=0.2, color="#f58518").encode(
        y=alt.Y(lo.field, type="quantitative", title=y.axis_title, scale=y.alt_scale()), y2=alt.Y2(hi.field)
    )
    lat_line = base.mark_line(point=True, color="#f58518").encode(
        y=alt.Y(y.field, type="quantitative", title=y.axis_title, scale=y.alt_scale()), tooltip=tips
    )
    lat = alt.layer(lat_band, lat_line, _hrule(slo_ms, f"SLO {slo_ms:g} ms")).properties(
        width=w, height=h, title=f"{percentile_name(pct)} at the target rate"
    )
    reps = base.mark_line(point=True, color="#54a24b").encode(
        y=alt.Y(rn.field, type="quantitative", title=rn.axis_title, scale=alt.Scale(zero=True)), tooltip=tips
    ).properties(width=w, height=h, title="Replicas needed for the SLO")
    panels, missing = [hit], []
    if has_values(df, y.field):
        panels.append(lat)
    else:
        missing.append(f"{percentile_name(pct)} panel left out: every capacity is overloaded at the target rate.")
    if has_values(df, rn.field):
        panels.append(reps)
    else:
        missing.append("Replicas panel left out: no swept replica count meets the SLO at any capacity.")
    lines = ([subtitle] if subtitle else []) + missing
    return alt.hconcat(*panels).properties(
        title=_title("What a cache buys: hit ratio, latency and replicas vs cache capacity", lines)
    )

