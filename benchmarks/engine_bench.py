"""Engine speed: simulated requests per CPU-second, fast engine vs the naive per-request model.

Runs, in one process, the naive one-process-per-request SimPy model
(:mod:`simlat.engine.reference`) and the engine on the same experiment and the same arrivals,
checks that they give identical latencies, and prints both rates and their ratio (medians of
``--repeat`` alternating runs after one warm-up run each; CPU time, user + system, from
``time.process_time``). Cases, each at utilisation about 0.8:

a. dynamic batching (on_free, B=32, W=2 ms, 1 ms + 0.05 ms/item), one replica;
b. 8 replicas, per-replica queues, join-shortest-queue, same batching;
c. no batching, one replica, exponential service (M/M/1).

Usage: ``python benchmarks/engine_bench.py [--requests N] [--naive-requests N] [--repeat K]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from simlat.config import parse_experiment
from simlat.engine import simulate
from simlat.engine.reference import simulate_naive
from simlat.workload import Requests

BATCHING = {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2.0, "dispatch": "on_free"}
AFFINE = {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.05}

CASES = {
    "a. dynamic batching, 1 replica": dict(
        batching=BATCHING, service=AFFINE, fleet={"replicas": 1}, rate=8.0
    ),
    "b. 8 replicas, JSQ, dynamic batching": dict(
        batching=BATCHING,
        service=AFFINE,
        fleet={"replicas": 8, "queue": "per_replica", "balancer": "join_shortest_queue"},
        rate=8 * 8.0,
    ),
    "c. no batching, M/M/1": dict(
        batching={"kind": "none"},
        service={"kind": "exponential", "mean_ms": 1.0},
        fleet={"replicas": 1},
        rate=0.8,
    ),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2_000_000, help="requests per engine run")
    ap.add_argument("--naive-requests", type=int, default=300_000, help="requests per naive run")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(
        f"python {platform.python_version()}, {cpu_name()}, {os.cpu_count()} logical CPUs; rates in CPU time"
    )
    print(
        f"{'case':40s} {'util':>5s} {'engine req/CPU-s':>17s} {'naive req/CPU-s':>16s} {'ratio':>6s}  identical"
    )
    for name, case in CASES.items():
        exp = experiment(case["batching"], case["service"], case["fleet"], case["rate"])
        seed = np.random.SeedSequence(1)
        big = poisson(case["rate"], args.requests)
        small = poisson(case["rate"], args.naive_requests)
        # one warm-up run each (imports, first touch of the memory), then engine and naive runs
        # alternate, so that a busy machine slows both alike
        simulate(exp, big, seed=seed)
        simulate_naive(exp, small, seed=seed)
        fast_rates, naive_rates, ratios = [], [], []
        for _ in range(args.repeat):
            t_fast, res = cpu_seconds(lambda e=exp, r=big, s=seed: simulate(e, r, seed=s))
            t_naive, naive_lat = cpu_seconds(lambda e=exp, r=small, s=seed: simulate_naive(e, r, seed=s))
            fast_rates.append(len(big) / t_fast)
            naive_rates.append(len(small) / t_naive)
            ratios.append(fast_rates[-1] / naive_rates[-1])
        fast_rate, naive_rate = statistics.median(fast_rates), statistics.median(naive_rates)
        util = float(np.mean(res.busy_ms) / res.end_ms)
        same = np.allclose(simulate(exp, small, seed=seed).records.latency_ms, naive_lat, rtol=1e-12, atol=0)
        print(
            f"{name:40s} {util:5.2f} {fast_rate:17,.0f} {naive_rate:16,.0f} {statistics.median(ratios):6.1f}  "
            f"{'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
