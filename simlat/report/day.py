"""The day report (``simlat day --report-dir``): ``<dir>/<experiment>_day.html``, self-contained.

Three charts over the day, built from the per-window table's common columns
(:data:`simlat.autoscale.metrics.WINDOW_COLUMNS`, so any engine's table will do): the offered rate;
the replicas ready, starting and billed; the windowed p99 with its confidence band against the SLO.
Above them the day's numbers and, after a policy sweep, the policy table with the choice explained.
The page reuses the sweep report's page (:func:`simlat.report.page.render_page`): the Vega bundle and
every chart's data are inlined, nothing is fetched when it is viewed.
"""

from __future__ import annotations

import datetime as _dt
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd

from simlat.report.charts import HEIGHT, SLO_COLOR, WIDTH, _hrule, _title
from simlat.report.page import render_page
from simlat.report.writer import chart_spec, vega_javascript

if TYPE_CHECKING:
    from simlat.autoscale.day import DayResult
    from simlat.autoscale.sweep import DaySweepResult
    from simlat.config import Experiment

DAY_HEIGHT = HEIGHT * 3 // 4
REPLICA_SERIES = {"ready": "#2ca02c", "starting": "#ff7f0e", "billed": "#7f7f7f"}


def _hours(df: pd.DataFrame) -> pd.Series:
    return df["t_s"].astype(float) / 3600.0


def _x() -> alt.X:
    return alt.X("hour:Q", title="Time of day (h)", scale=alt.Scale(nice=False))


def rate_chart(windows: pd.DataFrame) -> alt.TopLevelMixin:
    """Offered rate (requests/s) per window over the day."""
    df = pd.DataFrame({"hour": _hours(windows), "offered_rps": windows["offered_rps"].astype(float)})
    return alt.Chart(df, width=WIDTH, height=DAY_HEIGHT, title=_title("Offered rate", "window mean")).mark_line(
        interpolate="step-after").encode(
        x=_x(), y=alt.Y("offered_rps:Q", title="Offered rate (req/s)"),
        tooltip=[alt.Tooltip("hour:Q", format=".2f", title="Hour"), alt.Tooltip("offered_rps:Q", format=",.0f", title="req/s")],
    )


def replicas_chart(windows: pd.DataFrame) -> alt.TopLevelMixin:
    """Replicas ready, starting and billed (ready + starting + draining) per window."""
    # billed is a replica-time average in the exact day's windows (a replica removed halfway counts 0.5)
    wide = pd.DataFrame({"hour": _hours(windows), **{k: windows[k].astype(float) for k in REPLICA_SERIES}})
    df = wide.melt(id_vars="hour", var_name="replicas", value_name="count")
    color = alt.Color("replicas:N", title="Replicas", sort=list(REPLICA_SERIES),
                      scale=alt.Scale(domain=list(REPLICA_SERIES), range=list(REPLICA_SERIES.values())))
    return alt.Chart(df, width=WIDTH, height=DAY_HEIGHT, title=_title("Replicas", "ready, starting (cold start) and billed")).mark_line(
        interpolate="step-after").encode(
        x=_x(), y=alt.Y("count:Q", title="Replicas"), color=color,
        strokeDash=alt.StrokeDash("replicas:N", sort=list(REPLICA_SERIES), legend=None,
                                  scale=alt.Scale(domain=list(REPLICA_SERIES), range=[[1, 0], [1, 0], [5, 3]])),
        tooltip=[alt.Tooltip("hour:Q", format=".2f", title="Hour"), "replicas:N", alt.Tooltip("count:Q", title="Count")],
    )


def p99_chart(windows: pd.DataFrame, slo_ms: float, pct: float) -> alt.TopLevelMixin:
    """Windowed p99 with its confidence band, on a log axis, against the SLO line."""
    df = pd.DataFrame({
        "hour": _hours(windows), "p99_ms": windows["p99_ms"].astype(float), "p99_lo_ms": windows["p99_lo_ms"].astype(float),
        "p99_hi_ms": windows["p99_hi_ms"].astype(float), "meets_slo": windows["meets_slo"].map(lambda v: "meets SLO" if v else "misses SLO"),
    })
    t = windows["t_s"].astype(float).to_numpy()
    df["hour_end"] = list(t[1:] / 3600.0) + [float(windows["end_s"].iloc[-1]) / 3600.0 if "end_s" in windows
                                             else (2 * t[-1] - (t[-2] if len(t) > 1 else 0.0)) / 3600.0]
    y = alt.Y("p99_ms:Q", title="p99 latency (ms, log)", scale=alt.Scale(type="log"))
    base = alt.Chart(df)
    missed = alt.Chart(df[df["meets_slo"] == "misses SLO"]).mark_rect(color=SLO_COLOR, opacity=0.12).encode(
        x=_x(), x2="hour_end:Q", tooltip=[alt.Tooltip("hour:Q", format=".2f", title="Misses the SLO from (h)")])
    bounded = df[np.isfinite(df["p99_lo_ms"]) & np.isfinite(df["p99_hi_ms"]) & (df["p99_lo_ms"] > 0)]
    band = alt.Chart(bounded).mark_area(opacity=0.25, color="#4c78a8", interpolate="step-after").encode(
        x=_x(), y=alt.Y("p99_lo_ms:Q", scale=alt.Scale(type="log"), title="p99 latency (ms, log)"), y2="p99_hi_ms:Q")
    line = base.mark_line(color="#4c78a8", interpolate="step-after").encode(
        x=_x(), y=y,
        tooltip=[alt.Tooltip("hour:Q", format=".2f", title="Hour"), alt.Tooltip("p99_ms:Q", format=",.2f", title="p99 ms"),
                 alt.Tooltip("p99_lo_ms:Q", format=",.2f", title="CI low"), alt.Tooltip("p99_hi_ms:Q", format=",.2f", title="CI high"),
                 alt.Tooltip("meets_slo:N", title="Window")])
    name = f"p{pct:g}"
    title = _title("Windowed p99 against the SLO", [
        f"dashed: the SLO, {name} <= {slo_ms:g} ms; shaded: windows missing it (no p99 where a window is overloaded)",
        "band: the p99's confidence interval (left out where unbounded: too few requests in the window)"])
    layers = [missed] + ([band] if len(bounded) else []) + [line]
    return alt.layer(*layers, _hrule(slo_ms, f"SLO {slo_ms:g} ms", SLO_COLOR)).properties(width=WIDTH, height=DAY_HEIGHT, title=title)


def _num(v, fmt: str, none: str = "-") -> str:
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def day_figures(result: DayResult) -> list[tuple[str, str]]:
    """The day's numbers, as (label, text) rows."""
    s = result.summary
    cost = "unknown (no price)" if s.cost_usd is None else f"${s.cost_usd:,.2f} at ${s.price_per_replica_hour:g}/replica-hour"
    if s.recovery_s is None:
        recovery = "the SLO is never missed"
    else:
        recovery = f"{s.recovery_s:,.0f} s from {(s.recovery_from_s or 0.0) / 3600:.2f} h" + ("" if s.recovered else " (not recovered by the end of the day)")
    return [
        ("Policy", s.policy),
        ("SLO met, 1-minute windows", f"{s.slo_minutes_share:.2%}"),
        (f"SLO met, {s.window_s:g}-s windows", f"{s.slo_windows_share:.2%}"),
        ("SLO met, requests", f"{s.slo_requests_share:.3%}"),
        ("Replica-hours", f"{s.replica_hours:,.2f}"),
        ("Cost", cost),
        ("Ready replicas", f"{s.ready_min}-{s.ready_max} (mean {s.ready_mean:.2f})"),
        ("Breaches of the SLO", f"{s.breaches}"),
        ("Longest time to recover", recovery),
        ("Unstable windows", f"{s.unstable_windows}"),
        ("Offered requests", f"{s.offered_requests:,.0f}"),
        ("Cold start", s.cold_start if s.cold_start_mean_s is None else f"{s.cold_start_mean_s:.1f} s mean, from {s.cold_start}"),
        ("Method", f"{s.method}, {s.windows} windows of {s.window_s:g} s"),
    ]


POLICY_COLUMNS = [("policy", "Policy"), ("compliance", "Compliance"), ("slo_requests_share", "Requests within SLO"),
                  ("replica_hours", "Replica-hours"), ("cost_usd", "Cost (USD)"), ("ready_max", "Most ready"),
                  ("recovery_s", "Longest recovery (s)"), ("reason", "Why")]


def _cell(col: str, v) -> str:
    if col in ("compliance", "slo_requests_share"):
        return _num(v, ".3%")
    if col in ("replica_hours", "cost_usd"):
        return _num(v, ",.2f")
    if col == "recovery_s":
        return _num(v, ",.0f", "none")
    return str(v)


def policy_table_html(table: pd.DataFrame) -> str:
    """The sweep's policies as an HTML table, the chosen one first and in bold."""
    order = table.sort_values(["chosen", "cost_usd" if table["cost_usd"].notna().all() else "replica_hours"],
                              ascending=[False, True], kind="mergesort")
    head = "".join(f"<th>{escape(t)}</th>" for _, t in POLICY_COLUMNS)
    rows = []
    for _, r in order.iterrows():
        style = ' style="font-weight:600"' if r["chosen"] else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{escape(_cell(c, r[c]))}</td>" for c, _ in POLICY_COLUMNS) + "</tr>")
    return f'<table class="figures" id="policies"><tr>{head}</tr>{"".join(rows)}</table>'


def summary_block(result: DayResult, slo: str, sweep: DaySweepResult | None) -> str:
    ok = result.summary.breaches == 0 if sweep is None else sweep.chosen is not None
    parts = [f'<div class="decision {"ok" if ok else "fail"}" id="decision">']
    if sweep is not None:
        parts.append(f'<p class="verdict">Policy sweep for {escape(slo)}</p>')
        parts.append('<ul class="why">' + "".join(f"<li>{escape(x.strip())}</li>" for x in sweep.explanation) + "</ul>")
        parts.append("<h3>The day under " + ("the chosen policy" if sweep.chosen is not None else "the most compliant policy") + "</h3>")
    else:
        parts.append(f'<p class="verdict">The day under its autoscaling policy, SLO {escape(slo)}</p>')
    parts.append('<table class="figures">' + "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in day_figures(result)) + "</table>")
    parts += [f'<p class="note">Warning: {escape(w)}</p>' for w in result.summary.warnings]
    if result.summary.method == "quasi-static":
        parts.append('<p class="note">Quasi-static: each window is simulated alone at its mean rate; queues are not '
                     "carried across windows, so overload after a spike and the recovery from it are optimistic.</p>")
    parts.append("</div>")
    if sweep is not None:
        parts.append("<h3>Policies swept</h3>" + policy_table_html(sweep.table))
    return "\n".join(parts)


def write_day_report(result: DayResult, experiment: Experiment, out_dir: Path, sweep: DaySweepResult | None = None) -> Path:
    """Write ``out_dir/<experiment.name>_day.html`` (charts of ``result``'s windows) and return its path."""
    import simlat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w = result.windows
    slo = f"p{experiment.slo.percentile:g} <= {experiment.slo.latency_ms:g} ms"
    sections: list[dict] = []
    charts: list[tuple[str, str, str, alt.TopLevelMixin]] = [
        ("rate", "Offered rate", "The workload's mean rate in each window.", rate_chart(w)),
        ("replicas", "Replicas", "Ready replicas serve; starting ones are in their cold start; billed counts ready, "
         "starting and draining ones.", replicas_chart(w)),
        ("p99", "Windowed p99", "Each window's p99 latency with its confidence interval, against the SLO (dashed).",
         p99_chart(w, experiment.slo.latency_ms, experiment.slo.percentile)),
    ]
    for key, title, caption, chart in charts:
        sections.append({"key": key, "title": title, "caption": caption, "notes": [], "spec": chart_spec(chart), "image": None})
    javascript, _ = vega_javascript()
    html = render_page(
        title=f"simlat day: {experiment.name}", description=experiment.description or "",
        summary_html=summary_block(result, slo, sweep), sections=sections,
        footer_lines=[f"Generated by simlat {simlat.__version__} on {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
                      f"seed {experiment.run.seed}."],
        javascript=javascript,
    )
    path = out_dir / f"{experiment.name}_day.html"
    path.write_text(html, encoding="utf-8")
    return path
