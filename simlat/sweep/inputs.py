"""What a sweep was asked, in words, for the report's inputs table: arrivals, fan-out, overheads,
SLO, run and accuracy settings, and the provenance of each calibration profile."""

from __future__ import annotations

import json
from pathlib import Path

from simlat.config import Experiment


def _compact(model) -> str:
    """A config block as short inline JSON (``{"kind": "poisson", "rate_rps": 50000}``)."""
    if model is None:
        return "none"
    data = model.model_dump(mode="json", exclude_defaults=False) if hasattr(model, "model_dump") else model
    if isinstance(data, dict):
        data = {k: (Path(v).name if k == "path" and isinstance(v, str) else v) for k, v in data.items() if v is not None}
    return json.dumps(data, separators=(", ", ": "))


def _provenance(path: Path) -> str:
    from simlat.errors import SimlatError
    from simlat.profiles.resolve import resolve_path as resolve_profile_path
    from simlat.profiles.schema import load_profile

    try:
        prov = load_profile(resolve_profile_path(path)).provenance
    except (SimlatError, OSError) as err:
        return f"unreadable ({err})"
    parts = [prov.device_name, f"measured {prov.date}", f"simlat {prov.simlat_version}"]
    parts += [f"{k} {v}" for k, v in (("driver", prov.driver), ("CUDA", prov.cuda), ("torch", prov.torch)) if v]
    if prov.shared_machine:
        parts.append("on a shared machine")
    return ", ".join(parts)


def describe_inputs(experiment: Experiment, profiles: list[Path]) -> list[tuple[str, str]]:
    """(label, value) pairs of the base experiment and its sweep."""
    e = experiment
    out = [
        ("Experiment", e.name + (f" ({e.description})" if e.description else "")),
        ("Arrivals", _compact(e.workload.arrivals)),
        ("Items per request (fan-out)", _compact(e.workload.items_per_request)
         if hasattr(e.workload.items_per_request, "model_dump") else str(e.workload.items_per_request)),
    ]
    if e.workload.keys is not None:
        out.append(("Keys", _compact(e.workload.keys)))
    out += [
        ("Fleet (base)", _compact(e.fleet)),
        ("Batching (base)", _compact(e.batching)),
        ("Service (base)", _compact(e.service)),
        ("Overheads", _compact(e.overheads)),
        ("Admission", _compact(e.admission)),
    ]
    if e.cache is not None:
        out.append(("Cache", _compact(e.cache)))
    if e.frontend is not None:
        out.append(("Frontend", _compact(e.frontend)))
    out.append(("SLO", _compact(e.slo)))
    out.append(("Run", _compact(e.run)))
    if e.sweep is not None:
        s = e.sweep
        out.append(("Sweep grid", json.dumps({k: [Path(v).name if isinstance(v, str) and "/" in v else v for v in vals]
                                              for k, vals in s.grid.items()}, separators=(", ", ": "))))
        if s.cases:
            out.append(("Sweep cases", f"{len(s.cases)} cases over {', '.join(s.cases[0])}"))
        out.append(("Choice", f"objective {s.objective}, min_headroom {s.min_headroom:g}, confidence {s.confidence:g}"))
        out.append(("Accuracy", f"min_requests {s.min_requests:,}, max_requests {s.max_requests:,}, "
                    f"ci_rel_tolerance {s.ci_rel_tolerance:g}, rate_search {_compact(s.rate_search)}"))
    for p in profiles:
        out.append((f"Profile {Path(p).name}", _provenance(Path(p))))
    return out
