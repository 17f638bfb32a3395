"""Every shipped experiment's reduced run against its recorded summary (``tests/expected/<name>.json``),
as SimPy runs its documentation examples against their recorded output.

The reduced run is the experiment file's own configuration (its sweep grid is not expanded) for
``REQUESTS`` requests with the file's seed: a few seconds each, and the key quantities of the
summary (percentiles, throughput, utilisation, batch size, the latency decomposition, cache hit
ratios, stability) must match what was recorded.

Tolerances. Same seed, same bytes: on one machine a run is deterministic, so any change of a
recorded number means the simulation changed (the engine, a workload generator, metrics, a
profile). The tolerance only absorbs floating-point differences across platforms and library
builds (libm's exp/log and numpy's reductions may differ in the last bits), which move a latency
by about 1e-15 relative: ``REL = 1e-6`` leaves six orders of magnitude of room for that while still
catching any real change (a changed draw moves a p99 by far more than 1e-6). ``ABS = 1e-9`` ms (or
ratio) covers quantities that are exactly 0. Counts and flags must match exactly. If a platform
difference ever flips a discrete decision (a batch closing one request earlier), the numbers move
by more than REL and the test says which; re-record only after checking why.

Re-recording after an intended change: ``SIMLAT_UPDATE_EXPECTED=1 pytest tests/test_expected.py``
(or ``pytest tests/test_expected.py --update-expected``) rewrites the files; review the diff and
commit it with the change that caused it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from simlat.api import run
from simlat.config import load_experiment
from simlat.metrics import DECOMPOSITION, Summary

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
EXPECTED = Path(__file__).resolve().parent / "expected"
REQUESTS = 20_000
REL = 1e-6
ABS = 1e-9

FIELDS = (
    "requests",
    "completed",
    "stable",
    "drop_rate",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "slo_estimate_ms",
    "throughput_rps",
    "mean_batch_size",
    *DECOMPOSITION,
    "cache_hit_ratio",
    "cache_l1_hit_ratio",
    "cache_l2_hit_ratio",
)


def reduced_summary(summary: Summary) -> dict[str, Any]:
    """The recorded quantities of a summary (``utilization_mean``: the mean over replicas)."""
    out: dict[str, Any] = {name: getattr(summary, name) for name in FIELDS}
    util = summary.utilization
    out["utilization_mean"] = sum(util) / len(util) if util else None
    return out


def updating(config: pytest.Config) -> bool:
    return os.environ.get("SIMLAT_UPDATE_EXPECTED") == "1" or bool(config.getoption("--update-expected"))


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """One line per quantity that differs beyond the tolerances (see the module doc)."""
    out = []
    for key in sorted(set(got) | set(want)):
        g, w = got.get(key, "(absent)"), want.get(key, "(absent)")
        if isinstance(g, float) and isinstance(w, float) and not isinstance(w, bool):
            if not math.isclose(g, w, rel_tol=REL, abs_tol=ABS):
                out.append(f"{key}: got {g!r}, recorded {w!r} (relative difference {abs(g - w) / max(abs(w), 1e-300):.2e})")
        elif isinstance(g, int) and isinstance(w, float) and not isinstance(g, bool):
            if not math.isclose(g, w, rel_tol=REL, abs_tol=ABS):
                out.append(f"{key}: got {g!r}, recorded {w!r}")
        elif g != w or type(g) is not type(w):
            out.append(f"{key}: got {g!r}, recorded {w!r}")
    return out


def test_every_recording_has_an_experiment():
    names = {p.stem for p in EXPERIMENTS}
    stale = sorted(p.name for p in EXPECTED.glob("*.json") if p.stem not in names)
    assert not stale, f"recordings without an experiment (delete them): {stale}"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_reduced_run_matches_its_recording(path: Path, request: pytest.FixtureRequest):
    exp = load_experiment(path)
    arr = exp.workload.arrivals
    if arr.kind == "trace" and not Path(arr.path).exists():
        pytest.skip(f"{path.name} replays {arr.path}, which is absent")
    got = reduced_summary(run(exp, requests=REQUESTS, seed=exp.run.seed).summary)
    got = json.loads(json.dumps(got))  # as recorded: JSON numbers
    file = EXPECTED / f"{path.stem}.json"
    if updating(request.config):
        record = {"experiment": path.stem, "requests": REQUESTS, "seed": exp.run.seed, "summary": got}
        file.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
        return
    assert file.is_file(), f"no recording for {path.name}: run SIMLAT_UPDATE_EXPECTED=1 pytest {Path(__file__).name}"
    want = json.loads(file.read_text())
    assert (want["requests"], want["seed"]) == (REQUESTS, exp.run.seed), "recorded with other settings: re-record"
    diff = differences(got, want["summary"])
    assert not diff, f"{path.name}: the reduced run differs from {file.relative_to(ROOT)}:\n" + "\n".join(diff)


def test_the_comparison_can_fail():
    want = {"p99_ms": 2.5, "requests": 18000, "stable": True, "cache_hit_ratio": None, "cache_ms": 0.0}
    assert differences(dict(want), want) == []
    assert differences({**want, "p99_ms": 2.5 * (1 + 1e-12), "cache_ms": 1e-12}, want) == []  # platform noise
    assert [d.split(":")[0] for d in differences({**want, "p99_ms": 2.5 * (1 + 1e-5)}, want)] == ["p99_ms"]
    assert differences({**want, "requests": 18001}, want)
    assert differences({**want, "stable": False}, want)
    assert differences({**want, "cache_hit_ratio": 0.5}, want)
    assert differences({k: v for k, v in want.items() if k != "p99_ms"}, want)
