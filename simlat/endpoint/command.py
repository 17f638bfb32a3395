"""What the ``simlat`` commands call for endpoints: measure, fit a serving profile, validate, replay.

- :func:`measure`: a calibration campaign (and, for validation, the load levels) against an
  endpoint, restarting a server per repeat when simlat starts it (Triton, simlat's own server, or
  ``--server-cmd``); saves one ``.npz`` even when the campaign fails part-way. numpy only.
- :func:`serving_profile`: fit the stack from a campaign and build the versioned profile.
- :func:`validate`: measured vs predicted levels of a saved campaign, with prediction intervals.
"""

from __future__ import annotations

import getpass  # noqa: F401  (kept importable on minimal hosts)
import time
from pathlib import Path

from simlat.endpoint import campaign as cp
from simlat.endpoint.probe import EndpointError
from simlat.endpoint.protocol import PROTOCOLS, Target


def parse_model_profile(text: str | None) -> dict | None:
    """``PATH:MODEL:VARIANT`` -> dict (the model profile a serving fit is relative to)."""
    if not text:
        return None
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise EndpointError(f"--model-profile: {text!r} must be PATH:MODEL:VARIANT, e.g. calibration/h100-cuda.json:mlp_ranker:fp32")
    return {"path": parts[0], "model": parts[1], "variant": parts[2]}


def server_factory(kind: str, *, model: str, variant: str, device: str, max_batch: int, max_wait_ms: float,
                   tritonserver: str | None = None, server_cmd: str | None = None, target: Target | None = None,
                   cpus: str = "", workdir: Path | None = None):
    """A zero-argument callable that starts a fresh server of ``kind`` (or None for an external endpoint)."""
    from simlat.endpoint import servers as sv

    if kind == "external":
        if server_cmd:
            return lambda: sv.CommandServer(server_cmd, target)
        return None
    if kind == "simlat":
        return lambda: sv.SimlatServer(model=model, variant=variant, device=device, max_batch=max_batch,
                                       max_wait_ms=max_wait_ms, cpus=cpus)
    if kind == "triton":
        if not tritonserver or not Path(tritonserver).is_file():
            raise EndpointError(f"--tritonserver: {tritonserver!r} is not a tritonserver binary")
        repo = sv.write_triton_repository(Path(workdir or "/tmp") / f"simlat-triton-{int(time.time() * 1e3)}",
                                          model=model, variant=variant, device=device, max_batch=max_batch,
                                          max_wait_ms=max_wait_ms)
        dtype, size = sv.INPUTS[model]
        return lambda: sv.TritonServer(tritonserver, repo, input_spec=f"{dtype}:{size}", cpus=cpus)
    raise EndpointError(f"--server: {kind!r} is unknown (valid: external, simlat, triton)")


def measure(*, target: Target | None, factory, declared: dict, out: Path, loads: tuple[float, ...] = (),
            repeats: int = 3, level_s: float = 6.0, warmup_s: float = 1.5, probe_s: float = 3.0,
            curve_s: float | None = None, start_rps: float = 200.0, max_probes: int = 14, procs: int | None = None,
            cpus: list[int] | None = None, max_lag_ms: float = 1.0, log=print) -> dict:
    """Calibration probes (+ validation levels when ``loads``), saved to ``out`` whatever happens."""
    if target is not None and target.protocol not in PROTOCOLS:
        raise EndpointError(f"--protocol: {target.protocol!r} is unknown (valid: {', '.join(PROTOCOLS)})")
    c = cp.Campaign(target, server_factory=factory, declared=declared, probe_s=probe_s, procs=procs, cpus=cpus, log=log,
                    max_lag_ms=max_lag_ms, warmup_s=min(1.0, probe_s / 3))
    try:
        cp.calibrate(c, start_rps=start_rps, max_probes=max_probes, repeats=repeats,
                     curve_s=curve_s or probe_s)
        if loads:
            c.data["complete"] = False
            cp.levels(c, tuple(loads), repeats=repeats, level_s=level_s, warmup_s=warmup_s)
            c.data["complete"] = True
    except (EndpointError, KeyboardInterrupt) as e:
        c.data.setdefault("warnings", []).append(f"campaign stopped early: {e}")
        cp.save(c.data, out)
        log(f"saved what was measured to {out}")
        raise
    finally:
        c.stop_server()
    cp.save(c.data, out)
    log(f"saved the campaign to {out}")
    return c.data


def service_config(model_profile: dict | None, base: Path | None = None):
    """The service a fit is relative to: the named model profile, or a negligible constant (black box)."""
    from simlat.config.service import DeterministicService, ProfileService

    if not model_profile:
        return DeterministicService(ms=1e-6)
    p = Path(model_profile["path"])
    if not p.is_absolute() and base is not None and (base / p).exists():
        p = (base / p).resolve()
    return ProfileService(path=p, model=model_profile["model"], variant=model_profile["variant"])


def serving_profile(data: dict, *, base: Path | None = None, log=None):
    """Fit a campaign and return the :class:`~simlat.endpoint.profile.ServingProfile`."""
    from simlat.endpoint.fit import fit
    from simlat.endpoint.profile import ServingProfile, Uncertainty

    d = data["declared"]
    service = service_config(d.get("model_profile"), base)
    f = fit(data, service, max_batch=int(d["max_batch"]), max_wait_ms=float(d["max_wait_ms"]),
            dispatch=d.get("dispatch", "on_free"), log=log)
    facts = f["facts"]
    probes = [{k: p[k] for k in ("kind", "rate_rps", "offered_rps", "achieved_rps", "p50_ms", "p99_ms", "stable",
                                 "lag_ok", "requests")} | {"load": p.get("load"), "metrics": p.get("metrics", {})}
              for p in data["probes"]]
    return ServingProfile(
        provenance={"target": data.get("target"), "host": data.get("host"), "measured_at": data.get("started"),
                    "simlat_version": data.get("simlat_version"), "server": d.get("server"), "device": d.get("device"),
                    "model": d.get("model"), "variant": d.get("variant"), "method": "open-loop probes from outside"},
        batching={"max_batch": int(d["max_batch"]), "max_wait_ms": float(d["max_wait_ms"]),
                  "dispatch": d.get("dispatch", "on_free")},
        model_profile=d.get("model_profile"),
        measured={"no_queue_p50_ms": facts["no_queue_latency_ms"], "capacity_rps": facts["capacity_rps"],
                  "capacity_found": facts["capacity_found"], "probes": probes},
        stack=f["params"].to_json(),
        uncertainty=Uncertainty(run_to_run=facts["run_to_run"], fit_residual_sd_log_p99=facts["fit_residual_sd_log_p99"],
                                capacity_resolution=facts["capacity_resolution"]),
        warnings=list(data.get("warnings", [])) + facts["warnings"],
    )
