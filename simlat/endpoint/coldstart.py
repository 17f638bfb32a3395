"""A real replica's cold start, measured from outside: process start to first response, then the
latency of its first requests against the same server's steady state.

For each variant and repeat: a fresh server process is started (Triton with the generated model
repository, or simlat's own server) and polled with real inference requests; ``ready_s`` is the time
from spawning the process to the first correct answer (process start, imports, model build, the
server's own warm-up, the first call). Then ``first`` requests are sent open loop at ``rate_rps``
(a Poisson stream, as the probes send it), and right after, the same number again: the *steady*
reference. Every latency is kept in arrival order, so the profile can say how many of the first
requests were slower than steady state, and by how much.

Repeats start the server again in the same machine: the first start pays cold file and compiler
caches, later ones find them warm (as a replacement replica on a node that served before does).

Writes ``simlat.coldstart`` v1 JSON. Needs numpy (and aiohttp in the load generators), not the
simulator, so it runs on a GPU host beside nothing but torch.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from simlat.endpoint.probe import EndpointError, run_probe

SCHEMA = "simlat.coldstart"
SCHEMA_VERSION = 1
SLOW_FACTOR = 2.0
"""A first request counts as slow when its latency exceeds this many times the steady p99."""


def _q(x: np.ndarray, p: float) -> float:
    return float(np.percentile(x, p)) if len(x) else float("nan")


def _lat_ms(probe: dict) -> np.ndarray:
    raw = probe["raw"]
    order = np.argsort(raw["arrival_s"], kind="stable")
    ok = raw["status"][order] == 200
    lat = (raw["recv"][order] - raw["sent"][order]) * 1e3
    return np.where(ok, lat, np.nan)


def summarize_run(ready_s: float, first_ms: np.ndarray, steady_ms: np.ndarray) -> dict:
    """Numbers of one start: time to ready, first-request percentiles against steady state."""
    f = first_ms[np.isfinite(first_ms)]
    s = steady_ms[np.isfinite(steady_ms)]
    steady_p99 = _q(s, 99)
    slow = f > SLOW_FACTOR * steady_p99 if np.isfinite(steady_p99) else np.zeros(len(f), bool)
    last_slow = int(np.nonzero(slow)[0][-1]) + 1 if slow.any() else 0
    return {"ready_s": round(float(ready_s), 4),
            "first": {"n": int(len(first_ms)), "failed": int(np.sum(~np.isfinite(first_ms))),
                      "first_ms": float(first_ms[0]) if len(first_ms) else float("nan"),
                      "p50_ms": _q(f, 50), "p99_ms": _q(f, 99), "max_ms": float(f.max()) if len(f) else float("nan"),
                      "slow": int(slow.sum()), "last_slow_index": last_slow},
            "steady": {"n": int(len(steady_ms)), "p50_ms": _q(s, 50), "p99_ms": _q(s, 99)}}


def measure_cold_start(factories: dict, *, first: int = 1000, rate_rps: float = 500.0, repeats: dict | int = 2,
                       seed: int = 0, log=print, on_result=None) -> list[dict]:
    """Start each variant's server ``repeats`` times (``factories``: variant -> zero-argument server
    starter) and measure it; a variant that fails to start is recorded with its error. ``on_result``
    is called with the results so far after every start (so a run cut short keeps what it measured)."""
    results = []
    for variant, factory in factories.items():
        n_rep = repeats if isinstance(repeats, int) else int(repeats.get(variant, 1))
        for r in range(n_rep):
            t0 = time.perf_counter()
            try:
                server = factory()
            except EndpointError as e:
                results.append({"variant": variant, "repeat": r, "error": str(e)[:600]})
                if on_result is not None:
                    on_result(results)
                log(f"cold start {variant} #{r + 1}: FAILED ({str(e)[:200]})")
                continue
            ready_s = time.perf_counter() - t0
            try:
                dur = first / rate_rps
                p1 = run_probe(server.target, rate_rps, dur, warmup_s=0.0, seed=seed + 2 * r)
                p2 = run_probe(server.target, rate_rps, dur, warmup_s=0.0, seed=seed + 2 * r + 1)
            except EndpointError as e:
                results.append({"variant": variant, "repeat": r, "ready_s": ready_s, "error": str(e)[:600]})
                log(f"cold start {variant} #{r + 1}: ready in {ready_s:.2f} s, load FAILED ({str(e)[:200]})")
                continue
            finally:
                server.stop()
            first_ms, steady_ms = _lat_ms(p1), _lat_ms(p2)
            row = {"variant": variant, "repeat": r, **summarize_run(ready_s, first_ms, steady_ms),
                   "first_latency_ms": [round(float(x), 4) for x in first_ms],
                   "steady_latency_ms": [round(float(x), 4) for x in steady_ms]}
            results.append(row)
            if on_result is not None:
                on_result(results)
            fs, st = row["first"], row["steady"]
            log(f"cold start {variant} #{r + 1}: ready in {ready_s:.2f} s; first request {fs['first_ms']:.2f} ms, "
                f"first {first}: p50 {fs['p50_ms']:.2f} / p99 {fs['p99_ms']:.2f} ms (steady {st['p50_ms']:.2f} / "
                f"{st['p99_ms']:.2f} ms), {fs['slow']} slow")
    return results


def write(path: Path, *, declared: dict, results: list[dict], argv: list[str] | None = None) -> dict:
    """The ``simlat.coldstart`` file."""
    prov = {"host": platform.node(), "python": sys.version.split()[0], "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(argv or sys.argv)}
    try:
        import torch

        prov["torch"] = torch.__version__
        if torch.cuda.is_available():
            prov["device_name"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    data = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "provenance": prov, "declared": declared,
            "slow_factor": SLOW_FACTOR, "results": results}
    Path(path).write_text(json.dumps(data, indent=1, default=float))
    return data
