"""The exact day's speed: a 24-hour diurnal day at 5,000 req/s mean (432 M requests) on one core,
against a 5-minute target, with references measured in the same run.

The day: a diurnal rate (mean 5,000 req/s, amplitude 0.6: 2,000 to 8,000 req/s), one shared queue,
constant overheads, an HPA-like autoscaler at 60% utilisation (1 to 40 replicas, 30 s cold start,
60 s scrape). Two services (``--cases``):

a. an affine service (2 ms + 0.4 ms per item, lognormal noise), dynamic batching on_free, B=32,
   W=2 ms: batches of about 5 to 16 requests, the fleet following the day (about 3 to 9 replicas);
b. the feed model of ``experiments/feed.yaml``: the measured profile of mlp_ranker bf16 on H100 with
   three measured components (four curves per draw), 500 items per request, B=8, W=0.5 ms: batches
   of a few requests, after-idle draws;
c. case b behind the measured serving stack (``calibration/serving-h100-triton-mlp-bf16-b32w0.json``:
   the per-replica loop, the hand-off, the network delay), as ``experiments/feed_day.yaml`` runs it.

``--hours`` runs the first hours only (the rate follows the same curve).

Measured, in CPU time (user + system, ``time.process_time``; the process uses one core):

- exact: :func:`simlat.autoscale.stream.simulate_day_exact` over the day (or ``--hours``), once
  (``--day-repeat`` times: median);
- on ``--slice-hours`` of the same day, ``--repeat`` times after one warm-up, every case once per
  repetition so a busy machine slows all alike: the exact day on the slice; the quasi-static day
  (:func:`simlat.autoscale.simulate_day`, 60 s windows, at most 20,000 requests each) on the same
  slice, in requests it simulated per CPU-second; and the engine's fast static path (``simlat.run``,
  the same fleet fixed at 8 replicas, Poisson at the mean rate) on as many requests as the exact
  slice served.

Then the day's numbers by both engines (SLO shares, replicas, replica-hours, window p99s).

Rates are medians; the ratios put the exact day against each reference.

Usage: ``python benchmarks/day_bench.py [--cases a,b] [--hours 24] [--slice-hours 0.5] [--repeat 3] [--day-repeat 1]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import simlat
from simlat.autoscale import simulate_day
from simlat.autoscale.stream import simulate_day_exact
from simlat.config import parse_experiment

TARGET_S = 300.0
SERVICE_NAMES = {"a": "affine service, B=32, W=2 ms", "b": "feed model profile (mlp_ranker bf16 H100 + 3 components), B=8, W=0.5 ms",
                 "c": "case b behind the measured Triton serving stack"}
MEAN_RPS = 5000.0


PROFILE = Path(__file__).resolve().parents[1] / "calibration" / "h100-cuda.json"
SERVICES = {
    # a: a synthetic affine service with large batches
    "a": {"batching": {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2, "dispatch": "on_free"},
          "service": {"kind": "affine", "base_ms": 2.0, "per_item_ms": 0.4,
                      "noise": {"kind": "lognormal", "median": 1.0, "sigma": 0.1}, "noise_mode": "multiplicative"}},
    # b: the feed model of feed.yaml (mlp_ranker bf16 on H100 + 3 measured components, 500 items per
    # request, B=8, W=0.5 ms): small batches, four measured curves per draw, after-idle draws
    "b": {"batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 0.5, "dispatch": "on_free"},
          "service": {"kind": "profile", "path": str(PROFILE), "model": "mlp_ranker", "variant": "bf16",
                      "add_components": ["deserialize_raw", "h2d_pinned", "d2h"]},
          "items": 500},
}
SERVICES["c"] = {**SERVICES["b"], "frontend": {
    "kind": "profile", "path": str(PROFILE.parent / "serving-h100-triton-mlp-bf16-b32w0.json")}}


def experiment(case: str = "a", day_s: float = 86400.0, window_s: float = 60.0):
    svc = SERVICES[case]
    return parse_experiment({
        "name": "day_bench",
        "workload": {"arrivals": {"kind": "diurnal", "mean_rate_rps": MEAN_RPS, "amplitude": 0.6,
                                  "period_s": 86400, "phase_s": 21600}, "items_per_request": svc.get("items", 1)},
        "fleet": {"replicas": 8, "queue": "shared", "autoscaling": {
            "kind": "target_utilization", "target": 0.6, "min_replicas": 1, "max_replicas": 40,
            "cold_start_s": {"kind": "constant", "value": 30}, "scrape_interval_s": 60, "window_s": window_s,
            "day_s": day_s, "requests_per_window": 20000, "cost_per_replica_hour": 3.5}},
        "batching": svc["batching"],
        "service": svc["service"],
        "overheads": {"network_rtt_ms": {"kind": "constant", "value": 0.5}},
        **({"frontend": svc["frontend"]} if "frontend" in svc else {}),
        "slo": {"percentile": 99, "latency_ms": 20},
        "run": {"seed": 1},
    })


def cpu(fn):
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def exact(case: str, hours: float, keep: list | None = None) -> tuple[float, int]:
    dt, (res, _) = cpu(lambda: simulate_day_exact(experiment(case), hours=hours))
    if keep is not None:
        keep.append(res)
    return dt, int(res.summary.served_requests or 0)


def quasi_static(case: str, hours: float, keep: list | None = None) -> tuple[float, int]:
    exp = experiment(case, day_s=hours * 3600.0)
    dt, res = cpu(lambda: simulate_day(exp))
    if keep is not None:
        keep.append(res)
    return dt, int(res.windows["simulated_requests"].sum())


def describe(name: str, res) -> str:
    s = res.summary
    w = res.windows
    return (f"    {name:<13} SLO met in {s.slo_windows_share:.2%} of windows, by {s.slo_requests_share:.3%} of requests; "
            f"ready {s.ready_min}-{s.ready_max}; {s.replica_hours:.1f} replica-hours; worst window p99 "
            f"{w['p99_ms'].max():.2f} ms, median window p99 {w['p99_ms'].median():.2f} ms")


def engine(case: str, requests: int) -> tuple[float, int]:
    exp = simlat.override(experiment(case), {"fleet.autoscaling": None,
                                         "workload.arrivals": {"kind": "poisson", "rate_rps": MEAN_RPS}})
    dt, _ = cpu(lambda: simlat.run(exp, requests=requests))
    return dt, requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="hours of the day run by the exact engine (24: the target)")
    ap.add_argument("--slice-hours", type=float, default=0.5, help="hours of the slice the references are compared on")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of the slice comparison (median)")
    ap.add_argument("--day-repeat", type=int, default=1, help="runs of the whole --hours day (median)")
    ap.add_argument("--cases", default="a,b", help="cases to run, comma-separated (a, b, c; see the module doc)")
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus visible; CPU seconds")

    for case in args.cases.split(","):
        run_case(case, args)


def run_case(case: str, args) -> None:
    print(f"case {case}: {SERVICE_NAMES[case]}")
    # the slice comparison: one warm-up, then every case once per repetition
    exact(case, 0.05), quasi_static(case, 0.05), engine(case, 50_000)
    rates: dict[str, list[float]] = {"exact": [], "quasi-static": [], "engine": []}
    for _ in range(args.repeat):
        dt, n = exact(case, args.slice_hours)
        rates["exact"].append(n / dt)
        dt_q, n_q = quasi_static(case, args.slice_hours)
        rates["quasi-static"].append(n_q / dt_q)
        dt_e, n_e = engine(case, n)
        rates["engine"].append(n_e / dt_e)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"  slice of {args.slice_hours:g} h, {args.repeat} repetitions (median, min-max), requests per CPU-second:")
    for k, v in rates.items():
        print(f"    {k:<13} {med[k] / 1e6:7.2f} M/s  ({min(v) / 1e6:.2f}-{max(v) / 1e6:.2f})")
    print(f"    exact / engine static path: {med['exact'] / med['engine']:.2f}x; "
          f"exact / quasi-static (per simulated request): {med['exact'] / med['quasi-static']:.1f}x")

    days: list = []
    runs = [exact(case, args.hours, days) for _ in range(args.day_repeat)]
    dt = statistics.median(r[0] for r in runs)
    n = runs[0][1]
    print(f"  exact day, {args.hours:g} h: {n:,} requests in {dt:.1f} CPU-s ({n / dt / 1e6:.2f} M requests per CPU-second)")
    full = 86400.0 * MEAN_RPS
    projected = full / (n / dt)
    print(f"    the 24-hour day ({full / 1e6:.0f} M requests) at this rate: {projected:.0f} CPU-s; target {TARGET_S:.0f} s: "
          + ("met" if projected <= TARGET_S else f"NOT met ({projected / TARGET_S:.2f}x over)"))
    qs: list = []
    dt_q, n_q = quasi_static(case, args.hours, qs)
    print(f"  the same {args.hours:g} h by both engines (60 s windows; quasi-static: {n_q:,} requests simulated in "
          f"{dt_q:.1f} CPU-s):")
    print(describe("exact", days[0]))
    print(describe("quasi-static", qs[0]))


if __name__ == "__main__":
    main()
