"""Sweeps: grid expansion and its errors, rate scaling, rate search against M/M/1 theory, adaptive run
length, the operating point, the Parquet cache (resume, partial recompute), and executor equivalence."""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simlat.config import parse_experiment
from simlat.errors import SimlatError
from simlat.sweep.cache import ResultCache
from simlat.sweep.choose import choose, headroom, pareto_mask
from simlat.sweep.describe import lat
from simlat.sweep.evaluate import MEETS, UNSTABLE, evaluate
from simlat.sweep.grid import expand
from simlat.sweep.hashing import config_hash
from simlat.sweep.rate import mean_rate_rps, with_rate
from simlat.sweep.runner import run_sweep

# A small GPU-like ranking service: 4 items per request, batches of up to max_batch_size requests.
BASE = {
    "name": "sweep-test",
    "workload": {"arrivals": {"kind": "poisson", "rate_rps": 2000.0}, "items_per_request": 4},
    "fleet": {"replicas": 2},
    "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
    "service": {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.05},
    "slo": {"percentile": 99.0, "latency_ms": 12.0, "target_rate_rps": 2000.0},
    "run": {"seed": 3},
    "sweep": {
        "grid": {"fleet.replicas": [1, 2, 3], "batching.max_batch_size": [4, 16]},
        "cost_per_replica_hour": 2.0,
        "min_requests": 4000,
        "max_requests": 16000,
        "rate_search": {"tolerance": 0.08},
    },
}


def make(**sweep_updates):
    data = copy.deepcopy(BASE)
    data["sweep"].update(sweep_updates)
    return parse_experiment(data)


# ---------------------------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_with_stable_ids():
    exp = make()
    configs = expand(exp)
    assert len(configs) == 6 == exp.sweep.size
    assert {(c.experiment.fleet.replicas, c.experiment.batching.max_batch_size) for c in configs} == {
        (r, b) for r in (1, 2, 3) for b in (4, 16)
    }
    assert len({c.config_id for c in configs}) == 6
    assert [c.config_id for c in expand(make())] == [c.config_id for c in configs]
    assert configs[0].label == "replicas=1 max_batch_size=4"
    assert all(c.experiment.sweep is None for c in configs)


def test_cases_vary_paths_together():
    exp = make(
        grid={"batching.max_batch_size": [4, 8]},
        cases=[{"fleet.replicas": 1, "service.base_ms": 0.5}, {"fleet.replicas": 2, "service.base_ms": 2.0}],
    )
    pairs = {(c.experiment.fleet.replicas, c.experiment.service.base_ms) for c in expand(exp)}
    assert pairs == {(1, 0.5), (2, 2.0)}
    assert exp.sweep.params == ["fleet.replicas", "service.base_ms", "batching.max_batch_size"]


@pytest.mark.parametrize(
    "grid, needles",
    [
        ({"fleet.replica": [1]}, ["sweep.grid.fleet.replica[0]", "fleet.replica", "unknown key"]),
        ({"batching.max_batch_size": [4, 0]}, ["sweep.grid.batching.max_batch_size[1]", "0", "greater than 0"]),
        ({"fleet.balancer": ["fastest"]}, ["sweep.grid.fleet.balancer[0]", "'fastest'", "round_robin"]),
        ({"service.per_item_ms": [-1.0]}, ["service.per_item_ms", "-1.0", "greater than or equal to 0"]),
    ],
)
def test_bad_grid_entries_name_path_value_and_rule(grid, needles):
    with pytest.raises(SimlatError) as info:
        expand(make(grid=grid))
    text = str(info.value)
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.mark.parametrize(
    "sweep, needle",
    [
        ({"grid": {"fleet..replicas": [1]}}, "not a dotted experiment path"),
        ({"grid": {"fleet.replicas": []}}, "at least one value"),
        ({"objective": "cheapest"}, "min_cost"),
        ({"min_requests": 10, "max_requests": 5}, "min_requests (10) must be <= max_requests (5)"),
        ({"rate_search": {"low_rps": 10, "high_rps": 5}}, "low_rps (10.0) must be < high_rps (5.0)"),
        ({"grid": {"sweep.objective": ["min_cost"]}}, "cannot vary its own block"),
        ({"gird": {}}, "sweep.gird: unknown key"),
    ],
)
def test_bad_sweep_blocks_are_schema_errors(sweep, needle):
    data = copy.deepcopy(BASE)
    data["sweep"].update(sweep)
    with pytest.raises(SimlatError) as info:
        parse_experiment(data)
    assert needle in str(info.value)


def test_duplicate_configurations_are_rejected():
    with pytest.raises(SimlatError, match="same configuration"):
        expand(make(grid={"fleet.replicas": [2, 2]}))


def test_missing_price_is_an_error_naming_the_device():
    data = copy.deepcopy(BASE)
    data["device"] = "h100"
    data["sweep"].pop("cost_per_replica_hour")
    data["sweep"]["prices"] = {"a100": 2.0}
    with pytest.raises(SimlatError, match="no price for device 'h100'"):
        run_sweep(parse_experiment(data), cache_dir=None)


def test_config_hash_covers_every_field_but_the_name():
    a = make()
    assert config_hash(a) == config_hash(a.model_copy(update={"name": "other", "description": "x"}))
    b = a.model_copy(update={"slo": a.slo.model_copy(update={"latency_ms": 13.0})})
    assert config_hash(a) != config_hash(b)


# ---------------------------------------------------------------------------------------------
# Rates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arrivals",
    [
        {"kind": "poisson", "rate_rps": 100.0},
        {"kind": "gamma", "rate_rps": 100.0, "cv": 2.0},
        {"kind": "mmpp", "rates_rps": [50.0, 400.0], "mean_durations_s": [3.0, 1.0]},
        {"kind": "on_off", "on_rate_rps": 300.0, "off_rate_rps": 10.0, "mean_on_s": 1.0, "mean_off_s": 2.0},
        {"kind": "rate_curve", "points": [[0, 100.0], [10, 300.0], [20, 100.0]]},
        {"kind": "diurnal", "mean_rate_rps": 100.0, "amplitude": 0.5, "period_s": 60.0},
    ],
)
def test_with_rate_scales_the_mean_offered_rate_and_keeps_the_shape(arrivals):
    data = copy.deepcopy(BASE)
    data["workload"]["arrivals"] = arrivals
    exp = parse_experiment(data)
    scaled = with_rate(exp, 1234.0).workload.arrivals
    assert mean_rate_rps(scaled) == pytest.approx(1234.0)
    assert scaled.kind == arrivals["kind"]


def test_adaptive_length_spends_requests_only_near_the_bound():
    exp = make()
    one = expand(exp)[3]  # 2 replicas, batch 16
    far = evaluate(one.experiment, exp.sweep, 200.0, seed=1)
    assert far.verdict == MEETS and far.requests_run == exp.sweep.min_requests
    over = evaluate(one.experiment, exp.sweep, 1e6, seed=1)
    assert over.verdict == UNSTABLE and over.requests_run == exp.sweep.min_requests


@pytest.mark.slow
def test_rate_search_finds_the_mm1_p99_capacity():
    """M/M/1 (exponential service, mean 1 ms): p99 sojourn is ln(100) / (mu - lambda), so p99 <= 20 ms
    holds up to lambda* = 1000 - ln(100) / 0.020 = 769.7 req/s. The search keeps the CI's upper end
    within the bound, so it lands a little below lambda*, never far above it."""
    data = {
        "name": "mm1",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 500.0}},
        "service": {"kind": "exponential", "mean_ms": 1.0},
        "slo": {"percentile": 99.0, "latency_ms": 20.0, "target_rate_rps": 500.0},
        "run": {"seed": 11},
        "sweep": {
            "grid": {"fleet.replicas": [1]},
            "min_requests": 40000,
            "max_requests": 320000,
            "objective": "min_replicas",
            "rate_search": {"tolerance": 0.02},
        },
    }
    result = run_sweep(parse_experiment(data), cache_dir=None, workers=1, details=False)
    lam = 1000 - math.log(100) / 0.020
    row = result.points.iloc[0]
    assert 0.88 * lam <= row["max_rate_rps"] <= 1.02 * lam, row["max_rate_rps"]
    assert row["headroom"] == pytest.approx(row["max_rate_rps"] / 500.0 - 1)
    # p99 at the target rate: ln(100) / (1000 - 500) s = 9.21 ms, inside the reported interval
    assert row["slo_lo_ms"] <= 1000 * math.log(100) / 500 <= row["slo_hi_ms"]
    # no unstable point was ever bisected through: every simulated rate below the max meets the SLO
    curve = result.load_curves
    assert (curve[curve["rate_rps"] <= row["max_rate_rps"]]["verdict"] == MEETS).all()


# ---------------------------------------------------------------------------------------------
# Operating point
# ---------------------------------------------------------------------------------------------


def _points(rows):
    cols = ["config_id", "cost_per_hour", "replicas", "p99_ms", "max_rate_rps", "stable", "meets_slo",
            "slo_hi_ms", "headroom"]
    return pd.DataFrame(rows, columns=cols)


def test_choose_pareto_and_headroom():
    pts = _points(
        [
            ("a", 4.0, 2, 25.0, 1100.0, True, True, 28.0, 0.10),
            ("b", 4.0, 2, 20.0, 1300.0, True, True, 24.0, 0.30),  # same cost, more headroom
            ("c", 2.0, 1, 40.0, 600.0, True, False, 45.0, math.nan),  # cheapest but misses
            ("d", 8.0, 4, 10.0, 3000.0, True, True, 11.0, 2.0),
            ("e", 8.0, 4, 12.0, 2500.0, True, True, 13.0, 1.5),  # dominated by d
            ("f", 1.0, 1, math.nan, math.nan, False, False, math.nan, math.nan),  # unstable
        ]
    )
    assert choose(pts, "min_cost") == "b"
    assert choose(pts, "min_replicas") == "b"
    assert choose(pts, "max_throughput_per_replica") == "d"
    assert list(pts["config_id"][pareto_mask(pts)]) == ["b", "c", "d"]
    assert choose(pts.assign(meets_slo=False), "min_cost") is None
    assert choose(pts, "min_cost", min_headroom=0.5) == "d"  # b (the cheapest) has only 30% headroom
    assert choose(pts, "min_cost", min_headroom=3.0) is None
    assert headroom(1380.0, 1000.0) == pytest.approx(0.38)
    assert math.isnan(headroom(math.nan, 1000.0))


def test_sweep_chooses_the_cheapest_configuration_meeting_the_slo(tmp_path):
    result = run_sweep(make(), cache_dir=tmp_path, workers=1)
    pts = result.points.set_index("config_id")
    assert result.chosen is not None
    best = pts.loc[result.chosen]
    assert best["meets_slo"] and best["slo_hi_ms"] <= 12.0 and best["slo_met_probability"] >= 0.95
    cheaper = pts[pts["cost_per_hour"] < best["cost_per_hour"]]
    assert not cheaper["meets_slo"].any()
    assert best["max_rate_rps"] >= 2000.0 and best["headroom"] >= 0
    # the recommendation states the decision in plain words with the chosen point's numbers
    text = result.recommendation
    assert f"{int(best['replicas'])} replica" in text and "at 2,000 req/s" in text
    est, lo, hi = (lat(best[k]) for k in ("slo_estimate_ms", "slo_lo_ms", "slo_hi_ms"))
    assert f"p99 {est} ms [{lo}, {hi}]" in text
    # chosen-point details are those its search kept at the target rate (nothing is re-run)
    q = result.chosen_quantiles
    assert q is not None and result.chosen_requests > 1000 and np.all(np.diff(q["latency_ms"]) >= 0)
    assert np.interp(0.99, q["quantile"], q["latency_ms"]) == pytest.approx(best["p99_ms"], rel=0.05)
    assert sum(result.chosen_batch_hist) > 0 and max(result.chosen_batch_hist) <= 16
    assert set(result.chosen_decomposition_ms) >= {"queue_wait_ms", "batch_wait_ms", "service_ms"}
    # load curves: every configuration has its target-rate point
    assert set(result.load_curves["config_id"]) == set(pts.index)
    assert result.points["pareto"].any()


# ---------------------------------------------------------------------------------------------
# Cache and executors
# ---------------------------------------------------------------------------------------------


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = ["config_id", "max_rate_rps", "slo_estimate_ms", "slo_hi_ms", "p99_ms", "meets_slo",
            "requests_simulated"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_cache_resumes_and_recomputes_only_what_changed(tmp_path):
    first = run_sweep(make(), cache_dir=tmp_path, workers=1, details=False)
    files = sorted((tmp_path / "sweep-test").glob("*.parquet"))
    assert first.cached_configs == 0 and len(files) == 6
    again = run_sweep(make(), cache_dir=tmp_path, workers=1, details=False)
    assert again.cached_configs == 6
    _compare(first.points, again.points)
    # an interrupted sweep: one configuration's file is missing -> only it is recomputed
    files[0].unlink()
    resumed = run_sweep(make(), cache_dir=tmp_path, workers=1, details=False)
    assert resumed.cached_configs == 5
    _compare(first.points, resumed.points)
    # a changed experiment: a new grid value adds two configurations, the others come from the cache
    grown = run_sweep(
        make(grid={"fleet.replicas": [1, 2, 3, 4], "batching.max_batch_size": [4, 16]}),
        cache_dir=tmp_path, workers=1, details=False,
    )
    assert grown.cached_configs == 6 and len(grown.points) == 8
    # accuracy settings are part of the key
    stricter = run_sweep(make(max_requests=32000), cache_dir=tmp_path, workers=1, details=False)
    assert stricter.cached_configs == 0


def test_cache_key_includes_the_code_fingerprint(monkeypatch):
    from simlat.sweep import cache
    from simlat.sweep.search import SearchTask

    exp = make()
    task = SearchTask(config_hash(exp), exp, exp.sweep, 100.0, 1)
    key = cache.task_key(task)
    assert cache.task_key(task) == key
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "an-edited-engine")
    assert cache.task_key(task) != key


def test_code_fingerprint_follows_the_engine_source(tmp_path):
    import shutil

    from simlat.sweep.hashing import PACKAGE, code_fingerprint

    copy_root = tmp_path / "simlat"
    shutil.copytree(PACKAGE, copy_root, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_fingerprint(copy_root)
    assert before == code_fingerprint(PACKAGE)  # the fingerprint is of the content, not the location
    engine = copy_root / "engine" / "batching.py"
    engine.write_text(engine.read_text() + "\n# an edit\n")
    code_fingerprint.cache_clear()
    assert code_fingerprint(copy_root) != before
    report = copy_root / "report" / "page.py"  # not simulation code: results stay valid
    edited = code_fingerprint(copy_root)
    report.write_text(report.read_text() + "\n# an edit\n")
    code_fingerprint.cache_clear()
    assert code_fingerprint(copy_root) == edited


def test_a_corrupt_cache_entry_is_recomputed(tmp_path):
    run_sweep(make(grid={"fleet.replicas": [2]}), cache_dir=tmp_path, workers=1, details=False)
    (entry,) = (tmp_path / "sweep-test").glob("*.parquet")
    entry.write_bytes(b"not parquet")
    again = run_sweep(make(grid={"fleet.replicas": [2]}), cache_dir=tmp_path, workers=1, details=False)
    assert again.cached_configs == 0
    assert ResultCache(tmp_path, "sweep-test").dir == tmp_path / "sweep-test"


@pytest.mark.timeout(120)
def test_same_results_in_process_in_a_local_pool_and_on_dask():
    from distributed import LocalCluster

    exp = make()
    serial = run_sweep(exp, cache_dir=None, workers=1, details=False)
    pool = run_sweep(exp, cache_dir=None, workers=2, details=False)
    _compare(serial.points, pool.points)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = run_sweep(exp, cache_dir=None, cluster=cluster.scheduler_address, details=False)
    _compare(serial.points, dask.points)
    assert dask.executor.startswith("Dask cluster at tcp://")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "simlat.cli", "sweep", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_cli_sweep_prints_the_recommendation(tmp_path):
    path = tmp_path / "exp.yaml"
    data = copy.deepcopy(BASE)
    data["sweep"]["grid"] = {"fleet.replicas": [1, 2]}
    path.write_text(yaml.safe_dump(data))
    proc = _cli(str(path), "--workers", "1", "--quiet", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 configurations (0 from cache)" in proc.stdout
    assert re.search(r"Recommendation: \d replicas? of affine service .* at 2,000 req/s, SLO met", proc.stdout)
    assert (tmp_path / ".simlat-cache" / "sweep-test").is_dir()


def test_cli_sweep_bad_grid_exits_2_without_traceback(tmp_path):
    path = tmp_path / "exp.yaml"
    data = copy.deepcopy(BASE)
    data["sweep"]["grid"] = {"batching.max_wait_ms": [1.0, -2.0]}
    path.write_text(yaml.safe_dump(data))
    proc = _cli(str(path), "--quiet", "--no-report", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "sweep.grid.batching.max_wait_ms[1]" in proc.stderr and "-2.0" in proc.stderr
    assert "greater than or equal to 0" in proc.stderr


def test_cli_sweep_without_sweep_block(tmp_path):
    path = tmp_path / "exp.yaml"
    data = copy.deepcopy(BASE)
    del data["sweep"]
    path.write_text(yaml.safe_dump(data))
    proc = _cli(str(path), "--quiet", "--no-report", cwd=tmp_path)
    assert proc.returncode == 2 and "has no sweep block" in proc.stderr


def test_swept_file_paths_resolve_against_the_experiment_and_hash_by_content(tmp_path):
    (tmp_path / "traces").mkdir()
    for name, gap in (("a.csv", 0.01), ("b.csv", 0.02)):
        ts = np.cumsum(np.full(50, gap))
        pd.DataFrame({"timestamp": ts}).to_csv(tmp_path / "traces" / name, index=False)
    data = copy.deepcopy(BASE)
    data["workload"]["arrivals"] = {"kind": "trace", "path": str(tmp_path / "traces" / "a.csv"), "unit": "s"}
    data["sweep"]["grid"] = {"workload.arrivals.path": ["traces/a.csv", "traces/b.csv"]}
    configs = expand(parse_experiment(data), base_dir=tmp_path)
    paths = [Path(c.experiment.workload.arrivals.path) for c in configs]
    assert paths == [tmp_path / "traces" / "a.csv", tmp_path / "traces" / "b.csv"]
    assert configs[0].config_id != configs[1].config_id
    assert [c.label for c in configs] == ["path=a", "path=b"]


def test_a_configuration_the_simulator_rejects_is_reported_not_fatal(tmp_path):
    ts = np.cumsum(np.full(3000, 0.001))
    pd.DataFrame({"timestamp": ts}).to_csv(tmp_path / "ok.csv", index=False)
    data = copy.deepcopy(BASE)
    data["workload"]["arrivals"] = {"kind": "trace", "path": str(tmp_path / "ok.csv"), "unit": "s",
                                    "target_rate_rps": 2000.0}
    data["sweep"]["grid"] = {"workload.arrivals.path": [str(tmp_path / "ok.csv"), str(tmp_path / "missing.csv")]}
    result = run_sweep(parse_experiment(data), cache_dir=tmp_path / "cache", workers=1, details=False)
    notes = list(result.points["note"])
    assert not notes[0].startswith("error:")
    assert notes[1].startswith("error:") and "missing.csv" in notes[1]
    assert not result.points["meets_slo"].iloc[1]
    assert len(list((tmp_path / "cache").rglob("*.parquet"))) == 1  # rejected points are not cached
    data["sweep"]["grid"] = {"workload.arrivals.path": [str(tmp_path / "missing.csv")]}
    with pytest.raises(SimlatError, match="every configuration was rejected"):
        run_sweep(parse_experiment(data), cache_dir=None, workers=1)
