"""Folding a real replica's measured cold start (``simlat validate --cold-start``, a ``simlat.coldstart``
file) into the service profile of the same device: each measured variant's ``cold_start.replica``.

``simlat profile merge PROFILE COLDSTART.json --out PROFILE`` (the profile's device must be the one
the cold starts were measured on). Starts that failed are left out and said; a variant the profile
does not have is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simlat.errors import SimlatError
from simlat.profiles.schema import ServiceProfile, parse_profile

SCHEMA = "simlat.coldstart"


def is_cold_start_file(path: Path) -> bool:
    """Whether ``path`` is a ``simlat.coldstart`` JSON file (not a service profile)."""
    try:
        with open(path) as f:
            head = f.read(200)
    except OSError:
        return False
    return f'"{SCHEMA}"' in head


def read_cold_start(path: Path) -> dict:
    """The measured cold-start file, checked for its schema."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SimlatError(f"{path}: not a readable cold-start file ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("schema_version") != 1:
        raise SimlatError(f"{path}: schema must be {SCHEMA} version 1 (written by simlat validate --cold-start)")
    return data


def replica_starts(data: dict) -> dict[str, dict]:
    """Per variant, the ``ReplicaStart`` fields from the measured starts (failed starts left out)."""
    decl, prov = data["declared"], data.get("provenance", {})
    by: dict[str, list[dict]] = {}
    for row in data["results"]:
        if "error" not in row:
            by.setdefault(row["variant"], []).append(row)
    out = {}
    for variant, rows in by.items():
        rows.sort(key=lambda r: r["repeat"])
        first = np.concatenate([np.asarray(r["first_latency_ms"], float) for r in rows])
        steady = np.concatenate([np.asarray(r["steady_latency_ms"], float) for r in rows])
        first, steady = first[np.isfinite(first)], steady[np.isfinite(steady)]
        out[variant] = {
            "server": decl["server"], "max_batch": int(decl["max_batch"]), "ready_s": [r["ready_s"] for r in rows],
            "first_request_ms": [r["first"]["first_ms"] for r in rows],
            "first_requests": int(min(r["first"]["n"] for r in rows)), "rate_rps": float(decl["rate_rps"]),
            "first_p50_ms": float(np.percentile(first, 50)), "first_p99_ms": float(np.percentile(first, 99)),
            "steady_p50_ms": float(np.percentile(steady, 50)), "steady_p99_ms": float(np.percentile(steady, 99)),
            "slow_requests": int(max(r["first"]["slow"] for r in rows)),
            "measured": f"{prov.get('host', '')} {prov.get('created', '')}".strip(),
        }
    return out


def fold_cold_start(base: ServiceProfile, data: dict, model: str | None = None) -> tuple[ServiceProfile, list[str]]:
    """``base`` with the measured replica starts in its variants' ``cold_start.replica``; and notes."""
    name = data.get("provenance", {}).get("device_name")
    if name and base.provenance.device_name and name != base.provenance.device_name:
        raise SimlatError(f"device differs: profile={base.provenance.device_name!r}, cold starts={name!r}")
    model = model or data["declared"]["model"]
    starts = replica_starts(data)
    notes = [f"{r['variant']} start #{r['repeat'] + 1} failed: {r['error'][:120]}" for r in data["results"] if "error" in r]
    if not starts:
        raise SimlatError("the cold-start file has no successful start to fold in")
    a = base.model_dump(mode="json")
    models = {m["name"]: m for m in a["models"]}
    if model not in models:
        raise SimlatError(f"model: {model!r} is not in the profile (it has {', '.join(models)})")
    variants = {v["name"]: v for v in models[model]["variants"]}
    for variant, replica in starts.items():
        if variant not in variants:
            raise SimlatError(f"variant: {variant!r} of {model} is not in the profile (it has {', '.join(variants)})")
        v = variants[variant]
        v["cold_start"] = {**(v.get("cold_start") or {}), "replica": replica}
        notes.append(f"{model}/{variant}: replica ready in {', '.join(f'{s:.2f}' for s in replica['ready_s'])} s "
                     f"({replica['server']})")
    a["provenance"]["notes"] = [*a["provenance"]["notes"],
                                f"replica cold starts measured from outside ({data['declared']['server']}, "
                                f"{data.get('provenance', {}).get('created', '')})"]
    return parse_profile(a, source="profile with replica cold starts"), notes
