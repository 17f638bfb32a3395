"""Sweep speed: configurations per minute with 1 and 2 local workers, and the speed-up between them.

Runs the sweep of an experiment (default experiments/feed.yaml, every configuration with its rate
search, at the file's accuracy settings) without the result cache, once per worker count, and
prints a table. ``--configs N`` takes the first N configurations of the grid (in grid order) for a
quicker measurement; the default is the whole grid.

    python benchmarks/sweep_bench.py                         # whole feed grid, 1 then 2 workers
    python benchmarks/sweep_bench.py --configs 60 --workers 1 2 4
    python benchmarks/sweep_bench.py --repeat 3   # interleaved repeats; the best wall time counts

On a machine shared with other work, the wall time depends on how much CPU the others leave:
each row also reports the workers' CPU time and the parallel efficiency (worker CPU time over
wall time x workers), which falls below 1 exactly when the sweep was waiting for a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from simlat.config import load_experiment
from simlat.sweep.runner import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def first_configs(exp, n: int | None):
    """The experiment with its grid cut so that it holds at most ``n`` configurations.

    The last grid paths are trimmed first, so the leading dimensions (replicas, say) keep their range.
    """
    if n is None or exp.sweep.size <= n:
        return exp
    grid = {p: list(v) for p, v in exp.sweep.grid.items()}
    cases = list(exp.sweep.cases)
    for path in reversed(list(grid)):
        while len(grid[path]) > 1 and _size(grid, cases) > n:
            grid[path].pop()
    while len(cases) > 1 and _size(grid, cases) > n:
        cases.pop()
    return exp.model_copy(update={"sweep": exp.sweep.model_copy(update={"grid": grid, "cases": cases})})


def _size(grid, cases) -> int:
    n = max(1, len(cases))
    for v in grid.values():
        n *= len(v)
    return n


def _once(exp, path: Path, w: int) -> tuple[dict, object]:
    t0 = time.perf_counter()
    res = run_sweep(exp, base_dir=path.resolve().parent, workers=w, cache_dir=None, details=False)
    wall = time.perf_counter() - t0
    n = len(res.points)
    row = {
        "workers": w,
        "configurations": n,
        "wall_s": round(wall, 2),
        "configs_per_min": round(n / wall * 60, 1),
        "requests_simulated": int(res.points["requests_simulated"].sum()),
        "worker_cpu_s": round(res.cpu_s, 1),
        # share of the workers' wall time spent computing: < 1 when other processes took the CPU
        "parallel_efficiency": round(res.cpu_s / (wall * min(w, n)), 2),
        "load_avg_after": os.getloadavg()[0],
        "chosen": res.recommendation,
    }
    return row, res.points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", nargs="?", default=str(ROOT / "experiments" / "feed.yaml"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--configs", type=int, default=None, help="use at most this many configurations")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved runs per worker count (best wall time counts)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = ap.parse_args()

    path = Path(args.experiment)
    exp = first_configs(load_experiment(path), args.configs)
    print(f"{exp.name}: {exp.sweep.size} configurations, rate search {exp.sweep.rate_search is not None}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores usable, "
        f"load average before {os.getloadavg()[0]:.2f}"
    )
    runs: dict[int, list[dict]] = {w: [] for w in args.workers}
    reference = None
    for rep in range(args.repeat):
        for w in args.workers:
            row, points = _once(exp, path, w)
            row["repeat"] = rep
            if reference is None:
                reference = points
            else:  # the executor must not change results
                row["same_results_as_first"] = bool(reference["max_rate_rps"].equals(points["max_rate_rps"]))
            runs[w].append(row)
            print(
                f"workers={w}: {row['configurations']} configurations in {row['wall_s']:.1f} s = "
                f"{row['configs_per_min']} configurations/min ({row['requests_simulated']:,} requests simulated; "
                f"worker CPU {row['worker_cpu_s']} s, parallel efficiency {row['parallel_efficiency']}, "
                f"load average {row['load_avg_after']:.2f})",
                flush=True,
            )
    rows = [min(runs[w], key=lambda r: r["wall_s"]) for w in args.workers]
    base = rows[0]["wall_s"]
    for row in rows[1:]:
        row["speedup"] = round(base / row["wall_s"], 2)
        print(f"speed-up {rows[0]['workers']} -> {row['workers']} workers (best of {args.repeat}): {row['speedup']}x")
    print(f"operating point: {rows[0]['chosen']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
