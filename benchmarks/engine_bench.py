"""Engine speed: simulated requests per CPU-second, against the issues' targets, in one run.

Cases (a-c at utilisation about 0.8):

a. dynamic batching (on_free, B=32, W=2 ms, 1 ms + 0.05 ms/item), one replica:
   target >= 3 M requests per CPU-second and >= 50x the naive per-request model;
b. 8 replicas, per-replica queues, join-shortest-queue, same batching: target >= 1 M;
c. no batching, one replica, exponential service (M/M/1): no target, for reference;
d. the feed pipeline with the cache on (experiments/feed_cache.yaml: Zipf keys, an L1 LRU per
   replica + a calibrated Redis L2 warmed up first, 500 items per request, 8 replicas, JSQ,
   B=16, W=2 ms), the engine without the serving stack: target >= 1 M. Its requests count whether
   the cache or the model served them;
e. d with the experiment's measured serving stack (``frontend: {kind: profile}``, simulated around
   the engine by fixed-point passes): no target, for reference.

a-c also run the naive one-process-per-request SimPy model (:mod:`simlat.engine.reference`) on
the same experiment and check that it gives identical latencies; d (which the naive model cannot
run: it has no cache) checks instead that the engine's routed path and its general event path
give identical records. ``--path`` runs every case on one engine path (static, routed or event,
:mod:`simlat.engine.paths`) instead of the first that handles it; a case the path cannot run is
skipped. Every repetition runs every case once (engine, then naive), so a busy
machine slows all of them alike; rates are medians over ``--repeat`` repetitions after one warm-up
run of each, in CPU time (user + system, ``time.process_time``).

Usage: ``python benchmarks/engine_bench.py [--requests N] [--naive-requests N] [--repeat K] [--path NAME]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from simlat.config import load_experiment, parse_experiment
from simlat.engine import simulate
from simlat.engine.paths import PATHS
from simlat.engine.reference import simulate_naive
from simlat.engine.spec import EngineSpec
from simlat.workload import Requests, generate

ROOT = Path(__file__).resolve().parents[1]
BATCHING = {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0, "dispatch": "on_free"}
AFFINE = {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.05}

CASES = {
    "a. dynamic batching, 1 replica": dict(
        batching=BATCHING, service=AFFINE, fleet={"replicas": 1}, rate=8.0, target=3e6, ratio=50.0
    ),
    "b. 8 replicas, JSQ, dynamic batching": dict(
        batching=BATCHING,
        service=AFFINE,
        fleet={"replicas": 8, "queue": "per_replica", "balancer": "join_shortest_queue"},
        rate=8 * 8.0,
        target=1e6,
    ),
    "c. no batching, M/M/1": dict(
        batching={"kind": "none"},
        service={"kind": "exponential", "mean_ms": 1.0},
        fleet={"replicas": 1},
        rate=0.8,
    ),
    "d. feed + cache (L1 x8, Redis L2), 8x JSQ": dict(feed_cache=True, target=1e6),
    "e. d + the measured serving stack": dict(feed_cache=True, stack=True),
}


def experiment(batching, service, fleet, rate):
    return parse_experiment(
        {
            "name": "bench",
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": rate * 1000.0}},
            "fleet": fleet,
            "batching": batching,
            "service": service,
            "slo": {"latency_ms": 10.0},
        }
    )


def poisson(rate_per_ms: float, n: int, seed: int = 0) -> Requests:
    rng = np.random.default_rng(seed)
    return Requests(
        arrival_ms=np.cumsum(rng.exponential(1.0 / rate_per_ms, n)), items=np.ones(n, dtype=np.int64)
    )


def cpu_name() -> str:
    """The processor's model name (Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_seconds(fn) -> tuple[float, object]:
    """CPU seconds of one call of ``fn()``, and its result."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def general_loop_records(exp, requests, seed):
    """Records from the general event path, for the identity check."""
    return simulate(exp, requests, seed=seed, path="event").records


def same_records(a, b) -> bool:
    cols_b = b.columns()
    return all(
        np.allclose(v, cols_b[k], rtol=1e-12, atol=1e-12, equal_nan=True) for k, v in a.columns().items()
    )


class Case:
    """One benchmark case: its experiment, inputs, and the rates measured so far."""

    def __init__(self, name: str, spec: dict, n: int, n_naive: int, path: str | None = None):
        self.name, self.spec, self.path = name, spec, path
        self.seed = np.random.SeedSequence(1)
        self.fast_rates: list[float] = []
        self.naive_rates: list[float] = []
        if spec.get("feed_cache"):
            self.exp = load_experiment(ROOT / "experiments" / "feed_cache.yaml")
            if path is not None or not spec.get("stack"):  # the engine alone, without the serving stack
                self.exp = self.exp.model_copy(update={"frontend": None})
            self.big = generate(self.exp.workload, n=n, duration_s=None, seed=np.random.SeedSequence(1))
            self.small = generate(
                self.exp.workload, n=n_naive, duration_s=None, seed=np.random.SeedSequence(2)
            )
            self.naive = False
        else:
            self.exp = experiment(spec["batching"], spec["service"], spec["fleet"], spec["rate"])
            self.big = poisson(spec["rate"], n)
            self.small = poisson(spec["rate"], n_naive)
            self.naive = True

    def runs_on_path(self) -> bool:
        return self.path is None or PATHS[self.path].handles(EngineSpec.from_experiment(self.exp))

    def run_engine(self):
        return simulate(self.exp, self.big, seed=self.seed, path=self.path)

    def run_naive(self):
        return simulate_naive(self.exp, self.small, seed=self.seed)

    def once(self) -> None:
        t, self.result = cpu_seconds(self.run_engine)
        self.fast_rates.append(len(self.big) / t)
        if self.naive:
            t, _ = cpu_seconds(self.run_naive)
            self.naive_rates.append(len(self.small) / t)

    def identical(self) -> bool:
        fast = simulate(self.exp, self.small, seed=self.seed, path=self.path).records
        if self.naive:
            return bool(np.allclose(fast.latency_ms, self.run_naive(), rtol=1e-12, atol=0))
        core = self.exp.model_copy(update={"frontend": None})  # the paths run inside any serving stack
        return same_records(
            simulate(core, self.small, seed=self.seed, path=self.path).records,
            general_loop_records(core, self.small, self.seed),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2_000_000, help="requests per engine run")
    ap.add_argument("--naive-requests", type=int, default=300_000, help="requests per naive run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--path", choices=list(PATHS), help="run every case on this engine path")
    args = ap.parse_args()
    print(
        f"python {platform.python_version()}, {cpu_name()}, {os.cpu_count()} logical CPUs; rates in CPU time, "
        f"medians of {args.repeat} alternating repetitions; engine runs of {args.requests:,} requests, "
        f"naive runs of {args.naive_requests:,}; path: {args.path or 'the first that handles each case'}",
        flush=True,
    )
    cases = [Case(name, spec, args.requests, args.naive_requests, args.path) for name, spec in CASES.items()]
    for case in cases:
        if not case.runs_on_path():
            print(f"{case.name}: skipped, the {args.path} path does not handle it")
    cases = [case for case in cases if case.runs_on_path()]
    for case in cases:  # warm-up: imports, compiled kernels, first touch of the memory
        case.run_engine()
        if case.naive:
            case.run_naive()
    for _ in range(args.repeat):
        for case in cases:
            case.once()

    print(
        f"{'case':44s} {'util':>5s} {'engine req/CPU-s':>17s} {'naive req/CPU-s':>16s} {'ratio':>6s} "
        f"{'identical':>9s}  target"
    )
    all_met = True
    for case in cases:
        res, spec = case.result, case.spec
        fast = statistics.median(case.fast_rates)
        util = float(np.mean(res.busy_ms) / res.end_ms)
        if case.naive:
            naive = statistics.median(case.naive_rates)
            ratio = statistics.median(f / s for f, s in zip(case.fast_rates, case.naive_rates, strict=True))
            naive_s, ratio_s = f"{naive:16,.0f}", f"{ratio:6.1f}"
        else:
            ratio = None
            naive_s, ratio_s = f"{'-':>16s}", f"{'-':>6s}"
        goals, met = [], True
        if "target" in spec:
            goals.append(f">= {spec['target'] / 1e6:g} M/CPU-s")
            met &= fast >= spec["target"]
        if "ratio" in spec:
            goals.append(f">= {spec['ratio']:g}x naive")
            met &= ratio is not None and ratio >= spec["ratio"]
        target = f"{' and '.join(goals)}: {'MET' if met else 'NOT MET'}" if goals else "-"
        all_met &= met
        same = "yes" if case.identical() else "NO"
        print(f"{case.name:44s} {util:5.2f} {fast:17,.0f} {naive_s} {ratio_s} {same:>9s}  {target}")
        if spec.get("feed_cache"):
            rec = res.records
            served = rec.l1_hit | rec.l2_hit
            spread = f"{min(case.fast_rates):,.0f} to {max(case.fast_rates):,.0f}"
            print(
                f"{'':44s} served by the cache {served.mean():.1%}; {int((~served).sum()):,} requests reached the "
                f"fleet in {len(np.unique(rec.batch_id[~served])):,} batches (mean size "
                f"{rec.batch_size[~served].mean():.2f}); engine runs ranged {spread} req/CPU-s"
            )
    print(f"all targets {'met' if all_met else 'NOT all met'}")


if __name__ == "__main__":
    main()
