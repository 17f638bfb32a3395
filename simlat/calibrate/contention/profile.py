"""The contention profile: built from a campaign's records, checked, saved, loaded and described.

Schema history (bump ``SCHEMA_VERSION`` and add a line for every change of meaning or shape):

- 1 (2026-12-05): first version. Per mode and set of members run at once: per-member statistics
  of the batch time alone and together (p50, p90, p99, mean in ms, n), the slowdown (together
  mean / alone mean) and its spread between repeats (or sub-windows); the modes that could not
  be measured, with the reason.

Plain JSON and plain checks (no pydantic): the file is written on GPU hosts that have only torch
and numpy.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from simlat.calibrate.contention import gpu, overlap
from simlat.calibrate.contention.campaign import Results, Settings
from simlat.calibrate.contention.spec import MODES, MeasureSet
from simlat.errors import SimlatError

SCHEMA = "simlat.contention"
SCHEMA_VERSION = 1
STATS = ("p50", "p90", "p99", "mean", "n")
CPU_NOTE = "processes on cpu: k separate processes share the host's CPUs (each with its own thread count)"
MODE_NOTES = {
    "processes": "processes: k separate processes, each with its own CUDA context; the GPU time-slices between them",
    "mps": "mps: k separate processes as clients of one CUDA MPS server (kernels of different processes may run at once)",
    "streams": "streams: one process, k Python threads each launching its batches on its own CUDA stream and waiting "
               "for that stream; the interpreter lock is part of what this mode measures",
}


def _stats(recs: list[np.ndarray]) -> dict:
    return overlap.summary(np.concatenate([overlap.durations_ms(r) for r in recs]))


def measurement(mode: str, s: MeasureSet, res: Results, window_s: float) -> dict | None:
    """One measurement entry of the file, or None if the set was not measured in ``mode``."""
    if s.k == 1:
        alone = res.alone.get((mode, s.members[0]), {})
        if not alone:
            return None
        st = _stats(list(alone.values()))
        return {"mode": mode, "members": [s.members[0].to_json()], "alone_ms": [st], "together_ms": [st],
                "slowdown": [1.0], "slowdown_sd": [0.0], "repeats": len(alone), "window_s": window_s}
    tog = res.together.get((mode, s), {})
    if not tog:
        return None
    reps = sorted(tog)
    alone_ms, together_ms, slow, sd = [], [], [], []
    for j, m in enumerate(s.members):
        a = [res.alone[(mode, m)][r] for r in reps]
        t = [tog[r][j] for r in reps]
        alone_ms.append(_stats(a))
        together_ms.append(_stats(t))
        ratio, spread = overlap.slowdown(a, t)
        slow.append(ratio)
        sd.append(spread)
    return {"mode": mode, "members": [m.to_json() for m in s.members], "alone_ms": alone_ms, "together_ms": together_ms,
            "slowdown": slow, "slowdown_sd": sd, "repeats": len(reps), "window_s": window_s}


def build(res: Results, sets: list[MeasureSet], modes: list[str], settings: Settings, *, command: str,
          elapsed_s: float, source_profile: str | None = None, notes: list[str] | None = None) -> dict:
    """The whole file as a dict (already checked by :func:`check`)."""
    from simlat import __version__

    env = res.env
    measurements = []
    for mode in modes:
        for s in sets:
            entry = measurement(mode, s, res, settings.window_s)
            if entry is not None:
                measurements.append(entry)
    failed = [{"mode": mode, "reason": f"{label}: {reason}"} for (mode, label), reason in res.failed.items()
              if not any(u["mode"] == mode for u in res.unavailable)]
    cuda = f", CUDA {env['cuda']}" if env.get("cuda") else ""
    prov_notes = [
        *(notes or []),
        f"simlat {__version__}; {env.get('threads', '?')} CPU threads per process{cuda}; {env.get('cpu_count', '?')} CPUs"
        f" ({env.get('cpu_model') or '?'}); the campaign took {elapsed_s:.0f} s",
        f"each window: {settings.window_s:g} s of back-to-back batches (host-synchronized per batch) after a common start "
        f"on the host's monotonic clock; together = batches that started and ended while all k were measuring; "
        f"alone = the same member alone in the same session, in the same repeat; {settings.repeats} repeat(s)",
        *(MODE_NOTES[m] if settings.device == "cuda" else CPU_NOTE for m in modes if any(e["mode"] == m for e in measurements)),
        *env.get("notes", []),
        *res.notes,
        *(n for n in (gpu.clock_note(m, res.clocks.get((m, "alone"), []), res.clocks.get((m, "together"), []))
                      for m in modes) if n),
    ]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "provenance": {
            "device_name": env.get("device_name") or settings.device,
            "device": settings.device,
            "host": env.get("hostname") or socket.gethostname(),
            "torch": env.get("torch") or "?",
            "driver": env.get("driver"),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "notes": prov_notes,
        },
    }
    if source_profile:
        data["source_profile"] = source_profile
    data["measurements"] = measurements
    data["unavailable"] = res.unavailable + failed
    check(data, "calibration result")
    return data


def _fail(source: str, where: str, value: Any, rule: str) -> SimlatError:
    return SimlatError(f"{source}: {where}: {value!r} is invalid: {rule}")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def check(data: Any, source: str) -> None:
    """Raise :class:`SimlatError` (path, value, rule) unless ``data`` is a contention profile of a known version."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SimlatError(f"{source}: not a contention profile (its \"schema\" is not {SCHEMA!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise _fail(source, "schema_version", data.get("schema_version"), f"this simlat reads version {SCHEMA_VERSION}")
    prov = data.get("provenance")
    if not isinstance(prov, dict):
        raise _fail(source, "provenance", prov, "must be an object")
    for key in ("device_name", "device", "host", "torch", "created", "command"):
        if not isinstance(prov.get(key), str):
            raise _fail(source, f"provenance.{key}", prov.get(key), "must be a string")
    if not isinstance(prov.get("notes", []), list):
        raise _fail(source, "provenance.notes", prov.get("notes"), "must be a list of strings")
    if "source_profile" in data and not isinstance(data["source_profile"], str):
        raise _fail(source, "source_profile", data["source_profile"], "must be a string (a file name)")
    ms = data.get("measurements")
    if not isinstance(ms, list):
        raise _fail(source, "measurements", ms, "must be a list")
    for i, m in enumerate(ms):
        _check_measurement(m, f"measurements[{i}]", source)
    un = data.get("unavailable", [])
    if not isinstance(un, list) or not all(isinstance(u, dict) and u.get("mode") in MODES and isinstance(u.get("reason"), str)
                                           for u in un):
        raise _fail(source, "unavailable", un, f"must be a list of {{mode: one of {', '.join(MODES)}, reason: text}}")


def _check_measurement(m: Any, at: str, source: str) -> None:
    if not isinstance(m, dict):
        raise _fail(source, at, m, "must be an object")
    if m.get("mode") not in MODES:
        raise _fail(source, f"{at}.mode", m.get("mode"), f"must be one of {', '.join(MODES)}")
    members = m.get("members")
    if not isinstance(members, list) or not members:
        raise _fail(source, f"{at}.members", members, "must be a non-empty list")
    for j, mem in enumerate(members):
        ok = (isinstance(mem, dict) and isinstance(mem.get("model"), str) and isinstance(mem.get("variant"), str)
              and isinstance(mem.get("batch_size"), int) and mem["batch_size"] >= 1)
        if not ok:
            raise _fail(source, f"{at}.members[{j}]", mem, "must be {model: name, variant: name, batch_size: integer >= 1}")
    k = len(members)
    for key in ("alone_ms", "together_ms", "slowdown", "slowdown_sd"):
        if not isinstance(m.get(key), list) or len(m[key]) != k:
            raise _fail(source, f"{at}.{key}", m.get(key), f"must hold one entry per member ({k})")
    for key in ("alone_ms", "together_ms"):
        for j, st in enumerate(m[key]):
            if not isinstance(st, dict) or not all(_num(st.get(q)) for q in STATS) or st["n"] < 1:
                raise _fail(source, f"{at}.{key}[{j}]", st, "must be {p50, p90, p99, mean: ms, n: count >= 1}")
            if not st["p50"] <= st["p90"] <= st["p99"]:
                raise _fail(source, f"{at}.{key}[{j}]", st, "quantiles must not decrease (p50 <= p90 <= p99)")
    for j, (x, sd) in enumerate(zip(m["slowdown"], m["slowdown_sd"], strict=True)):
        if not _num(x) or x <= 0:
            raise _fail(source, f"{at}.slowdown[{j}]", x, "must be a number > 0")
        if not _num(sd) or sd < 0:
            raise _fail(source, f"{at}.slowdown_sd[{j}]", sd, "must be a number >= 0")
    if k == 1 and m["slowdown"] != [1.0]:
        raise _fail(source, f"{at}.slowdown", m["slowdown"], "a single member's slowdown is 1 by definition")
    if not isinstance(m.get("repeats"), int) or m["repeats"] < 1:
        raise _fail(source, f"{at}.repeats", m.get("repeats"), "must be an integer >= 1")
    if not _num(m.get("window_s")) or m["window_s"] <= 0:
        raise _fail(source, f"{at}.window_s", m.get("window_s"), "must be a number of seconds > 0")


def save(data: dict, path: str | Path) -> None:
    """Write the file atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def load(path: str | Path) -> dict:
    """Read and check a contention profile."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise SimlatError(f"{path}: cannot read: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise SimlatError(f"{path}: not JSON: {err}") from err
    check(data, str(path))
    return data


def is_contention(path: str | Path) -> bool:
    """Whether a file says it is a contention profile (``"schema": "simlat.contention"``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("schema") == SCHEMA


def _label(members: list[dict]) -> str:
    labels = [f"{m['model']}/{m['variant']}@{m['batch_size']}" for m in members]
    if len(set(labels)) == 1:
        return f"{labels[0]} x{len(labels)}"
    return " + ".join(labels)


def describe(path: str | Path) -> str:
    """A contention profile as Markdown: one row per mode and set, per-member slowdown ± spread."""
    data = load(path)
    pv = data["provenance"]
    lines = [f"### {path}", "", f"Contention on {pv['device_name']} ({pv['device']}), driver {pv.get('driver') or '-'},"
             f" torch {pv['torch']}, {pv['created']}.", "",
             "| mode | members | k | alone mean ms | together mean ms | together p99 ms | slowdown (± sd) | repeats |",
             "|---|---|---|---|---|---|---|---|"]
    for m in data["measurements"]:
        k = len(m["members"])
        alone = ", ".join(dict.fromkeys(f"{s['mean']:.3g}" for s in m["alone_ms"]))
        tog = ", ".join(f"{s['mean']:.3g}" for s in m["together_ms"])
        p99 = ", ".join(f"{s['p99']:.3g}" for s in m["together_ms"])
        slow = ", ".join(f"{x:.2f} ± {sd:.2f}" for x, sd in zip(m["slowdown"], m["slowdown_sd"], strict=True))
        lines.append(f"| {m['mode']} | {_label(m['members'])} | {k} | {alone} | {tog} | {p99} | {slow} | {m['repeats']} |")
    for u in data.get("unavailable", []):
        lines += ["", f"Not measured ({u['mode']}): {u['reason']}"]
    return "\n".join(lines) + "\n"
