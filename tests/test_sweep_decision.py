"""The decision a sweep makes and how it explains it: the rate search ends where the SLO or stability
binds (never at a stale capacity estimate), the binding constraint and the reason each better-ranked
configuration lost, edge-of-grid warnings, and the take-away table."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

import simlat.sweep.search as search_mod
from simlat.config import parse_experiment
from simlat.errors import SimlatError
from simlat.sweep.evaluate import FAILS, MEETS, UNSTABLE, skipped
from simlat.sweep.explain import edge_warnings, explain, reasons
from simlat.sweep.search import SearchTask, limit_of, search

EXP = parse_experiment(
    {
        "name": "fake",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 1000.0}},
        "service": {"kind": "deterministic", "ms": 1.0},
        "slo": {"percentile": 99.0, "latency_ms": 10.0, "target_rate_rps": 1000.0},
        "sweep": {"grid": {"fleet.replicas": [1]}, "rate_search": {"tolerance": 0.02}},
    }
)


def _fake_evaluate(slo_limit: float, capacity_of):
    """An evaluate() whose capacity estimate grows with the rate (as a cache's does) and whose SLO
    holds below ``slo_limit``."""
    calls = []

    def fake(experiment, sweep, rate, seed, max_requests=None, *, keep_quantiles=False):
        calls.append(rate)
        cap = capacity_of(rate)
        ev = skipped(rate, cap, MEETS if rate < slo_limit else (UNSTABLE if rate >= cap else FAILS))
        ev.simulated, ev.stable = True, rate < cap
        return ev

    return fake, calls


@pytest.mark.parametrize("slo_limit", [2500.0, 3400.0])
def test_rate_search_goes_past_a_capacity_estimate_that_grows_with_the_rate(monkeypatch, slo_limit):
    """At the target the fleet looks able to take 1,500 req/s; at each higher rate more (the hit ratio
    rises). The answer must be where the SLO binds, not the first estimate."""
    fake, calls = _fake_evaluate(slo_limit, lambda r: 500.0 + r)
    monkeypatch.setattr(search_mod, "evaluate", fake)
    out = search(SearchTask("c", EXP, EXP.sweep, 1000.0, 1))
    assert slo_limit / 1.03 <= out.max_rate_rps < slo_limit, (out.max_rate_rps, calls)
    assert limit_of(out) == "slo"


def test_rate_search_stops_at_a_stable_capacity_estimate(monkeypatch):
    fake, _ = _fake_evaluate(1e9, lambda r: 2000.0)
    monkeypatch.setattr(search_mod, "evaluate", fake)
    out = search(SearchTask("c", EXP, EXP.sweep, 1000.0, 1))
    assert 2000.0 / 1.03 <= out.max_rate_rps < 2000.0
    assert limit_of(out) == "capacity"


def test_rate_search_reports_stability_when_overload_binds(monkeypatch):
    fake, _ = _fake_evaluate(1e9, lambda r: 2000.0 if r < 1900 else 1800.0)
    monkeypatch.setattr(search_mod, "evaluate", fake)
    out = search(SearchTask("c", EXP, EXP.sweep, 1000.0, 1))
    assert limit_of(out) in ("stability", "capacity") and out.max_rate_rps < 2000.0


def _points():
    rows = [
        # config_id, cost, replicas, stable, meets, slo_hi, headroom, label
        ("chosen", 35.0, 10, True, True, 2.31, 0.47, "bf16 r=10"),
        ("tie", 35.0, 10, True, True, 2.45, 0.47, "bf16 r=10 wait=2"),
        ("h1", 28.0, 8, True, True, 2.9, 0.181, "bf16 r=8"),
        ("h2", 28.0, 8, True, True, 3.1, 0.12, "fp16 r=8"),
        ("miss", 28.0, 8, True, False, 41.0, math.nan, "fp32 r=8"),
        ("over", 21.0, 6, False, False, math.nan, math.nan, "bf16 r=6"),
        ("dear", 42.0, 12, True, True, 2.0, 0.9, "bf16 r=12"),
    ]
    df = pd.DataFrame(rows, columns=["config_id", "cost_per_hour", "replicas", "stable", "meets_slo", "slo_hi_ms",
                                     "headroom", "label"])
    df["note"] = ""
    df["throughput_per_replica"] = 1.0
    df["fleet.replicas"] = df["replicas"]
    return df


def test_explanation_names_the_binding_constraint_and_why_each_cheaper_one_lost():
    pts = _points()
    lines = explain(pts, "chosen", objective="min_cost", percentile=99, slo_ms=30, target_rps=50000,
                    confidence=0.95, min_headroom=0.2)
    text = "\n".join(lines)
    assert "cheapest configuration ($35.00/hour)" in lines[0]
    assert "Binding constraint: min_headroom (20.0%): 2 better-ranked" in text
    assert "best bf16 r=8: headroom 18.1%" in text
    assert "$28.00/hour, 3 configuration(s): 2 meet the SLO but with too little headroom" in text
    assert "1 miss the SLO at the target rate (closest fp32 r=8: upper bound 41.0 ms)" in text
    assert "$21.00/hour, 1 configuration(s): 1 overloaded" in text
    assert "1 other configuration(s) at the same cost per hour also qualify" in text
    why = dict(zip(pts["config_id"], reasons(pts, "chosen", percentile=99, slo_ms=30, confidence=0.95, min_headroom=0.2),
                   strict=True))
    assert why["chosen"] == "chosen"
    assert why["h1"] == "headroom 18.1% < min_headroom 20.0%"
    assert why["miss"] == "p99 upper bound 41.0 ms > 30 ms"
    assert why["over"].startswith("overloaded")


def test_without_headroom_rule_the_slo_binds_and_nothing_met_says_why():
    pts = _points()
    pts.loc[pts["config_id"].isin(["h1", "h2"]), "meets_slo"] = False
    pts.loc[pts["config_id"].isin(["h1", "h2"]), "slo_hi_ms"] = 33.0
    lines = explain(pts, "chosen", objective="min_cost", percentile=99, slo_ms=30, target_rps=50000,
                    confidence=0.95, min_headroom=0.0)
    assert any(line.startswith("Binding constraint: the SLO") for line in lines)
    none = explain(pts.assign(meets_slo=False), None, objective="min_cost", percentile=99, slo_ms=30,
                   target_rps=50000, confidence=0.95, min_headroom=0.0)
    assert none[0].startswith("No configuration meets p99 <= 30 ms")


def test_edge_of_grid_warnings():
    pts = _points()
    pts["fleet.replicas"] = pts["replicas"]
    assert edge_warnings(pts, "chosen", ["fleet.replicas"], "min_cost") == []
    smallest = edge_warnings(pts, "over", ["fleet.replicas"], "min_cost")
    assert smallest and "fleet.replicas = 6 is the smallest value in the grid" in smallest[0]
    assert edge_warnings(pts, "dear", ["fleet.replicas"], "min_cost") == []  # more replicas never cost less
    assert "largest value" in edge_warnings(pts, "dear", ["fleet.replicas"], "max_throughput_per_replica")[0]


# A small real sweep (affine service) for the table and the CLI.
SMALL = {
    "name": "table-test",
    "workload": {"arrivals": {"kind": "poisson", "rate_rps": 2000.0}, "items_per_request": 4},
    "fleet": {"replicas": 2},
    "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1.0},
    "service": {"kind": "affine", "base_ms": 1.0, "per_item_ms": 0.05},
    "slo": {"percentile": 99.0, "latency_ms": 12.0, "target_rate_rps": 2000.0},
    "run": {"seed": 3},
    "sweep": {
        "grid": {"fleet.replicas": [1, 2, 3]},
        "cost_per_replica_hour": 2.0,
        "min_requests": 4000,
        "max_requests": 16000,
        "rate_search": {"tolerance": 0.1, "max_requests": 8000},
    },
}


@pytest.fixture(scope="module")
def small_result():
    from simlat.sweep.runner import run_sweep

    return run_sweep(parse_experiment(SMALL), cache_dir=None, workers=1)


def test_sweep_result_carries_the_chosen_distribution_and_explanation(small_result):
    r = small_result
    assert r.chosen is not None and r.explanation and r.explanation[0].startswith("Chosen as the cheapest")
    q = r.chosen_quantiles
    assert q is not None and len(q) > 100 and q["latency_ms"].is_monotonic_increasing
    assert r.chosen_requests > 0 and r.chosen_batch_hist
    assert set(r.points["limit"]) <= set(search_mod.LIMITS)
    assert (r.points["reason"] == "chosen").sum() == 1


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_table_round_trips_with_parameter_columns(small_result, tmp_path, suffix):
    from simlat.sweep.table import write_table

    path = write_table(small_result, tmp_path / f"t{suffix}")
    df = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".json": pd.read_json}[suffix](path)
    assert list(df.columns[:2]) == ["fleet.replicas", "label"]
    for col in ("max_rate_rps", "limit", "slo_lo_ms", "slo_hi_ms", "p99_ms", "cost_per_hour", "headroom", "pareto",
                "chosen", "reason", "experiment", "seed", "simlat_version"):
        assert col in df.columns, col
    assert len(df) == 3 and df["chosen"].sum() == 1
    assert small_result.to_pandas().shape[0] == 3


def test_table_refuses_an_unknown_suffix(small_result, tmp_path):
    from simlat.sweep.table import write_table

    with pytest.raises(SimlatError, match="must end in .parquet, .csv, .json"):
        write_table(small_result, tmp_path / "t.xlsx")


def test_top_table_puts_the_chosen_first(small_result):
    import io

    from rich.console import Console

    from simlat.sweep.table import print_top, top_rows

    assert top_rows(small_result, 2).iloc[0]["reason"] == "chosen"
    buf = io.StringIO()
    print_top(small_result, 5, Console(file=buf, width=200))
    assert "why not chosen" in buf.getvalue() and "table-test: top 3 of 3" in buf.getvalue()


def test_a_mistyped_variant_in_a_grid_is_refused_before_running(tmp_path):
    from typer.testing import CliRunner

    from simlat.cli import app

    root = Path(__file__).resolve().parents[1]
    text = (root / "experiments/feed.yaml").read_text().replace("[fp32, tf32, bf16,", "[fp32, tf32, bf61,")
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace("../calibration/", f"{root / 'calibration'}/"))
    t0 = time.perf_counter()
    out = CliRunner().invoke(app, ["sweep", str(path), "--no-cache", "--no-report", "-q"])
    assert time.perf_counter() - t0 < 20
    assert out.exit_code == 2, out.output
    assert "'bf61' is not in h100-cuda.json" in out.output and "Recommendation" not in out.output


def test_progress_eta_uses_the_mean_rate_and_piped_output_prints_lines():
    import io

    from rich.console import Console

    from simlat.sweep.progress import SweepProgress, eta_s

    assert eta_s(130.0, 10, 44) == 572.0  # 54 configurations at 13 s each: 9.5 minutes left, not 50 s
    assert eta_s(5.0, 0, 54) is None
    buf = io.StringIO()
    with SweepProgress("feed", console=Console(file=buf, force_terminal=False), line_every_s=0) as bar:
        for i in range(4):
            bar(i, 3, 0) if i <= 3 else None
    lines = [ln for ln in buf.getvalue().splitlines() if ln]
    assert len(lines) >= 3 and lines[-1].startswith("feed: 3/3 configurations") and "ETA" in lines[-1]


def test_cache_files_carry_their_parameters(tmp_path):
    from simlat.sweep.runner import run_sweep

    data = {**SMALL, "sweep": {**SMALL["sweep"], "grid": {"fleet.replicas": [2, 3]}}}
    run_sweep(parse_experiment(data), cache_dir=tmp_path, workers=1)
    files = sorted((tmp_path / "table-test").glob("*.parquet"))
    assert len(files) == 2
    values = sorted(int(pd.read_parquet(f)["fleet.replicas"].iloc[0]) for f in files)
    assert values == [2, 3]
    again = run_sweep(parse_experiment(data), cache_dir=tmp_path, workers=1)
    assert again.cached_configs == 2


def test_an_unbounded_interval_is_said_in_words():
    pts = _points()
    pts.loc[pts["config_id"] == "miss", "slo_hi_ms"] = math.inf
    why = reasons(pts, "chosen", percentile=99, slo_ms=30, confidence=0.95, min_headroom=0.2)
    assert "reaches past the largest sample" in why[pts["config_id"] == "miss"].iloc[0]
    text = "\n".join(explain(pts, "chosen", objective="min_cost", percentile=99, slo_ms=30, target_rps=1,
                             confidence=0.95, min_headroom=0.2))
    assert "inf ms" not in text and "no finite upper bound" in text
