"""Sweep speed: configurations per minute with 1 and 2 local workers, and the speed-up between them.

Runs the sweep of an experiment (default experiments/feed.yaml, every configuration with its rate
search, at the file's accuracy settings) without the result cache, once per worker count, and
prints a table. ``--configs N`` takes the first N configurations of the grid (in grid order) for a
quicker measurement; the default is the whole grid.

    python benchmarks/sweep_bench.py                         # whole feed grid, 1 then 2 workers
    python benchmarks/sweep_bench.py --configs 60 --workers 1 2 4
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", nargs="?", default=str(ROOT / "experiments" / "feed.yaml"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--configs", type=int, default=None, help="use at most this many configurations")
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = ap.parse_args()

    path = Path(args.experiment)
    exp = first_configs(load_experiment(path), args.configs)
    print(f"{exp.name}: {exp.sweep.size} configurations, rate search {exp.sweep.rate_search is not None}")
    print(f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores usable")
    rows = []
    reference = None
    for w in args.workers:
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
            "chosen": res.recommendation,
        }
        if reference is None:
            reference = res.points
        else:  # the executor must not change results
            same = reference["max_rate_rps"].equals(res.points["max_rate_rps"])
            row["same_results_as_first"] = bool(same)
        rows.append(row)
        print(
            f"workers={w}: {n} configurations in {wall:.1f} s = {row['configs_per_min']} configurations/min "
            f"({row['requests_simulated']:,} requests simulated)"
        )
    base = rows[0]["wall_s"]
    for row in rows[1:]:
        row["speedup"] = round(base / row["wall_s"], 2)
        print(f"speed-up {rows[0]['workers']} -> {row['workers']} workers: {row['speedup']}x")
    print(f"operating point: {rows[0]['chosen']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
