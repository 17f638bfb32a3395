"""The decision summary at the top of the report: the answer first, in plain words and numbers."""

from __future__ import annotations

import math
from html import escape

import pandas as pd

from simlat.report import frames
from simlat.report.specs import percentile_name
from simlat.sweep.result import SweepResult


def _num(v, fmt: str = "{:,.2f}") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return fmt.format(f) if math.isfinite(f) else "n/a"


def _row(result: SweepResult, cid: str | None) -> pd.Series | None:
    if cid is None:
        return None
    pts = result.points
    hit = pts[pts["config_id"].astype(str) == str(cid)]
    return None if hit.empty else hit.iloc[0]


def slo_text(result: SweepResult) -> str:
    """``p99 ≤ 30 ms at 5,000 req/s``."""
    return f"{percentile_name(result.slo_percentile)} ≤ {result.slo_latency_ms:g} ms at {result.target_rate_rps:,.0f} req/s"


def key_figures(result: SweepResult, row: pd.Series) -> list[tuple[str, str]]:
    """(label, value) pairs describing one configuration at the target rate."""
    name = percentile_name(result.slo_percentile)
    params = [(p.rsplit(".", 1)[-1], frames.display_value(row[p])) for p in result.params if p in row.index]
    out = [("Configuration", ", ".join(f"{k} = {v}" for k, v in params) or str(row.get("label", "")))]
    if isinstance(row.get("device"), str) and row.get("device"):
        out.append(("Device", row["device"]))
    stable = bool(row.get("stable", True))
    out.append(
        (
            f"{name} at {result.target_rate_rps:,.0f} req/s",
            f"{_num(row.get('slo_estimate_ms'))} ms [{_num(row.get('slo_lo_ms'))}, {_num(row.get('slo_hi_ms'))}] (95% CI)"
            if stable
            else "unstable: overloaded at this rate (the queue grows without bound)",
        )
    )
    lo = row.get("pi_lo_ms")
    if stable and lo is not None and lo == lo:
        out.append((f"{name} a real run will measure", f"{_num(lo)} to {_num(row.get('pi_hi_ms'))} ms (90% prediction interval)"))
    out.append(("Probability the SLO is met", _num(row.get("slo_met_probability"), "{:.3f}")))
    h = row.get("headroom")
    h_fmt = "{:+.1%}" if isinstance(h, int | float) and abs(h) < 0.1 else "{:+.0%}"
    out.append(("Headroom (load growth before the SLO breaks)", _num(h, h_fmt)))
    limit = row.get("limit")
    from simlat.sweep.search import LIMITS

    bound = f" (bound by {LIMITS[limit].split(' (')[0]})" if limit in LIMITS and limit not in ("none", "not_searched") else ""
    out.append(("Max sustainable rate under the SLO", _num(row.get("max_rate_rps"), "{:,.0f} req/s") + bound))
    out.append(("Cost", _num(row.get("cost_per_hour"), "${:,.2f} per hour")))
    out.append(("Replicas", _num(row.get("replicas"), "{:,.0f}")))
    out.append(("Utilisation", _num(row.get("utilization"), "{:.0%}")))
    out.append(("Mean batch size", _num(row.get("mean_batch_size"), "{:,.1f}")))
    if "hit_ratio" in row.index and row.get("hit_ratio") is not None:
        out.append(("Cache hit ratio (of lookups)", _num(row.get("hit_ratio"), "{:.1%}")))
    if row.get("p999_ms") is not None:
        out.append(("p99.9 latency", _num(row.get("p999_ms"), "{:,.2f} ms")))
    return out


def prediction_basis_text(row) -> str:
    """What the plan's latencies predict of a real run: with a measured serving stack, the 90%
    prediction interval; without one, that they are the model profile's alone and how far that missed."""
    from simlat.uncertainty import PROFILE_ONLY_MISS

    lo = row.get("pi_lo_ms") if row is not None else None
    if lo is not None and lo == lo:
        return (f"A real run: 90% prediction interval [{row['pi_lo_ms']:.3g}, {row['pi_hi_ms']:.3g}] ms for the SLO "
                "percentile (simulation noise, calibration spread, the measured serving stack's run-to-run spread "
                "and fit error; the bracketed intervals elsewhere are simulation noise only).")
    return ("No serving stack measured: these latencies are the model profile's alone, and the intervals cover "
            f"simulation noise only; {PROFILE_ONLY_MISS}. Measure the stack with simlat calibrate --endpoint.")


def summary_html(result: SweepResult) -> str:
    """The decision box: recommendation, the chosen (or closest) configuration's figures, sweep facts."""
    parts = []
    row = _row(result, result.chosen)
    if row is not None:
        rec = result.recommendation or f"Chosen: {row.get('label', result.chosen)}"
        parts.append('<div class="decision ok" id="decision">')
        parts.append(f"<p class=\"verdict\">Recommendation for {escape(slo_text(result))}</p>")
        parts.append(f'<p class="recommendation">{escape(rec)}</p>')
        heading = "The chosen configuration"
    else:
        parts.append('<div class="decision fail" id="decision">')
        parts.append(
            f'<p class="verdict">No configuration meets the SLO ({escape(slo_text(result))}) '
            f"with at least 95% confidence.</p>"
        )
        if result.recommendation:
            parts.append(f'<p class="recommendation">{escape(result.recommendation)}</p>')
        closest = frames.reference_id(result)
        row = _row(result, closest)
        heading = "Closest configuration (does not meet the SLO)"
    parts.append(f'<p class="note" id="prediction-basis">{escape(prediction_basis_text(row))}</p>')
    for warning in getattr(result, "warnings", None) or []:
        parts.append(f'<p class="note">Warning: {escape(warning)}</p>')
    explanation = getattr(result, "explanation", None) or []
    if explanation:
        parts.append('<h3>Why this choice</h3><ul class="why">')
        parts += [f"<li>{escape(line.strip())}</li>" for line in explanation]
        parts.append("</ul>")
    if row is not None:
        parts.append(f"<h3>{escape(heading)}</h3><table class=\"figures\">")
        for k, v in key_figures(result, row):
            parts.append(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>")
        parts.append("</table>")
    parts.append("</div>")
    pts = result.points
    n = pts["config_id"].nunique() if "config_id" in pts.columns else len(pts)
    meeting = int(frames.flags(pts["meets_slo"]).sum()) if "meets_slo" in pts.columns else 0
    reqs = pts["requests_simulated"].sum() if "requests_simulated" in pts.columns else float("nan")
    facts = [
        f"{n:,} configurations swept over {', '.join(result.params) or 'no parameters'}",
        f"{meeting:,} meet the SLO",
        f"objective: {result.objective}",
        f"{_num(reqs, '{:,.0f}')} requests simulated",
        f"sweep time {_num(result.elapsed_s, '{:,.1f}')} s",
    ]
    if result.cached_configs:
        facts.append(f"{result.cached_configs:,} configurations from the result cache")
    if result.executor:
        facts.append(f"ran on {result.executor}")
    parts.append(f'<p class="facts">{escape("; ".join(facts))}.</p>')
    run_warnings = getattr(result, "run_warnings", None) or []
    if run_warnings:
        parts.append("<h3>Simulator warnings at this configuration</h3><ul>")
        parts += [f"<li>{escape(w)}</li>" for w in run_warnings]
        parts.append("</ul>")
    inputs = list(getattr(result, "inputs", None) or [])
    if getattr(result, "command", ""):
        inputs.append(("Command", result.command))
    if inputs:
        parts.append('<details class="inputs"><summary>Inputs</summary><table class="figures">')
        parts += [f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in inputs]
        parts.append("</table></details>")
    return "\n".join(parts)
