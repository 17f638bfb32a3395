"""What the ``simlat`` commands call for endpoints: measure, fit a serving profile, validate, replay.

- :func:`measure`: a calibration campaign (and, for validation, the load levels) against an
  endpoint, restarting a server per repeat when simlat starts it (Triton, simlat's own server, or
  ``--server-cmd``); saves one ``.npz`` even when the campaign fails part-way. numpy only.
- :func:`serving_profile`: fit the stack from a campaign and build the versioned profile.
- :func:`validate`: measured vs predicted levels of a saved campaign, with prediction intervals.
"""

from __future__ import annotations

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
                   cpus: str = "", workdir: Path | None = None, instances: int = 1):
    """A zero-argument callable that starts a fresh server of ``kind`` (or None for an external endpoint)."""
    from simlat.endpoint import servers as sv

    cpus = cpus or sv.split_cpus()[0]
    if kind == "external":
        if server_cmd:
            if target is None:
                raise EndpointError("--server-cmd needs --endpoint: the URL the started server answers at")
            return lambda: sv.CommandServer(server_cmd, target, cpus=cpus)
        return None
    if instances > 1 and kind != "triton":
        raise EndpointError(f"--instances: {instances} needs --server triton (the generated instance_group); "
                            f"--server {kind} serves one model instance")
    if kind == "simlat":
        return lambda: sv.SimlatServer(model=model, variant=variant, device=device, max_batch=max_batch,
                                       max_wait_ms=max_wait_ms, cpus=cpus)
    if kind == "triton":
        if not tritonserver or not Path(tritonserver).is_file():
            raise EndpointError(f"--tritonserver: {tritonserver!r} is not a tritonserver binary")
        repo = sv.write_triton_repository(Path(workdir or "/tmp") / f"simlat-triton-{int(time.time() * 1e3)}",
                                          model=model, variant=variant, device=device, max_batch=max_batch,
                                          max_wait_ms=max_wait_ms, instances=instances)
        dtype, size = sv.INPUTS[model]
        return lambda: sv.TritonServer(tritonserver, repo, input_spec=f"{dtype}:{size}", cpus=cpus)
    raise EndpointError(f"--server: {kind!r} is unknown (valid: external, simlat, triton)")


def measure(*, target: Target | None, factory, declared: dict, out: Path, loads: tuple[float, ...] = (),
            repeats: int = 3, level_s: float = 6.0, warmup_s: float = 1.5, probe_s: float = 3.0,
            curve_s: float | None = None, start_rps: float = 200.0, max_probes: int = 14, procs: int | None = None,
            cpus: list[int] | None = None, max_lag_ms: float = 1.0, log=print) -> dict:
    """Calibration probes (+ validation levels when ``loads``), saved to ``out`` whatever happens."""
    if cpus is None and factory is not None:
        from simlat.endpoint.servers import split_cpus

        cpus = split_cpus()[1]
    if target is not None and target.protocol not in PROTOCOLS:
        raise EndpointError(f"--protocol: {target.protocol!r} is unknown (valid: {', '.join(PROTOCOLS)})")
    import signal

    def _term(signum, frame):  # a timeout or kill -TERM: stop like Ctrl-C, so what was measured is saved
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, _term)
    c = cp.Campaign(target, server_factory=factory, declared=declared, probe_s=probe_s, procs=procs, cpus=cpus, log=log,
                    max_lag_ms=max_lag_ms, warmup_s=min(1.0, probe_s / 3))
    try:
        cp.calibrate(c, start_rps=start_rps, max_probes=max_probes, repeats=repeats,
                     curve_s=curve_s or probe_s)
        cp.save(c.data, out)
        if loads:
            c.data["complete"] = False
            cp.levels(c, tuple(loads), repeats=repeats, level_s=level_s, warmup_s=warmup_s)
            c.data["complete"] = True
    except (EndpointError, KeyboardInterrupt) as e:
        c.data.setdefault("warnings", []).append(f"campaign stopped early: {type(e).__name__} {e}")
        c.stop_server()
        cp.save(c.data, out)
        log(f"saved what was measured to {out}")
        if isinstance(e, KeyboardInterrupt):
            raise EndpointError(f"campaign interrupted ({e}); what was measured is in {out}") from None
        raise
    finally:
        c.stop_server()
        signal.signal(signal.SIGTERM, old)
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
    """Fit a campaign and return the :class:`~simlat.profiles.serving.ServingProfile`."""
    from simlat.endpoint.fit import fit
    from simlat.profiles.serving import ServingProfile, Uncertainty

    if not data.get("capacity_found", False):
        raise EndpointError("serving profile: the campaign's open-loop capacity was not found, so no profile is written "
                            f"(a fit on a lower bound would be wrong): {'; '.join(data.get('warnings', []))}")
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
                                fit_residual_by_load=facts["fit_residual_by_load"],
                                capacity_resolution=facts["capacity_resolution"], model_share=facts["model_share"]),
        warnings=list(data.get("warnings", [])) + facts["warnings"],
    )


def target_from(url: str, protocol: str, model_name: str, input_name: str, input_spec: str,
                metrics_url: str | None) -> Target:
    """A :class:`Target` from command-line values, checked."""
    if protocol not in PROTOCOLS:
        raise EndpointError(f"--protocol: {protocol!r} is unknown (valid: {', '.join(PROTOCOLS)})")
    if not url.startswith(("http://", "https://")):
        raise EndpointError(f"--endpoint: {url!r} must be an http:// or https:// URL")
    dtype, _, size = input_spec.partition(":")
    if dtype not in ("float32", "int64") or not size.isdigit() or int(size) < 1:
        raise EndpointError(f"--input: {input_spec!r} must be DTYPE:SIZE with DTYPE float32 or int64, e.g. float32:512")
    return Target(url=url, protocol=protocol, model=model_name, input_name=input_name, input_spec=input_spec,
                  metrics_url=metrics_url)


def print_profile(profile, log=print) -> None:
    """A few lines about a fitted serving profile."""
    m, s = profile.measured, profile.stack
    log(f"no-queue latency p50 {m['no_queue_p50_ms']:.3f} ms; open-loop capacity {m['capacity_rps']:.0f} req/s"
        + ("" if m["capacity_found"] else " (NOT found: a lower bound)"))
    log(f"fitted stack: per batch {s['batch_overhead_ms']:.3f} ms, per request {s['item_ms']:.4f} ms, "
        f"serial loop {s['loop_ms']:.4f} ms per request, pure delay median {sorted(s['delay_ms'])[len(s['delay_ms']) // 2]:.3f} ms")
    for r in profile.uncertainty.run_to_run:
        log(f"run-to-run spread of p99 at {r.load:.2f} x capacity: {r.sd_log_p99:.1%} (sd of log, {r.repeats} repeats)")
    for w in profile.warnings:
        log(f"warning: {w}")


def calibrate_endpoint(url: str, *, protocol: str, model_name: str, input_name: str, input_spec: str,
                       metrics_url: str | None, max_batch: int, max_wait_ms: float, model_profile: str | None,
                       server_cmd: str | None, start_rps: float, max_probes: int, probe_s: float, repeats: int,
                       out: Path, max_lag_ms: float = 1.0, log=print):
    """``simlat calibrate --endpoint``: measure, save the raw campaign beside ``out``, fit, write the profile."""
    from simlat.profiles.serving import write

    out = Path(out)
    if out.is_dir():
        raise EndpointError(f"--out: {out} is a directory; name the serving profile file, e.g. calibration/serving.json")
    target = target_from(url, protocol, model_name, input_name, input_spec, metrics_url)
    mp = parse_model_profile(model_profile)
    if mp and not Path(mp["path"]).is_file():
        raise EndpointError(f"--model-profile: {mp['path']}: no such calibration profile")
    factory = server_factory("external", model=model_name, variant="", device="", max_batch=max_batch,
                             max_wait_ms=max_wait_ms, server_cmd=server_cmd, target=target)
    declared = {"server": server_cmd or "external", "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                "dispatch": "on_free", "model_profile": mp}
    raw = out.with_suffix(".campaign.npz")
    data = measure(target=target, factory=factory, declared=declared, out=raw, probe_s=probe_s, start_rps=start_rps,
                   max_probes=max_probes, repeats=repeats, max_lag_ms=max_lag_ms, log=log)
    try:
        profile = serving_profile(data, base=Path.cwd())
    except EndpointError as err:
        raise EndpointError(f"{err}. The probes are in {raw}") from None
    write(profile, out)
    print_profile(profile, log)
    log(f"serving profile written to {out} (raw probes in {raw})")
    return profile


def compare(data: dict, *, base: Path, service=None, log=print) -> tuple[list, dict, dict]:
    """Fit on the probes and compare the levels of a saved campaign (offline)."""
    from simlat.endpoint.validation import summary, validate_campaign

    d = data["declared"]
    service = service or service_config(d.get("model_profile"), base)
    rows, facts = validate_campaign(data, service, max_batch=int(d["max_batch"]), max_wait_ms=float(d["max_wait_ms"]),
                                    dispatch=d.get("dispatch", "on_free"))
    return rows, facts, summary(rows)


def label(d: dict) -> str:
    """Short name of a measured configuration, e.g. ``triton mlp_ranker bf16 b32 w0``."""
    return (f"{d.get('server', 'endpoint')} {d.get('model', '')} {d.get('variant', '')} b{d['max_batch']} "
            f"w{float(d['max_wait_ms']):g}").replace("  ", " ")


def report_markdown(campaigns: list[tuple[dict, list, dict, dict]]) -> str:
    """The validation table (Markdown) for several compared campaigns, with their summaries."""
    from simlat.endpoint.validation import TABLE_HEAD, table

    lines = [TABLE_HEAD]
    for data, rows, _facts, _s in campaigns:
        lines += table(rows, label(data["declared"]))
    lines.append("")
    for data, _rows, facts, s in campaigns:
        if s.get("levels"):
            lines.append(f"- {label(data['declared'])}: capacity measured {facts['capacity_rps']:.0f} req/s, predicted "
                         f"{facts['predicted_capacity_rps']:.0f} ({facts['predicted_capacity_rps'] / facts['capacity_rps'] - 1:+.1%}); "
                         f"coverage {s['coverage']:.0%} of {s['levels']}; median |p99 error| {s['median_abs_err_p99']:.1%}, "
                         f"worst {s['worst_err_p99']:+.1%}; median PI half-width at loads <= 0.7 {s['median_half_width_le_0_7']:.0%}")
    return "\n".join(lines)


def _loads(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise EndpointError(f"--loads: {text!r} must be comma-separated fractions, e.g. 0.2,0.5,0.7,0.85") from None
    if not out or any(not 0 < x < 1.5 for x in out):
        raise EndpointError(f"--loads: {text!r}: every load must be a fraction of capacity in (0, 1.5)")
    return out


def _replay_cli(replay, experiment, base: Path, json_out: bool, log) -> None:
    """``simlat validate --replay``: fit each saved campaign on its probes and compare its levels."""
    import json

    results = []
    for path in replay:
        if not Path(path).is_file():
            raise EndpointError(f"--replay: {path}: no such campaign file")
        data = cp.load(Path(path))
        if not data.get("levels"):
            raise EndpointError(f"--replay: {path} has no validation levels (a calibration-only campaign?)")
        service = None
        if experiment is not None:
            from simlat.config import load_experiment

            service = load_experiment(experiment).service
        rows, facts, s = compare(data, base=base, service=service)
        results.append((data, rows, facts, s))
    if json_out:
        log(json.dumps([{"config": label(d["declared"]), "summary": s, "fit": {k: v for k, v in f.items() if k != "params"},
                         "levels": [r.to_json() for r in rows]} for d, rows, f, s in results], default=float))
    else:
        log(report_markdown(results))


def validate_cli(*, experiment, loads, model, device, level_s, warmup_s, probe_s, start_rps, max_probes, max_lag_ms,
                 json_out, out, endpoint, server, tritonserver, variant, server_cmd, protocol, model_name, input_spec,
                 metrics_url, repeats, replay, measure_only, max_batch, max_wait_ms, model_profile, instances=1,
                 cold_start=None, first=1000, cold_rate=500.0, predict_with=None, log=print) -> None:
    """``simlat validate`` with --endpoint / --server / --replay / --cold-start (see the command's help)."""

    base = Path.cwd()
    if replay and predict_with is not None:
        _transfer_cli(replay, predict_with, json_out, log)
        return
    if predict_with is not None:
        raise EndpointError("--predict-with needs --replay CAMPAIGN.npz (the measured campaigns to predict)")
    if replay:
        _replay_cli(replay, experiment, base, json_out, log)
        return
    if cold_start:
        _cold_start_cli(cold_start, server=server, model=model, device=device, max_batch=max_batch or 1,
                        max_wait_ms=max_wait_ms or 0.0, tritonserver=tritonserver, first=first, rate_rps=cold_rate,
                        repeats=repeats, out=out, log=log)
        return
    mb, mw, served_model, served_variant, mp = max_batch, max_wait_ms, model, variant, parse_model_profile(model_profile)
    if not measure_only:
        if experiment is None:
            raise EndpointError("validate: name an experiment file (its batching and model profile are predicted)")
        from simlat.config import load_experiment

        exp = load_experiment(experiment)
        b = exp.batching
        mb = getattr(b, "max_batch_size", 1)
        mw = getattr(b, "max_wait_ms", 0.0)
        if exp.service.kind == "profile":
            served_model = served_model or exp.service.model
            served_variant = served_variant or exp.service.variant
            mp = {"path": str(exp.service.path), "model": exp.service.model, "variant": exp.service.variant}
    if mb is None or mw is None:
        raise EndpointError("validate --measure-only: --max-batch and --max-wait-ms are required")
    if out is None:
        raise EndpointError("validate: --out FILE.npz is required with --endpoint or --server (the raw measurements replay offline)")
    target = None
    if endpoint:
        target = target_from(endpoint, protocol, model_name, input_name="x", input_spec=input_spec, metrics_url=metrics_url)
        factory = server_factory("external", model=model_name, variant="", device=device, max_batch=mb, max_wait_ms=mw,
                                 server_cmd=server_cmd, target=target)
    else:
        if not served_model:
            raise EndpointError("validate: --model is required with --server")
        factory = server_factory(server, model=served_model, variant=served_variant or "fp32", device=device,
                                 max_batch=mb, max_wait_ms=mw, tritonserver=tritonserver, instances=instances)
    declared = {"server": server or "external", "model": served_model, "variant": served_variant or "fp32",
                "device": device, "max_batch": mb, "max_wait_ms": mw, "dispatch": "on_free", "model_profile": mp,
                "instances": instances}
    data = measure(target=target, factory=factory, declared=declared, out=Path(out), loads=_loads(loads), repeats=repeats,
                   level_s=level_s, warmup_s=warmup_s, probe_s=probe_s, curve_s=level_s, start_rps=start_rps,
                   max_probes=max_probes, max_lag_ms=max_lag_ms, log=log)
    if measure_only:
        return
    rows, facts, s = compare(data, base=base)
    log(report_markdown([(data, rows, facts, s)]))


def _transfer_cli(replay, predict_with, json_out: bool, log) -> None:
    """``simlat validate --replay C.npz --predict-with EXP.yaml``: each campaign predicted from the
    experiment alone (:mod:`simlat.endpoint.transfer`)."""
    import json

    from simlat.config import load_experiment
    from simlat.endpoint import transfer

    exp = load_experiment(predict_with)
    out = []
    for path in replay:
        if not Path(path).is_file():
            raise EndpointError(f"--replay: {path}: no such campaign file")
        data = cp.load(Path(path))
        rows, facts = transfer.predict_campaign(data, exp)
        out.append((f"{label(data['declared'])} x{facts['instances']}", rows, facts))
    if json_out:
        log(json.dumps([{"config": name, "facts": facts, "summary": transfer.summarize(rows),
                         "probes": [r.to_json() for r in rows]} for name, rows, facts in out], default=float))
        return
    for name, rows, facts in out:
        log("\n".join(transfer.markdown(name, rows, facts)))
        log("")


def _cold_start_cli(variants: str, *, server, model, device, max_batch, max_wait_ms, tritonserver, first, rate_rps,
                    repeats, out, log) -> None:
    """``simlat validate --server K --cold-start v1,v2 --out F.json``: a real replica's cold start per variant."""
    from simlat.endpoint import coldstart

    if not server:
        raise EndpointError("--cold-start needs --server triton|simlat (a server simlat starts, so it can time the start)")
    if not model:
        raise EndpointError("--cold-start needs --model (the built-in model to serve)")
    if out is None or Path(out).suffix != ".json":
        raise EndpointError(f"--out: {out!r}: --cold-start writes a JSON file; name one ending in .json")
    names = [v.strip() for v in variants.split(",") if v.strip()]
    if not names:
        raise EndpointError(f"--cold-start: {variants!r} names no variant")
    factories = {v: server_factory(server, model=model, variant=v, device=device, max_batch=max_batch,
                                   max_wait_ms=max_wait_ms, tritonserver=tritonserver) for v in names}
    declared = {"server": server, "model": model, "device": device, "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                "first": first, "rate_rps": rate_rps, "repeats": repeats}

    def save(results: list[dict]) -> None:
        coldstart.write(Path(out), declared=declared, results=results)

    save(coldstart.measure_cold_start(factories, first=first, rate_rps=rate_rps, repeats=repeats, log=log,
                                      on_result=save))
    log(f"cold starts written to {out}")


def profile_from_campaign(path: Path, out: Path, log=print):
    """``simlat calibrate --campaign``: fit a saved campaign's probes (never its levels) into a serving profile."""
    from simlat.profiles.serving import write

    if not Path(path).is_file():
        raise EndpointError(f"--campaign: {path}: no such campaign file")
    if Path(out).is_dir():
        raise EndpointError(f"--out: {out} is a directory; name the serving profile file")
    data = cp.load(Path(path))
    profile = serving_profile(data, base=Path.cwd())
    write(profile, Path(out))
    print_profile(profile, log)
    log(f"serving profile written to {out}")
    return profile
