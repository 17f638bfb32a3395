"""Measurement campaigns against an endpoint: calibration (probes only) and validation levels.

**Calibration** (:func:`calibrate`), open loop only, no code inside the server:

1. a low-rate probe: what a request costs with no queue;
2. the open-loop capacity: Poisson probes at rates growing by ``growth`` until one is unstable
   (:mod:`simlat.endpoint.probe`; also a probe whose median exceeds ``BACKLOG_FACTOR`` x the no-queue
   median: a short run can keep pace while it builds a backlog), then bisection to ``resolution``. A search that runs out of
   probes before any is unstable does NOT report a capacity: it says "at least" the last stable
   rate and the campaign is marked ``capacity_found: false``. A probe the generators could not keep
   on schedule stops the search with that reason instead of being read as the server's limit;
3. the latency-vs-rate curve: probes at ``curve`` fractions of the capacity, each repeated
   ``repeats`` times (with a fresh server per repeat when the campaign can restart it), so the
   run-to-run spread of p99 is measured, not assumed.

**Validation** (:func:`levels`): every load level (a fraction of the calibrated capacity), in
``repeats`` rounds, each round on a freshly started server (when the campaign can start one); each
level's warm-up is discarded. The levels are never used to fit anything.

A campaign is a plain dict (JSON-able summaries, raw arrays apart) saved as ONE ``.npz``
(:func:`save`/:func:`load`) that replays offline. A failure mid-campaign (the server errors,
dies, or becomes unreachable) raises :class:`~simlat.endpoint.probe.EndpointError` after saving
the probes already measured (``complete: false``). Needs numpy only.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from simlat import __version__
from simlat.endpoint.probe import EndpointError, run_probe, wait_ready
from simlat.endpoint.protocol import Target

RAW_KEYS = ("arrival_s", "sched", "sent", "recv", "status")
BACKLOG_FACTOR = 10.0
"""A probe whose median latency exceeds this multiple of the no-queue median is unstable (a backlog),
even when its completions kept pace with the arrivals over a short run."""


def _log(msg: str) -> None:
    print(msg, flush=True)


class Campaign:
    """Runs probes against a target, optionally restarting the server, and keeps what it measured."""

    def __init__(self, target: Target | None, *, server_factory: Callable | None = None, declared: dict | None = None,
                 probe_s: float = 3.0, warmup_s: float = 0.75, procs: int | None = None, cpus: list[int] | None = None,
                 log: Callable[[str], None] = _log, seed: int = 1, max_lag_ms: float = 1.0):
        self.server_factory = server_factory
        self.target = target
        self.probe_s = probe_s
        self.warmup_s = warmup_s
        self.procs = procs
        self.cpus = cpus
        self.log = log
        self.seed = seed
        self.max_lag_ms = max_lag_ms
        self.data: dict = {"schema": "simlat.endpoint.campaign/1", "simlat_version": __version__,
                           "host": platform.node(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "declared": declared or {}, "probes": [], "levels": [], "complete": False}
        self._server = None

    # -- servers -----------------------------------------------------------------------------
    def fresh_server(self):
        """Stop the running server (if this campaign owns one) and start a new one."""
        if self.server_factory is None:
            return nullcontext()
        self.stop_server()
        t0 = time.perf_counter()
        self._server = self.server_factory()
        self.target = self._server.target
        self.data.setdefault("server_start_s", []).append(time.perf_counter() - t0)
        return self._server

    def stop_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- probes ------------------------------------------------------------------------------
    def probe(self, rate: float, *, kind: str, duration_s: float | None = None, warmup_s: float | None = None,
              **extra) -> dict:
        """One probe at ``rate``; recorded under ``probes`` (calibration) or ``levels`` (validation)."""
        self.seed += 1
        d = duration_s or self.probe_s
        w = self.warmup_s if warmup_s is None else warmup_s
        res = run_probe(self.target, rate, d, warmup_s=w, seed=self.seed, procs=self.procs, cpus=self.cpus)
        res.update(kind=kind, lag_ok=bool(res["lag_p99_ms"] <= self.max_lag_ms), **extra)
        base = self.data.get("no_queue_p50_ms")
        if res["stable"] and base and res["p50_ms"] > BACKLOG_FACTOR * base:
            res["stable"] = False  # kept up with the count, but only by holding a backlog
            res["backlogged"] = True
        if kind == "low" and res["stable"]:
            self.data["no_queue_p50_ms"] = res["p50_ms"]
        (self.data["levels"] if kind == "level" else self.data["probes"]).append(res)
        flag = "stable" if res["stable"] else "UNSTABLE"
        lag = "" if res["lag_ok"] else f" (send lag p99 {res['lag_p99_ms']:.1f} ms: schedule not kept)"
        self.log(f"  {kind:9s} {rate:9.0f} req/s: p50 {res['p50_ms']:8.2f} ms  p99 {res['p99_ms']:8.2f} ms  "
                 f"{res['achieved_rps']:9.0f} done/s  {flag}{lag}")
        if res["http_errors"] and res["http_errors"] == res["requests"]:
            raise EndpointError(f"endpoint: every request of the probe at {rate:g} req/s failed: {res['errors'][:1]}")
        return res

    def recover(self) -> None:
        """After an overload, let the server drain (or restart it when the campaign owns it)."""
        if self.server_factory is not None:
            self.fresh_server()
        else:
            time.sleep(2.0)
            wait_ready(self.target, timeout_s=60)


def calibrate(c: Campaign, *, start_rps: float = 200.0, growth: float = 1.5, max_probes: int = 14,
              resolution: float = 0.05, low_rps: float | None = None, curve: tuple[float, ...] = (0.3, 0.6, 0.85),
              repeats: int = 3, curve_s: float | None = None) -> dict:
    """The calibration campaign (module doc); returns ``c.data`` with ``capacity_rps`` and flags."""
    c.log("calibrating the endpoint from outside (open-loop probes only)")
    c.fresh_server()
    wait_ready(c.target)
    c.data["target"] = c.target.to_json()
    low = low_rps or max(5.0, start_rps / 4)
    c.probe(low, kind="low", duration_s=c.probe_s * 2)
    lo, hi, n, rate = None, None, 0, start_rps
    stop_reason = ""
    while n < max_probes:
        r = c.probe(rate, kind="capacity")
        n += 1
        if not r["lag_ok"] and r["stable"]:
            stop_reason = (f"the load generators could not keep the schedule at {rate:.0f} req/s "
                           f"(send-lag p99 {r['lag_p99_ms']:.1f} ms): the capacity search stopped there")
            break
        if r["stable"]:
            lo = rate
            if hi is None:
                rate *= growth
            else:
                rate = (lo + hi) / 2
        else:
            hi = rate
            c.recover()
            rate = (lo + hi) / 2 if lo else rate / growth ** 2
        if lo and hi and hi / lo - 1 <= resolution:
            break
    found = lo is not None and hi is not None
    cap = lo if lo is not None else 0.0
    c.data.update(capacity_rps=float(cap), capacity_found=bool(found), capacity_upper_rps=float(hi or np.nan))
    if not found:
        why = stop_reason or f"{max_probes} probes ran out with every probe stable"
        c.data["warnings"] = c.data.get("warnings", []) + [
            f"open-loop capacity NOT found ({why}): it is at least {cap:.0f} req/s; raise --max-probes or --start-rps"]
        c.log("  warning: " + c.data["warnings"][-1])
        if lo is None:
            raise EndpointError(f"endpoint: no stable probe at or below {start_rps:g} req/s; lower --start-rps")
    else:
        c.log(f"  open-loop capacity {cap:.0f} req/s (unstable at {hi:.0f})")
    for rep in range(repeats):
        if rep:
            c.fresh_server()
        for f in curve:
            r = c.probe(f * cap, kind="curve", load=f, repeat=rep, duration_s=curve_s)
            if not r["stable"]:
                c.recover()
    c.stop_server()
    c.data["complete"] = True
    return c.data


def levels(c: Campaign, loads: tuple[float, ...], *, repeats: int = 3, level_s: float = 8.0, warmup_s: float = 2.0) -> dict:
    """Validation levels at ``loads`` x capacity, each repeated with a fresh server."""
    cap = c.data["capacity_rps"]
    c.log(f"validation levels at {', '.join(f'{x:g}' for x in loads)} x {cap:.0f} req/s, {repeats} repeats")
    for rep in range(repeats):
        c.fresh_server()
        wait_ready(c.target)
        for f in loads:
            r = c.probe(f * cap, kind="level", duration_s=level_s, warmup_s=warmup_s, load=f, repeat=rep)
            if not r["stable"]:
                c.recover()
    c.stop_server()
    return c.data


def save(data: dict, path: Path) -> Path:
    """One ``.npz``: the JSON summaries and every probe's raw arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    meta = dict(data)
    for group in ("probes", "levels"):
        rows = []
        for i, p in enumerate(data.get(group, [])):
            row = {k: v for k, v in p.items() if k != "raw"}
            for k in RAW_KEYS:
                arrays[f"{group}{i}_{k}"] = p["raw"][k]
            rows.append(row)
        meta[group] = rows
    np.savez_compressed(path, meta=np.array(json.dumps(meta, default=float)), **arrays)
    return path


def load(path: Path) -> dict:
    """Inverse of :func:`save`."""
    with np.load(path, allow_pickle=False) as z:
        data = json.loads(str(z["meta"]))
        for group in ("probes", "levels"):
            for i, p in enumerate(data.get(group, [])):
                p["raw"] = {k: z[f"{group}{i}_{k}"] for k in RAW_KEYS}
    return data
