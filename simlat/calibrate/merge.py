"""Merging a second calibration run of the same device into a profile.

A second run adds what the first lacked (variants skipped or cut short, overhead components)
and re-measures variants in separate processes: their distributions are pooled per batch size
and each process's median is kept, so the profile reports the spread between processes.
Profiles of different devices are refused (``device differs: base=..., other=...``).

Pooling works on the quantile sketches: each sketch stands for ``n`` samples placed at its
quantile function's mid-ranks, which is exact for the quantile levels the sketch holds.

``simlat profile merge BASE OTHER --out FILE [--replace v1,v2]``
"""

from __future__ import annotations

import numpy as np

from simlat.calibrate.stats import summarize
from simlat.errors import SimlatError
from simlat.profiles.schema import SCHEMA_VERSION, ServiceProfile, parse_profile


def _pseudo_samples(dist: dict, levels: list[float]) -> np.ndarray:
    n = dist["n"]
    return np.interp((np.arange(n) + 0.5) / n, levels, dist["quantiles_ms"])


def _pool(a: dict, b: dict, levels: list[float]) -> dict:
    """One Dist from two measured in separate processes."""
    d = summarize([_pseudo_samples(a, levels), _pseudo_samples(b, levels)], levels)
    meds = [*(a.get("process_medians_ms") or []), *(b.get("process_medians_ms") or [])]
    if meds:
        spread = max(meds) / min(meds) if min(meds) > 0 else 1.0
        half = d["median_ci_half_width_ms"]
        med = d["quantiles_ms"][len(levels) // 2]
        d.update(process_medians_ms=meds, process_spread=round(max(spread, 1.0), 4),
                 unstable=bool(spread > 1.10 or (med > 0 and half > 0.05 * med)))
    return d


def _merge_points(a: list[dict], b: list[dict], levels: list[float]) -> list[dict]:
    by = {p["batch_size"]: p for p in a}
    for p in b:
        q = by.get(p["batch_size"])
        if q is None:
            by[p["batch_size"]] = p
        else:
            by[p["batch_size"]] = {**q, "dist": _pool(q["dist"], p["dist"], levels)}
    return [by[k] for k in sorted(by)]


def _merge_variant(a: dict, b: dict, levels: list[float], replace: bool) -> dict:
    if b["status"] != "ok":
        return b if a["status"] != "ok" else a  # both skipped: the later attempt's reason
    if a["status"] != "ok" or replace:
        return {**b, "notes": [*b.get("notes", []), "from the second run"]}
    out = dict(a)
    out["steady"] = _merge_points(a["steady"], b["steady"], levels)
    out["idle"] = _merge_points(a.get("idle", []), b.get("idle", []), levels)
    out["processes"] = a.get("processes", 1) + b.get("processes", 1)
    out["error"] = a.get("error") or b.get("error")
    out["notes"] = list(dict.fromkeys([*a.get("notes", []), *b.get("notes", [])]))
    out["notes"] = [n for n in out["notes"] if not n.startswith("repeat process failed")]
    if out.get("refinement"):  # sizes the second run measured are no longer interpolated
        measured = {p["batch_size"] for p in out["steady"]}
        out["refinement"] = {**out["refinement"], "interpolated": [x for x in out["refinement"]["interpolated"] if x not in measured]}
    return out


def merge(base: ServiceProfile, other: ServiceProfile, replace: set[str] | frozenset[str] = frozenset()) -> ServiceProfile:
    """``base`` with ``other`` merged in (see the module docstring); ``replace`` names variants taken whole from ``other``."""
    pa, pb = base.provenance, other.provenance
    if (pa.device, pa.device_name) != (pb.device, pb.device_name):
        raise SimlatError(f"device differs: base={pa.device_name!r} ({pa.device}), other={pb.device_name!r} ({pb.device})")
    if base.quantile_levels != other.quantile_levels:
        raise SimlatError("the two profiles use different quantile levels; recalibrate one of them")
    a, b = base.model_dump(mode="json"), other.model_dump(mode="json")
    levels = a["quantile_levels"]
    models = {m["name"]: m for m in a["models"]}
    for mb in b["models"]:
        ma = models.get(mb["name"])
        if ma is None:
            models[mb["name"]] = mb
            continue
        variants = {v["name"]: v for v in ma["variants"]}
        for vb in mb["variants"]:
            va = variants.get(vb["name"])
            variants[vb["name"]] = vb if va is None else _merge_variant(va, vb, levels, vb["name"] in replace)
        ma["variants"] = list(variants.values())
        have = {c["name"] for c in ma["components"]}
        ma["components"] += [c for c in mb["components"] if c["name"] not in have]
        for k in ("flops_per_item", "input_bytes_per_item", "output_bytes_per_item"):
            ma[k] = ma.get(k) or mb.get(k)
        if not ma.get("inputs"):
            ma["inputs"] = mb.get("inputs", [])
    a["models"] = list(models.values())
    prov = a["provenance"]
    prov["notes"] = [*prov["notes"], f"merged with a second run of {pb.date} ({pb.elapsed_s} s): {pb.command}",
                     *[n for n in pb.notes if n not in prov["notes"]]]
    prov["elapsed_s"] = (pa.elapsed_s or 0.0) + (pb.elapsed_s or 0.0)
    a["schema_version"] = SCHEMA_VERSION
    return parse_profile(a, source="merged profile")
