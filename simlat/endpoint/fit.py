"""The serving stack of a measured endpoint, fitted from open-loop probes only.

What is seen from outside: the latency with no queue (the low-rate probe), the open-loop capacity,
and the latency-vs-rate curve. What the simulator needs: which part of a request's time holds the
server (and so queues) and which part is a pure delay (client, network, HTTP parsing done in
parallel). The model, per replica, around the experiment's own batcher and model profile:

- ``delay_ms``: a pure per-request delay (never queues), an empirical distribution;
- ``batch_overhead_ms`` (h): time a batch holds the replica beyond the model (forming the batch,
  copies, the backend hand-off);
- ``item_ms`` (c): time per request of a batch beyond the model's own per-item cost;
- ``loop_ms``: optionally, per-request work serialized in ONE loop in front of the batcher (a
  Python asyncio server's event loop), instead of ``item_ms``.

Two equations pin h and c given the split fraction f of the no-queue latency that holds the
server: at batch 1, ``h + c + m(1) = f * (median no-queue latency - max_wait)``, and at capacity
(full batches of B) ``h + c * B + m(B) = B / capacity`` (m = the model profile's mean batch time).
f, and whether per-request work runs in a loop, are chosen by simulating every calibration probe
on its own measured arrival times and minimising the log error of p50 and p99 (never the
validation levels). The residual of that fit, the run-to-run spread of repeated probes and the
capacity's resolution are kept for the prediction interval (:mod:`simlat.uncertainty`).
"""

from __future__ import annotations

import numpy as np

from simlat.errors import SimlatError
from simlat.profiles.serving import StackParams

DELAY_SAMPLES = 200
"""Quantiles kept of the pure-delay distribution."""


def kept_latencies(probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """(sent time ms, latency ms) of a probe's answered requests after its warm-up, in sending order."""
    raw = probe["raw"]
    keep = (raw["arrival_s"] >= probe["warmup_s"]) & (raw["status"] == 200)
    sent = raw["sent"][keep] * 1e3
    lat = (raw["recv"][keep] - raw["sent"][keep]) * 1e3
    order = np.argsort(sent, kind="stable")
    return sent[order], lat[order]


def all_sent_ms(probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every sent request's time (ms, sorted) and whether it is kept (after warm-up, answered)."""
    raw = probe["raw"]
    ok = np.isfinite(raw["sent"])
    sent = raw["sent"][ok] * 1e3
    keep = ((raw["arrival_s"] >= probe["warmup_s"]) & (raw["status"] == 200))[ok]
    order = np.argsort(sent, kind="stable")
    return sent[order], keep[order]


class Predictor:
    """Simulates the endpoint (declared batching + model service + a fitted stack) at given arrivals."""

    def __init__(self, service, max_batch: int, max_wait_ms: float, dispatch: str = "on_free"):
        from simlat.engine.service import build_service

        self.service = service
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.dispatch = dispatch
        model = build_service(service)
        self.m = model.mean_ms

    def experiment(self, params: StackParams, rate_rps: float, scale: float = 1.0, replicas: int = 1):
        from simlat.config import Experiment
        from simlat.config.serving import SLO, DynamicBatching, NoBatching
        from simlat.config.workload import Poisson, Workload

        batching = (DynamicBatching(max_batch_size=self.max_batch, max_wait_ms=self.max_wait_ms, dispatch=self.dispatch)
                    if self.max_batch > 1 else NoBatching())
        return Experiment(name="endpoint", workload=Workload(arrivals=Poisson(rate_rps=max(rate_rps, 1e-3))),
                          batching=batching, service=self.service, frontend=params.frontend(scale),
                          slo=SLO(latency_ms=1000.0))

    def latencies(self, params: StackParams, arrival_ms: np.ndarray, seed: int, scale: float = 1.0) -> np.ndarray:
        """Simulated latency of each arrival (sorted arrival times in ms)."""
        from simlat.engine import simulate
        from simlat.workload import Requests

        arr = np.asarray(arrival_ms, dtype=float)
        arr = arr - arr[0]
        rate = len(arr) / max(arr[-1] / 1e3, 1e-9)
        res = simulate(self.experiment(params, rate, scale), Requests(arrival_ms=arr, items=np.ones(len(arr), dtype=np.int64)),
                       seed=np.random.SeedSequence(seed))
        self.last_utilization = float(np.max(res.busy_ms) / max(res.end_ms, 1e-9)) if len(res.busy_ms) else 0.0
        return np.asarray(res.records.latency_ms, dtype=float)


def _candidates(Lm: float, m1: float, mB: float, B: int, mu_per_ms: float, loop: bool) -> list[tuple[float, float, float, float]]:
    """Feasible (f, h, c, loop_ms) on a grid of f."""
    out = []
    for f in np.linspace(0.05, 1.0, 20):
        S1 = f * Lm
        if loop:
            cl = 1.0 / mu_per_ms
            h = S1 - m1 - cl
            if h < 0 or B / (h + mB) < mu_per_ms * 0.999:
                continue
            out.append((float(f), float(h), 0.0, float(cl)))
        else:
            if B == 1:
                continue
            c = (B / mu_per_ms - mB - S1 + m1) / (B - 1)
            h = S1 - m1 - c
            if c < 0 or h < 0:
                continue
            out.append((float(f), float(h), float(c), 0.0))
    if not loop and B == 1:
        h = max(0.0, 1.0 / mu_per_ms - m1)
        out.append((float(min(1.0, (h + m1) / Lm)), float(h), 0.0, 0.0))
    return out


def _log_err(sim: np.ndarray, meas: np.ndarray) -> tuple[float, float]:
    return (float(np.log(np.percentile(sim, 50) / np.percentile(meas, 50))),
            float(np.log(np.percentile(sim, 99) / np.percentile(meas, 99))))


def usable(p: dict, min_requests: int = 50) -> bool:
    """A probe that measured the server: it kept its schedule and the server kept up."""
    return bool(p["stable"] and p["lag_ok"] and p["requests"] >= min_requests)


def fit(campaign: dict, service, *, max_batch: int, max_wait_ms: float, dispatch: str = "on_free",
        log=None) -> dict:
    """Fit the stack parameters from a calibration campaign (:mod:`simlat.endpoint.campaign`).

    Returns ``{"params": StackParams, "facts": {...}}``: in-sample errors, the run-to-run spread by
    load, the fit's residual spread and the capacity's resolution.
    """
    probes = campaign["probes"]
    low = [p for p in probes if p["kind"] == "low" and usable(p, 10)]
    if not low:
        raise SimlatError("serving fit: the campaign has no usable low-rate probe")
    cap = float(campaign["capacity_rps"])
    if cap <= 0:
        raise SimlatError("serving fit: the campaign found no open-loop capacity")
    _, L = kept_latencies(low[0])
    pred = Predictor(service, max_batch, max_wait_ms, dispatch)
    wait = max_wait_ms if max_batch > 1 else 0.0
    Lm = float(np.median(L)) - wait
    if Lm <= 0:
        raise SimlatError(f"serving fit: the no-queue latency ({np.median(L):.3f} ms) is not above max_wait_ms ({wait:g})")
    m1, mB = pred.m(1), pred.m(max_batch)
    mu = cap / 1e3
    fit_probes = [p for p in probes if p["kind"] == "curve" and usable(p)]
    if len(fit_probes) < 2:
        fit_probes = [p for p in probes if p["kind"] in ("curve", "capacity") and usable(p)]
    cands = [(c, False) for c in _candidates(Lm, m1, mB, max_batch, mu, False)]
    cands += [(c, True) for c in _candidates(Lm, m1, mB, max_batch, mu, True)]
    warnings = []
    if not cands:
        # 1 / capacity exceeds what the no-queue latency leaves: the server slows down under load (or
        # the model profile is slower than the server). Keep the capacity: per-request work in a loop.
        cl = 1.0 / mu
        h = max(0.0, max_batch / mu - mB - cl * max_batch) if max_batch > 1 else 0.0
        cands = [((1.0, 0.0 if max_batch > 1 else h, 0.0, cl), True)]
        warnings.append(f"the no-queue latency ({Lm:.3f} ms beyond max_wait) is shorter than 1 / capacity "
                        f"({1 / mu:.3f} ms) allows with batching: the server slows down under load; the fit keeps "
                        "the capacity and may overstate latency at low load")
    best = None
    for (f, h, c, cl), _loop in cands:
        held = min(f * Lm, h + c + cl + m1)
        delay = np.quantile(np.maximum(L - wait - held, 0.0), np.linspace(0, 1, DELAY_SAMPLES))
        params = StackParams(tuple(float(x) for x in delay), h, c, cl, f)
        errs = []
        for i, p in enumerate(fit_probes):
            sent, keep = all_sent_ms(p)
            sim = pred.latencies(params, sent, seed=100 + i)[keep]
            _, meas = kept_latencies(p)
            errs.append(_log_err(sim, meas))
        e = np.array(errs)
        loss = float(np.mean(np.abs(e[:, 1])) + 0.5 * np.mean(np.abs(e[:, 0])))
        if log:
            log(f"  fit f={f:.2f} h={h:.3f} c={c:.4f} loop={cl:.4f}: loss {loss:.3f}")
        if best is None or loss < best[0]:
            best = (loss, params, e)
    loss, params, e = best
    facts = {"loss": loss, "probes_fitted": len(fit_probes), "in_sample_log_err_p50": e[:, 0].tolist(),
             "in_sample_log_err_p99": e[:, 1].tolist(), "model_m1_ms": m1, "model_mB_ms": mB,
             "no_queue_latency_ms": float(np.median(L)), "capacity_rps": cap,
             "capacity_found": bool(campaign.get("capacity_found", True)),
             "capacity_resolution": _resolution(campaign),
             "run_to_run": run_to_run(probes),
             "fit_residual_sd_log_p99": _residual_sd(fit_probes, e[:, 1]),
             "fit_residual_by_load": residual_by_load(fit_probes, e[:, 1]), "warnings": warnings,
             "model_share": m1 / max(params.batch_overhead_ms + params.item_ms + params.loop_ms + m1, 1e-12)}
    return {"params": params, "facts": facts}


def _resolution(campaign: dict) -> float:
    hi = campaign.get("capacity_upper_rps")
    cap = campaign["capacity_rps"]
    if hi is None or not np.isfinite(hi) or cap <= 0:
        return 0.1
    return float(hi / cap - 1)


def run_to_run(probes: list[dict]) -> list[dict]:
    """Spread of log p99 (and p50) between repeats of the curve probes, per load, made non-decreasing."""
    by: dict[float, list[dict]] = {}
    for p in probes:
        if p["kind"] == "curve" and usable(p):
            by.setdefault(round(float(p["load"]), 3), []).append(p)
    rows = []
    for load in sorted(by):
        ps = by[load]
        if len(ps) < 2:
            continue
        l99 = np.log([p["p99_ms"] for p in ps])
        l50 = np.log([p["p50_ms"] for p in ps])
        rows.append({"load": load, "repeats": len(ps), "sd_log_p99": float(np.std(l99, ddof=1)),
                     "sd_log_p50": float(np.std(l50, ddof=1))})
    run = 0.0
    for r in rows:  # pool adjacent violators the simple way: a running maximum (conservative)
        run = max(run, r["sd_log_p99"])
        r["sd_log_p99_monotone"] = run
    return rows


def _residual_sd(probes: list[dict], e99: np.ndarray) -> float:
    """RMS log p99 error of the fit on the per-load medians (structure error, not run-to-run noise)."""
    rows = residual_by_load(probes, e99)
    return float(np.sqrt(np.mean([r["log_err_p99"] ** 2 for r in rows]))) if rows else 0.0


def residual_by_load(probes: list[dict], e99: np.ndarray) -> list[dict]:
    """The fit's log p99 error per calibration load (median over repeats), and its running maximum of
    the absolute value (the structure error grows with load; used by the prediction interval)."""
    by: dict[float, list[float]] = {}
    for p, err in zip(probes, e99, strict=True):
        if p.get("load") is not None:
            by.setdefault(round(float(p["load"]), 3), []).append(float(err))
    rows, run = [], 0.0
    for load in sorted(by):
        med = float(np.median(by[load]))
        run = max(run, abs(med))
        rows.append({"load": load, "log_err_p99": med, "abs_monotone": run})
    return rows
