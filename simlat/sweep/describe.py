"""Plain-words descriptions of configurations and the recommendation a planner reads first."""

from __future__ import annotations

import math

import pandas as pd

from simlat.config import Experiment
from simlat.sweep.cost import device_label


def pct_label(percentile: float) -> str:
    """99 -> 'p99', 99.9 -> 'p99.9'."""
    return f"p{percentile:g}"


def _ms(x: float) -> str:
    return f"{x:g}" if x >= 10 or x == int(x) else f"{x:.3g}"


def _variant(variant: str) -> str:
    words = variant.replace("-", "_").split("_")
    graphs = [w for w in words if w.lower() in ("cudagraph", "cudagraphs", "graph", "graphs", "cuda")]
    rest = " ".join(w for w in words if w not in graphs)
    return rest + (" with CUDA graphs" if graphs else "")


def service_text(experiment: Experiment) -> str:
    """'mlp_ranker bf16 with CUDA graphs on h100' or 'affine service (1 ms + 0.0004 ms/item)'."""
    s = experiment.service
    device = device_label(experiment)
    on = f" on {device}" if device else ""
    if s.kind == "profile":
        return f"{s.model} {_variant(s.variant)}{on}"
    if s.kind == "affine":
        return f"affine service ({_ms(s.base_ms)} ms + {s.per_item_ms:g} ms/item){on}"
    if s.kind == "deterministic":
        return f"{_ms(s.ms)} ms deterministic service{on}"
    if s.kind == "exponential":
        return f"exponential service (mean {_ms(s.mean_ms)} ms){on}"
    if s.kind == "lognormal":
        return f"lognormal service (median {_ms(s.median_ms)} ms){on}"
    return f"{s.kind} service{on}"


def batching_text(experiment: Experiment) -> str:
    """'max batch 64, max wait 2 ms' / 'no batching'."""
    b = experiment.batching
    if b.kind == "none":
        return "no batching"
    if b.kind == "dynamic":
        return f"max batch {b.max_batch_size}, max wait {_ms(b.max_wait_ms)} ms"
    return f"adaptive batching up to {b.max_batch_size}, wait {_ms(b.min_wait_ms)}-{_ms(b.max_wait_ms)} ms"


def _count(n: float) -> str:
    """400000 -> '400k', 1500000 -> '1.5M', 750 -> '750'."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:g}"


def _ttl(ms: float | None) -> str:
    if ms is None:
        return ""
    return f" (TTL {_ms(ms / 1000)} s)" if ms >= 1000 else f" (TTL {_ms(ms)} ms)"


def cache_text(cache) -> str:
    """'cache L1 20k entries per replica (TTL 10 s), L2 400k entries (TTL 60 s)'."""
    fixed = cache.fixed_hit_ratios()
    if fixed is not None:
        shown = [f"L{i} {h:.0%}" for i, h in enumerate(fixed, start=1) if h > 0] or ["0%"]
        return f"cache with fixed hit ratio {', '.join(shown)}"
    levels = []
    if cache.l1 is not None:
        copies = cache.l1.copies
        each = " per replica" if copies == "replicas" else f" in each of {copies} processes" if copies > 1 else ""
        levels.append(f"L1 {_count(cache.l1.capacity)} entries{each}{_ttl(cache.l1.ttl_ms)}")
    if cache.l2 is not None:
        levels.append(f"L2 {_count(cache.l2.capacity)} entries{_ttl(cache.l2.ttl_ms)}")
    return f"cache{' per item' if cache.per_item else ''} " + ", ".join(levels)


def config_text(experiment: Experiment, params: list[str]) -> str:
    """'4 replicas of mlp_ranker bf16 on h100, max batch 64, max wait 2 ms' (+ swept extras)."""
    r = experiment.fleet.replicas
    parts = [f"{r} replica{'s' if r != 1 else ''} of {service_text(experiment)}", batching_text(experiment)]
    f = experiment.fleet
    if f.instances_per_gpu > 1 or experiment.colocated is not None:
        parts.insert(1, f"{f.instances_per_gpu} per GPU on {f.n_gpus} GPU{'s' if f.n_gpus != 1 else ''}")
    col = experiment.colocated
    if col is not None:
        for name, t in col.tenants.items():
            where = "on the same GPUs" if col.placement == "shared" else f"on {t.gpus} GPU{'s' if t.gpus != 1 else ''} of its own"
            parts.append(f"beside {name} ({t.instances_per_gpu} per GPU {where})")
    if any(p.startswith("fleet.balancer") or p.startswith("fleet.queue") for p in params):
        f = experiment.fleet
        parts.append(f"{f.queue.replace('_', '-')} queue" + (f", {f.balancer.replace('_', ' ')}" if f.queue != "shared" else ""))
    if experiment.cache is not None and any(p.startswith("cache") for p in params):
        parts.append(cache_text(experiment.cache))
    return ", ".join(parts)


def lat(x: float) -> str:
    """A latency in ms with the precision its size needs: 1.53, 21.3."""
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.3g}"


def recommendation(
    points: pd.DataFrame,
    chosen: str | None,
    experiments: dict[str, Experiment],
    params: list[str],
    percentile: float,
    slo_ms: float,
    target_rps: float,
    confidence: float,
    min_headroom: float = 0.0,
) -> str:
    """The decision in one or two sentences."""
    p = pct_label(percentile)
    if chosen is None:
        extra = f" and {min_headroom:.0%} headroom" if min_headroom > 0 else ""
        head = f"No configuration meets {p} <= {_ms(slo_ms)} ms at {_rate(target_rps)} req/s with {confidence:.0%} confidence{extra}."
        cand = points[points["stable"]].sort_values("slo_hi_ms")
        if cand.empty:
            return head + " Every configuration is above capacity at that rate."
        row = cand.iloc[0]
        best = points["max_rate_rps"].max()
        tail = f" The closest is {config_text(experiments[row['config_id']], params)}: {p} {lat(row['slo_estimate_ms'])} ms [{lat(row['slo_lo_ms'])}, {lat(row['slo_hi_ms'])}]"
        if not math.isnan(best):
            tail += f"; the best configuration sustains {_rate(best)} req/s within the SLO"
        return head + tail + "."
    row = points.set_index("config_id").loc[chosen]
    pi = ""
    if "pi_lo_ms" in row and not math.isnan(row["pi_lo_ms"]):
        pi = f" (a real run: 90% prediction interval [{lat(row['pi_lo_ms'])}, {lat(row['pi_hi_ms'])}])"
    else:
        pi = " (simulation interval only: no serving stack measured)"
    text = (
        f"{config_text(experiments[chosen], params)}: {p} {lat(row['slo_estimate_ms'])} ms "
        f"[{lat(row['slo_lo_ms'])}, {lat(row['slo_hi_ms'])}]{pi} at {_rate(target_rps)} req/s, "
        f"SLO met with probability {row['slo_met_probability']:.2f}"
    )
    if not math.isnan(row["headroom"]):
        h = row["headroom"]
        text += f", headroom {h:.0%}" if h >= 0.1 else f", headroom {h:.1%}"
    col = experiments[chosen].colocated
    for name, t in (col.tenants.items() if col is not None else ()):
        text += (f"; {name}: p99 {lat(row[f'{name}_p99_ms'])} ms [{lat(row[f'{name}_p99_lo_ms'])}, "
                 f"{lat(row[f'{name}_p99_hi_ms'])}] (SLO {pct_label(t.slo.percentile)} <= {_ms(t.slo.latency_ms)} ms)")
    if not math.isnan(row["cost_per_hour"]):
        gpus = f" for {int(row['gpus'])} GPUs" if "gpus" in row and not math.isnan(row["gpus"]) else ""
        text += f", ${row['cost_per_hour']:,.2f}/hour{gpus}"
    return text
