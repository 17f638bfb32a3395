"""One open-loop probe: a Poisson stream at a fixed rate from several generator processes.

The stream is drawn once and split at random among the generator processes (each one sends its
share on the shared clock), so the server sees one Poisson process. A probe records every
request (scheduled, sent, received, HTTP status) and, where the server exports Prometheus metrics
(Triton does), the counters before and after. Needs numpy only (plus aiohttp in the generators).

A probe is **stable** when the endpoint kept up: completed >= 97% of offered after the warm-up,
every request answered, and latency not growing through the run (the median of the last third
of the requests at most twice the first third's). Its send-lag p99 says whether the generators
kept their schedule (``lag_ok``); a probe that did not is never used as a measurement.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from simlat.endpoint.protocol import Target
from simlat.errors import SimlatError

MAX_LAG_P99_MS = 1.0
"""A probe whose send-lag p99 exceeds this could not keep its schedule."""

TRITON_COUNTERS = ("nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
                   "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                   "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
                   "nv_inference_compute_output_duration_us")


class EndpointError(SimlatError):
    """The endpoint could not be reached, or answered with errors."""


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(metrics_url: str | None, model: str | None = None) -> dict[str, float]:
    """The Prometheus counters of interest, summed over their labels (one model's, when named)."""
    if not metrics_url:
        return {}
    try:
        _, text = _get(metrics_url)
    except (OSError, urllib.error.URLError):
        return {}
    out: dict[str, float] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$", line)
        if not m or m.group(1) not in TRITON_COUNTERS:
            continue
        if model and m.group(2) and f'model="{model}"' not in m.group(2):
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def wait_ready(target: Target, timeout_s: float = 60.0) -> None:
    """Wait until the endpoint answers a request correctly; a clear :class:`EndpointError` otherwise."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if target.ready_url:
                code, _ = _get(target.ready_url)
                if code != 200:
                    last = f"readiness {target.ready_url} answered HTTP {code}"
                    time.sleep(0.2)
                    continue
            req = urllib.request.Request(target.infer_url, data=target.bodies(1)[0],
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                    return
            except urllib.error.HTTPError as e:
                msg = e.read()[:300].decode("utf-8", "replace")
                raise EndpointError(
                    f"endpoint: {target.infer_url} answered HTTP {e.code} to a {target.protocol} request: {msg!r} "
                    f"(check --protocol, --model-name, --input-name and --input)") from None
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            time.sleep(0.2)
    raise EndpointError(f"endpoint: {target.url} is not reachable or not ready after {timeout_s:g} s ({last})")


def child_env() -> dict[str, str]:
    """Environment of a child process: simlat's own source root on the import path, never the cwd."""
    root = str(Path(__file__).resolve().parents[2])
    extra = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + extra if extra else "")}


def _cpu_sets(procs: int, cpus: list[int] | None) -> list[str]:
    if not cpus:
        return [""] * procs
    return [str(cpus[i % len(cpus)]) for i in range(procs)]


def generator_count() -> int:
    """Generator processes to use: one per spare core, at least 1, at most 4."""
    return max(1, min(4, (len(os.sched_getaffinity(0)) - 2) // 2))


def run_probe(target: Target, rate_rps: float, duration_s: float, *, warmup_s: float, seed: int,
              procs: int | None = None, cpus: list[int] | None = None, grace_s: float = 3.0) -> dict:
    """One probe; returns its raw arrays and derived numbers (see the module doc)."""
    procs = procs or (min(len(cpus), 12) if cpus else generator_count())
    rng = np.random.default_rng(seed)
    n = max(1, int(rng.poisson(rate_rps * duration_s)))
    arrivals = np.sort(rng.uniform(0.0, duration_s, n))
    share = rng.integers(0, procs, n)
    before = scrape(target.metrics_url, target.model)
    with tempfile.TemporaryDirectory(prefix="simlat-probe-") as tmp:
        tdir = Path(tmp)
        (tdir / "target.json").write_text(json.dumps(target.to_json()))
        start_at = time.perf_counter() + 0.5 + 0.1 * procs
        running = []
        for p, cpu in zip(range(procs), _cpu_sets(procs, cpus), strict=True):
            np.save(tdir / f"a{p}.npy", arrivals[share == p])
            cmd = [sys.executable, "-P", "-m", "simlat.endpoint.loadgen", "--target", str(tdir / "target.json"),
                   "--arrivals", str(tdir / f"a{p}.npy"), "--start-at", repr(start_at), "--out", str(tdir / f"r{p}.npz"),
                   "--max-s", str(duration_s + grace_s)]
            if cpu:
                cmd += ["--cpus", cpu]
            running.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env=child_env()))
        for proc in running:
            out, err = proc.communicate(timeout=duration_s + grace_s + 60)
            if proc.returncode != 0:
                raise EndpointError(f"load generator failed (exit {proc.returncode}): {err.strip()[-400:]}")
        after = scrape(target.metrics_url, target.model)
        parts = [np.load(tdir / f"r{p}.npz", allow_pickle=False) for p in range(procs)]
        rec = {k: np.empty(n, dtype=parts[0][k].dtype) for k in ("sched", "sent", "recv", "status")}
        errors: list[str] = []
        for p, part in enumerate(parts):
            for k in rec:
                rec[k][share == p] = part[k]
            errors += [str(e) for e in part["errors"]]
    rec["arrival_s"] = arrivals
    return summarize_probe(rec, rate_rps, duration_s, warmup_s,
                           metrics={k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}, errors=errors[:5])


def summarize_probe(rec: dict, rate_rps: float, duration_s: float, warmup_s: float, *, metrics: dict,
                    errors: list[str]) -> dict:
    """Derived numbers of a probe from its raw arrays (also used when replaying saved probes)."""
    t0 = np.nanmin(rec["sched"]) - rec["arrival_s"][0] if len(rec["arrival_s"]) else 0.0
    keep = rec["arrival_s"] >= warmup_s
    ok = rec["status"] == 200
    lat = (rec["recv"] - rec["sent"]) * 1e3
    lag = (rec["sent"] - rec["sched"]) * 1e3
    k_ok = keep & ok
    window = duration_s - warmup_s
    done_in = np.sum(k_ok & (rec["recv"] - t0 <= duration_s + 0.5))
    achieved = done_in / window if window > 0 else 0.0
    lk = lat[k_ok]
    thirds = np.array_split(lk, 3) if len(lk) >= 30 else []
    growing = bool(thirds) and np.median(thirds[-1]) > 2.0 * np.median(thirds[0])
    offered = keep.sum() / window if window > 0 else 0.0
    failed = int(np.sum(keep & ~ok))
    stable = bool(offered > 0 and achieved >= 0.97 * offered and failed == 0 and not growing)
    lag_p99 = float(np.nanpercentile(lag[keep], 99)) if keep.any() and np.isfinite(lag[keep]).any() else float("nan")
    def q(p):
        return (float(np.percentile(lk, p)) if len(lk) else float("nan"))
    http_errors = int(np.sum(keep & (rec["status"] != 200) & (rec["status"] > 0)))
    return {"rate_rps": float(rate_rps), "duration_s": float(duration_s), "warmup_s": float(warmup_s),
            "offered_rps": float(offered), "achieved_rps": float(achieved), "requests": int(keep.sum()),
            "failed": failed, "http_errors": http_errors, "errors": errors, "stable": stable, "growing": bool(growing),
            "lag_p99_ms": lag_p99, "lag_ok": bool(lag_p99 <= MAX_LAG_P99_MS),
            "p50_ms": q(50), "p90_ms": q(90), "p99_ms": q(99), "p999_ms": q(99.9), "mean_ms": float(lk.mean()) if len(lk) else float("nan"),
            "metrics": metrics, "raw": rec}
