"""How the CLI shows a :class:`simlat.metrics.Summary`: a rich table, or one JSON object.

Unstable runs are shown loudly and never with a finite percentile (JSON gives null).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlat.config import Experiment
    from simlat.metrics import Summary

PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p999", "p99.9"), ("mean", "mean"))


def _ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.1f}"


def _ci(ci) -> str:
    if ci is None:
        return "-"
    return f"[{_ms(ci[0])}, {_ms(ci[1])}]"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def cache_text(summary: Summary) -> str:
    """'55.7% of lookups (L1 40.2%; L2 26.0% of the L1 misses)'."""
    parts = []
    if summary.cache_l1_hit_ratio is not None:
        parts.append(f"L1 {_pct(summary.cache_l1_hit_ratio)}")
    if summary.cache_l2_hit_ratio is not None:
        of = "of the L1 misses" if summary.cache_l1_hit_ratio is not None else "of lookups (no L1)"
        parts.append(f"L2 {_pct(summary.cache_l2_hit_ratio)} {of}")
    return f"{_pct(summary.cache_hit_ratio)} of lookups" + (f" ({'; '.join(parts)})" if parts else "")


def summary_json(summary: Summary, meta: dict | None = None) -> str:
    """The summary as one JSON object (non-finite numbers become null); ``meta`` (experiment name,
    seed, simlat version) comes first."""
    data = {**(meta or {}), **json.loads(summary.model_dump_json())}
    return json.dumps(data, separators=(",", ":"))


def slo_estimate_text(summary: Summary) -> str:
    """'estimate 12.9 ms [12.1, 13.8]', or, when drops leave the SLO percentile undefined (dropped
    requests count as missing the bound), by how much the drops exceed what the percentile allows."""
    est = summary.slo_estimate_ms
    allowed = (100.0 - summary.slo_percentile) / 100.0
    if (est is None or math.isinf(est)) and summary.drop_rate > allowed:
        return (
            f"estimate undefined: {summary.drop_rate:.2%} of requests were dropped, more than the "
            f"{allowed:.2%} a p{summary.slo_percentile:g} allows (dropped requests count as missing the bound; "
            f"the table's percentiles are of completed requests only)"
        )
    return f"estimate {_ms(est)} ms {_ci(summary.slo_ci_ms)}"


def prediction_text(summary: Summary) -> str:
    """What the numbers predict of a real run: the prediction interval and its parts, or why there is none."""
    name = f"p{summary.slo_percentile:g}"
    if summary.prediction_interval_ms is not None:
        lo, hi = summary.prediction_interval_ms
        parts = ", ".join(f"{k} {v:.0%}" for k, v in (summary.prediction_parts or {}).items())
        return (f"prediction for a real run ({summary.prediction_basis}): {name} 90% prediction interval "
                f"[{_ms(lo)}, {_ms(hi)}] ms (sd of log: {parts}); the 95% interval above is simulation noise only")
    if summary.prediction_basis == "model profile only":
        return (f"prediction for a real run: none. The {name} above is the model profile's alone (no serving "
                "stack measured); its interval is simulation noise only")
    return f"prediction for a real run: no prediction interval ({summary.prediction_basis})"


def print_summary(experiment: Experiment, summary: Summary, console=None) -> None:
    """Print the summary as a table: percentiles with 95% intervals, rates, utilisation, SLO verdict."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 200)  # piped: no wrapping at 80 columns
    title = f"simlat: {experiment.name}"
    if not summary.stable:
        console.print(
            f"[bold white on red] UNSTABLE [/] {title}: the queue grows through the run (the fleet cannot "
            "keep up; see the warnings), so latency percentiles are not finite."
        )
    lat = Table(title=f"{title}: latency (ms), {summary.completed:,} completed requests after warm-up")
    lat.add_column("statistic")
    lat.add_column("estimate", justify="right")
    lat.add_column("95% interval", justify="right")
    for key, label in PERCENTILES:
        value = getattr(summary, f"{key}_ms")
        if not summary.stable:
            lat.add_row(label, "[bold red]unbounded[/]", "-")
        else:
            lat.add_row(label, _ms(value), _ci(getattr(summary, f"{key}_ci_ms")))
    console.print(lat)

    rates = Table(title="throughput and fleet", show_header=False)
    rates.add_column("what")
    rates.add_column("value", justify="right")
    rates.add_row("requests measured", f"{summary.requests:,} ({summary.replications} replication(s))")
    if summary.offered_rps is not None:
        rates.add_row("offered", f"{summary.offered_rps:,.1f} req/s")
    if summary.capacity_rps is not None:
        rates.add_row("capacity (engine estimate)", f"{summary.capacity_rps:,.1f} req/s")
    rates.add_row("throughput", f"{summary.throughput_rps:,.1f} req/s")
    rates.add_row(f"goodput (<= {summary.slo_latency_ms:g} ms)", f"{summary.goodput_rps:,.1f} req/s")
    rates.add_row("drop rate", f"{summary.drop_rate:.2%}")
    util = summary.utilization
    if util:
        shown = ", ".join(f"{u:.1%}" for u in util[:8]) + (" ..." if len(util) > 8 else "")
        rates.add_row("utilisation per replica", shown)
    if summary.mean_batch_size is not None:
        rates.add_row("mean batch size", f"{summary.mean_batch_size:.2f}")
    parts = [
        ("queue", summary.queue_wait_ms),
        ("batch wait", summary.batch_wait_ms),
        ("service", summary.service_ms),
        ("overhead", summary.overhead_ms),
        ("cache", summary.cache_ms),
        ("reply", summary.reply_ms),
    ]
    shown = ", ".join(f"{name} {_ms(v)}" for name, v in parts if v is not None)
    if shown:
        rates.add_row("mean latency parts (ms)", shown)
    if summary.cache_hit_ratio is not None:
        rates.add_row("cache hit ratio (after warm-up)", cache_text(summary))
    console.print(rates)

    if summary.tenants:
        console.print(_tenants_table(experiment, summary))
    _print_verdict(console, summary, experiment.name if summary.tenants else "")
    for name, t in summary.tenants.items():
        _print_verdict(console, t, name)
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    for name, t in summary.tenants.items():
        for w in t.warnings:
            if w not in summary.warnings:
                console.print(f"[yellow]warning ({name}):[/] {w}", highlight=False)


def _print_verdict(console, summary: Summary, who: str) -> None:
    label = f"p{summary.slo_percentile:g} <= {summary.slo_latency_ms:g} ms" + (f" ({who})" if who else "")
    if not summary.stable:
        console.print(f"SLO {label}: [bold red]NOT MET[/] (unstable; P(met) = 0)")
    else:
        p = summary.slo_met_probability
        verdict = "[bold green]MET[/]" if p >= 0.95 else "[bold red]NOT MET[/]" if p <= 0.05 else "[bold yellow]UNCERTAIN[/]"
        console.print(f"SLO {label}: {verdict}  {slo_estimate_text(summary)}, P(met) = {p:.3f}")
        if not who:
            console.print(prediction_text(summary), highlight=False)


def _tenants_table(experiment: Experiment, summary: Summary):
    """One row per model on the GPUs: its p50 and p99 with intervals, throughput and utilisation."""
    from rich.table import Table

    table = Table(title="models on the same GPUs (each with its own SLO)" if experiment.colocated is not None
                  and experiment.colocated.placement == "shared" else "models on GPUs of their own")
    for col in ("model", "p50 (ms)", "p99 (ms)", "throughput", "mean utilisation"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, s in [(experiment.name, summary), *summary.tenants.items()]:
        util = sum(s.utilization) / len(s.utilization) if s.utilization else float("nan")
        if not s.stable:
            table.add_row(name, "unbounded", "unbounded", f"{s.throughput_rps:,.1f} req/s", f"{util:.1%}")
        else:
            table.add_row(name, f"{_ms(s.p50_ms)} {_ci(s.p50_ci_ms)}", f"{_ms(s.p99_ms)} {_ci(s.p99_ci_ms)}",
                          f"{s.throughput_rps:,.1f} req/s", f"{util:.1%}")
    return table
