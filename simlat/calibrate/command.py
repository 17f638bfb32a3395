"""The logic of ``simlat calibrate``: check the request, run the tasks with a progress bar, write the profile.

Importable and testable without the CLI; imports neither torch nor the simulator (workers do the
measuring). ``calibrate(...)`` returns the validated :class:`simlat.profiles.ServiceProfile`.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path

from simlat.calibrate.budget import get_budget
from simlat.calibrate.models import BUILTIN, ModelRef, check_importable, resolve_model
from simlat.calibrate.plan import Task, make_tasks, parse_batch_sizes
from simlat.calibrate.variants import select_variants
from simlat.errors import SimlatError, excerpt

DEVICES = ("cpu", "cuda")


def resolve_models(text: str, input_shape: str | None, seq_len: int) -> list[ModelRef]:
    """``--model``: one name or path, a comma-separated list, or ``builtin`` for the three built-in models."""
    names = list(BUILTIN) if text == "builtin" else [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise SimlatError("--model: give a model name or path (built-in: " + ", ".join(BUILTIN) + ")")
    refs = [resolve_model(n, input_shape, seq_len) for n in names]
    for r in refs:
        if r.kind == "factory":  # checked here, before any worker starts
            check_importable(r.source.partition(":")[0], r.source)
    seen = set()
    for r in refs:
        if r.name in seen:
            raise SimlatError(f"--model: {r.name!r} is given twice")
        seen.add(r.name)
    return refs


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


def calibrate(
    *,
    device: str,
    model: str,
    out: str | Path,
    variants: list[str] | None = None,
    batch_sizes: str | None = None,
    threads: int | None = None,
    budget: str = "normal",
    input_shape: str | None = None,
    seq_len: int = 64,
    time_limit_s: float | None = None,
    shared_machine: bool = False,
    notes: list[str] | None = None,
    progress: bool = True,
    command: str | None = None,
    overheads: bool = True,
    processes: int | None = None,
):
    """Measure ``model`` under ``variants`` on ``device`` and write the profile to ``out``."""
    from simlat import __version__
    from simlat.calibrate.assemble import build_profile_dict
    from simlat.calibrate.runner import run_tasks
    from simlat.profiles.levels import SCHEMA_VERSION, default_quantile_levels

    if device not in DEVICES:
        raise SimlatError(f"--device: {device!r} is not a device; valid: {', '.join(DEVICES)}")
    if threads is not None and threads < 1:
        raise SimlatError(f"--threads: {threads} is invalid: it must be >= 1")
    if time_limit_s is not None and time_limit_s <= 0:
        raise SimlatError(f"--time-limit: {time_limit_s} is invalid: it must be > 0 seconds")
    bud = get_budget(budget)
    if processes is not None:
        if processes < 1:
            raise SimlatError(f"--processes: {processes} is invalid: it must be >= 1")
        bud = dataclasses.replace(bud, processes=processes)
    if time_limit_s is None:
        time_limit_s = bud.default_time_limit_s
    names = select_variants(device, variants)
    refs = resolve_models(model, input_shape, seq_len)
    sizes = parse_batch_sizes(batch_sizes)
    out = Path(out)
    if out.suffix != ".json":
        raise SimlatError(f"--out: {str(out)!r} is invalid: a profile is a .json file")
    tasks = make_tasks(device, refs, names, sizes, bud, overheads=overheads)
    t0 = time.time()
    bar = _progress_bar(progress)
    handles: dict[int, int] = {}

    def on_progress(task: Task, label: str) -> None:
        h = handles.get(id(task))
        if h is not None:
            bar.update(h, advance=1, description=f"{task.label} batch {label}" if task.kind == "variant" else task.label)

    def on_done(task: Task, ran: int) -> None:
        if not progress:  # a plain log line per task instead of the bar
            print(f"[{time.time() - t0:6.1f} s] {task.label}: {'done' if ran else 'skipped'}", file=sys.stderr, flush=True)
        h = handles.get(id(task))
        if h is not None:
            bar.update(h, completed=bar.tasks[h].total, description=task.label)

    with bar:
        for t in tasks:
            handles[id(t)] = bar.add_task(t.label, total=max(len(t.batch_sizes), 1))
        env_out = run_tasks(tasks[:1], budget=bud, threads=threads, time_limit_s=None,  # always: the device check
                            on_progress=on_progress, on_task_done=on_done)
        env = env_out[0].result
        if device == "cuda" and not env.get("cuda_available"):
            raise SimlatError(f"--device cuda: no CUDA GPU is visible here (torch {env.get('torch', '?')} reports none)")
        if env.get("status") == "skipped":
            raise SimlatError(f"could not read the device: {env.get('reason')}")
        left = None if time_limit_s is None else max(time_limit_s - (time.time() - t0), 1.0)
        rest = run_tasks(tasks[1:], budget=bud, threads=threads, time_limit_s=left, on_progress=on_progress, on_task_done=on_done,
                         skip_reasons=_known_skips(device, env))
    cmd = command or shlex.join(["simlat", *sys.argv[1:]])
    data = build_profile_dict(env_out + rest, device=device, variants=names, levels=default_quantile_levels(), budget=bud,
                              command=cmd, simlat_version=__version__, threads=threads, shared=shared_machine,
                              notes=list(notes or []), elapsed_s=time.time() - t0)
    data["schema_version"] = SCHEMA_VERSION
    try:
        from simlat.profiles.schema import parse_profile, save_profile
    except ModuleNotFoundError as err:  # a GPU host with torch and numpy, not the simulator's pydantic
        if err.name != "pydantic":
            raise
        return _write_unvalidated(data, out)
    profile = parse_profile(data, source="calibration result")
    measured = [v for m in profile.models for v in m.variants if v.status == "ok"]
    cut_short = [v for m in profile.models for v in m.variants if "time limit" in (v.reason or "")]
    if not measured and not cut_short:  # a --time-limit that ran out is recorded, not an error
        reasons = sorted({excerpt(v.reason or "no reason recorded", 160) for m in profile.models for v in m.variants})
        raise SimlatError(f"no variant could be measured; nothing written to {out}:", reasons[:5])
    save_profile(profile, out)
    return profile


def _write_unvalidated(data: dict, out: Path) -> None:
    """The profile as measured, written without the schema check (pydantic is not installed here); it is
    checked when first read (``simlat profile describe FILE`` on a machine with simlat installed)."""
    import json

    data["provenance"].setdefault("notes", []).append("written without the schema check (no pydantic on the measuring host)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, default=float) + "\n")
    print(f"pydantic is not installed here: {out} written without the schema check; run `simlat profile describe "
          f"{out}` where simlat is installed to check it", file=sys.stderr)


def _known_skips(device: str, env: dict) -> dict[str, str]:
    """Variants the device check already shows cannot run here (no worker process is started for
    them, and their weight does not hold back the time of the others)."""
    skips: dict[str, str] = {}
    providers = env.get("onnxruntime_providers")
    want = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if providers is not None and want not in providers:
        skips["onnxruntime"] = f"onnxruntime {env.get('onnxruntime')} has no {want} (providers: {', '.join(providers)})"
    if "torchao" in env and env.get("torchao") is None:  # the device check tried to import it
        for v in ("ao_int8_weight_only", "ao_fp8_weight_only"):
            skips[v] = "torchao is not installed or failed to import (found by the device check)"
    return skips


def summary_rows(profile) -> list[tuple[str, str, str, str, str, str]]:
    """(model, variant, status, batch 1 p50 ms, largest batch and its p50 ms, note) per variant, for printing."""
    rows = []
    levels = profile.quantile_levels
    i50 = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))
    for m in profile.models:
        for v in m.variants:
            if v.status != "ok":
                rows.append((m.name, v.name, "skipped", "", "", (v.reason or "")[:70]))
                continue
            first, last = v.steady[0], v.steady[-1]
            rows.append((m.name, v.name, "ok", f"{first.dist.quantiles_ms[i50]:.4g} (b={first.batch_size})",
                         f"{last.dist.quantiles_ms[i50]:.4g} (b={last.batch_size})", "; ".join(v.notes)[:70]))
    return rows
