"""Turning the workers' raw results into a validated :class:`simlat.profiles.ServiceProfile`.

Samples of a variant's separate processes are pooled per batch size (each process's median is
kept for the spread); each point gets its roofline floor from the run's measured peaks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from simlat.calibrate.plan import Task
from simlat.calibrate.roofline import floor_ms
from simlat.calibrate.runner import Outcome
from simlat.calibrate.stats import summarize
from simlat.calibrate.variants import VARIANTS


def _pooled(results: list[dict], key: str) -> dict[int, list[list[float]]]:
    out: dict[int, list[list[float]]] = {}
    for r in results:
        for b, s in (r.get(key) or {}).items():
            if isinstance(s, dict):
                s = s["samples"]
            if s:
                out.setdefault(int(b), []).append(s)
    return out


def _points(pooled: dict[int, list[list[float]]], levels: list[float], extra: Callable | None = None) -> list[dict]:
    pts = []
    for b in sorted(pooled):
        p = {"batch_size": b, "dist": summarize(pooled[b], levels)}
        if extra:
            p.update(extra(b))
        pts.append(p)
    return pts


def variant_entry(name: str, device: str, results: list[dict], levels: list[float], peaks: dict | None, budget) -> dict:
    """One profile ``Variant`` (as a dict) from the results of its primary and repeat processes."""
    spec = VARIANTS[name]
    primary = results[0]
    base = {"name": name, "description": spec.description, "fixed_shape": spec.fixed_shape(device)}
    if primary.get("status") != "ok" or not primary.get("points"):
        return {**base, "status": "skipped", "reason": primary.get("reason") or "no batch size was measured"}
    ok = [r for r in results if r.get("status") == "ok" and r.get("points")]
    notes = list(dict.fromkeys(n for r in ok for n in r.get("notes", [])))
    notes += [f"repeat process failed: {r.get('reason')}" for r in results[1:] if r not in ok]
    pf = (peaks or {}).get("matmul_flops_per_s", {}).get(spec.peak)
    bw = (peaks or {}).get("copy_bytes_per_s")
    fpi, bfix, bpi = primary.get("flops_per_item"), primary.get("bytes_fixed"), primary.get("bytes_per_item")
    firsts = {int(b): p.get("first_call_ms") for b, p in primary["points"].items()}

    def extra(b: int) -> dict:
        d = {"first_call_ms": firsts.get(b)}
        if fpi is not None and bfix is not None and bpi is not None:
            flops, nbytes = fpi * b, bfix + bpi * b
            d.update(flops=flops, bytes=nbytes, roofline_floor_ms=floor_ms(flops, nbytes, pf, bw))
        return d

    first_bs = min(firsts)
    entry = {
        **base,
        "status": "ok",
        "threads": primary.get("threads"),
        "timer": primary.get("timer"),
        "processes": len(ok),
        "cold_start": {
            "process_ready_ms": primary.get("process_ready_ms"),
            "setup_ms": primary.get("setup_ms"),
            "first_call_ms": firsts[first_bs],
        },
        "error": primary.get("error"),
        "steady": _points(_pooled(ok, "points"), levels, extra),
        "idle": _points(_pooled(ok, "idle"), levels),
        "idle_gap_ms": budget.idle_gap_s * 1e3,
        "notes": notes,
    }
    refinement = primary.get("adaptive")
    if refinement:
        measured = sorted(int(b) for b in primary["points"])
        refinement = {k: v for k, v in refinement.items() if k != "unmeasured"}
        refinement["interpolated"] = [b for b in refinement["grid"] if measured[0] < b < measured[-1] and b not in measured]
        entry["refinement"] = refinement
        if refinement["interpolated"]:
            entry["notes"].append(
                f"adaptive: batch sizes {refinement['interpolated']} interpolated between measured neighbours, not measured"
                + ("" if refinement["complete"] else " (refinement cut short by the time budget: not all checked)"))
    if entry["error"] and not all(map(lambda v: v == v and v != float("inf"), entry["error"].values())):
        entry["notes"].append("output error is not finite (NaN/inf outputs or a shape mismatch)")
        entry["error"] = None
    return entry


def build_profile_dict(outcomes: list[Outcome], *, device: str, variants: list[str], levels: list[float], budget,
                       command: str, simlat_version: str, threads: int | None, shared: bool, notes: list[str], elapsed_s: float) -> dict:
    """The whole profile as a dict, ready for :func:`simlat.profiles.parse_profile`."""
    env = next(o.result for o in outcomes if o.task.kind == "env")
    peaks = env.get("peaks")
    models: dict[str, dict] = {}
    by_mv: dict[tuple[str, str], list[tuple[Task, dict]]] = {}
    comps: dict[str, dict] = {}
    for o in outcomes:
        if o.task.kind == "variant":
            assert o.task.model is not None and o.task.variant is not None
            by_mv.setdefault((o.task.model.name, o.task.variant), []).append((o.task, o.result))
        elif o.task.kind == "components":
            assert o.task.model is not None
            comps[o.task.model.name] = o.result
        if o.task.model is not None and o.task.model.name not in models:
            models[o.task.model.name] = {"name": o.task.model.name, "description": o.task.model.description, "variants": [], "components": []}
    for mname, m in models.items():
        for v in variants:
            rs = [r for _, r in sorted(by_mv.get((mname, v), []), key=lambda tr: tr[0].repeat)]
            if not rs:
                continue
            m["variants"].append(variant_entry(v, device, rs, levels, peaks, budget))
            prim = rs[0]
            for k in ("flops_per_item", "input_bytes_per_item", "output_bytes_per_item", "inputs"):
                if prim.get(k) is not None and k not in m:
                    m[k] = prim[k]
        c = comps.get(mname)
        if c and c.get("status") != "ok":
            notes = [*notes, f"overhead components of {mname} not measured: {c.get('reason')}"]
        if c and c.get("status") == "ok":
            for cname, per_bs in c["components"].items():
                pooled = {int(b): [s] for b, s in per_bs.items() if s}
                m["components"].append({"name": cname, "description": c["descriptions"].get(cname, ""), "points": _points(pooled, levels)})
    prov: dict[str, Any] = {k: env.get(k) for k in ("device_name", "driver", "cuda", "torch", "onnxruntime", "torchao", "python", "cpu_model", "cpu_count", "hostname")}
    prov.update(
        device=device,
        device_name=env.get("device_name") or device,
        threads=threads or env.get("threads"),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        simlat_version=simlat_version,
        command=command,
        budget=budget.name,
        shared_machine=shared,
        notes=list(env.get("notes") or []) + notes,
        elapsed_s=round(elapsed_s, 1),
    )
    if env.get("status") == "skipped":
        prov["notes"].append(f"environment task failed: {env.get('reason')}")
    return {"schema_version": None, "provenance": prov, "quantile_levels": levels, "peaks": peaks, "models": list(models.values())}

