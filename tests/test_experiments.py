"""Every shipped experiment is a test input: it validates against the schema, every configuration of
its sweep grid validates, and it runs end to end in a reduced mode (few requests, tiny grid)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlat.api import run
from simlat.config import load_experiment
from simlat.sweep.grid import expand
from simlat.sweep.runner import ATTRIBUTIONS, run_sweep

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
SHARED_TRACES = ROOT.parent / "shared" / "traces"


def _skip_if_data_absent(exp, path: Path) -> None:
    contention = exp.fleet.contention
    if contention is not None and not Path(contention.path).exists():
        pytest.skip(
            f"{path.name} reads the contention profile {contention.path}, which is absent (measure it with "
            "simlat calibrate --contention on the GPU; tests/test_shared_gpu.py runs this experiment on "
            "synthetic test data meanwhile)"
        )
    arr = exp.workload.arrivals
    if arr.kind == "trace" and not Path(arr.path).exists():
        pytest.skip(
            f"{path.name} replays {arr.path}, which is absent (the shared trace folder "
            f"{SHARED_TRACES} is not next to this checkout)"
        )


def reduced(exp):
    """The same experiment with a tiny grid (the first value of each path, two of the first) and
    few requests, so that every file runs end to end in seconds."""
    sweep = exp.sweep
    grid = {p: v[:2] if i == 0 else v[:1] for i, (p, v) in enumerate(sweep.grid.items())}
    small = sweep.model_copy(
        update={
            "grid": grid,
            "cases": sweep.cases[:1],
            "min_requests": 3000,
            "max_requests": 6000,
            "rate_search": None
            if sweep.rate_search is None
            else sweep.rate_search.model_copy(update={"tolerance": 0.3, "max_steps": 2}),
        }
    )
    return exp.model_copy(update={"sweep": small})


def test_the_shipped_experiments_are_there():
    names = {p.stem for p in EXPERIMENTS}
    assert {"demo", "feed", "ads", "search", "fraud", "fraud_hardware", "trace_replay"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_validates_and_every_configuration_too(path):
    exp = load_experiment(path)
    assert exp.name == path.stem, "the experiment name names its cache folder and report: keep it the file's"
    if exp.sweep is None:
        return
    configs = expand(exp, base_dir=path.parent)
    assert len(configs) == exp.sweep.size >= 2
    if path.stem == "feed":
        assert len(configs) >= 200, "the feed sweep is the speed benchmark: at least 200 configurations"
        assert exp.sweep.rate_search is not None


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_runs_in_reduced_mode(path):
    exp = load_experiment(path)
    _skip_if_data_absent(exp, path)
    if exp.sweep is None:
        summary = run(exp, requests=5000).summary
        assert summary.requests > 0 and summary.p99_ms is not None
        return
    result = run_sweep(reduced(exp), base_dir=path.parent, cache_dir=None, workers=1, details=False)
    assert len(result.points) == min(2, exp.sweep.size)
    assert result.recommendation
    assert result.points["stable"].dtype == bool
    assert set(result.load_curves["config_id"]) == set(result.points["config_id"])
    if exp.workload.arrivals.kind == "trace":
        expected = ATTRIBUTIONS.get(Path(exp.workload.arrivals.path).name)
        assert expected and expected in result.attribution
