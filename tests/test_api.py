"""The notebook API: ``import simlat`` exports load, override, run and sweep; docs/api.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import simlat
from simlat.errors import SimlatError

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_names():
    from simlat import load, override, run  # noqa: F401  (these failed before)

    assert callable(simlat.sweep) and set(simlat.__all__) >= {"load", "override", "run", "sweep"}


def test_override_sets_nested_fields_and_names_bad_values():
    exp = simlat.load(ROOT / "experiments/demo.yaml")
    new = simlat.override(exp, {"fleet.replicas": 5}, batching__max_wait_ms=1.5)
    assert (new.fleet.replicas, new.batching.max_wait_ms) == (5, 1.5)
    assert exp.fleet.replicas == 12  # the original is untouched
    with pytest.raises(SimlatError, match="batching.max_wait_ms"):
        simlat.override(exp, {"batching.max_wait_ms": -1})


def test_records_mark_the_warmup_rows():
    exp = simlat.override(simlat.load(ROOT / "experiments/demo.yaml"), {"run.warmup_fraction": 0.2})
    res = simlat.run(exp, requests=5000, keep_records=True)
    df = res.records_frame()
    assert df["warmup"].sum() == 1000 and len(df) == 5000
    assert df.loc[df["warmup"], "arrival_ms"].max() <= df.loc[~df["warmup"], "arrival_ms"].min()


def test_the_documented_example_runs(monkeypatch):
    text = (ROOT / "docs/api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(ROOT)
    for code in blocks:
        exec(compile(code, "docs/api.md", "exec"), {})


def test_cli_set_overrides_fields(tmp_path):
    import json

    from typer.testing import CliRunner

    from simlat.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "-n", "3000", "--json",
                              "--set", "fleet.replicas=1", "--set", "slo.latency_ms=0.5"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["slo_met_probability"] < 0.5
    bad = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "--set", "fleet.replicas=-1"])
    assert bad.exit_code == 2 and "fleet.replicas" in bad.output
    bad = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "--set", "fleet.replicas"])
    assert bad.exit_code == 2 and "expected path=value" in bad.output


def test_cli_records_csv_parquet_or_refused(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from simlat.cli import app

    runner = CliRunner()
    for name, read in (("r.csv", pd.read_csv), ("r.parquet", pd.read_parquet)):
        out = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "-n", "2000", "--json",
                                  "--records", str(tmp_path / name)])
        assert out.exit_code == 0, out.output
        df = read(tmp_path / name)
        assert len(df) == 2000 and df["warmup"].sum() == 200
        assert set(df["experiment"]) == {"demo"} and set(df["seed"]) == {7} and set(df["simlat_version"]) == {simlat.__version__}
    out = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "--records", str(tmp_path / "r.txt")])
    assert out.exit_code == 2 and "must end in .parquet or .csv" in out.output and not (tmp_path / "r.txt").exists()


def test_a_balancer_under_a_shared_queue_is_said_to_be_ignored():
    from simlat.config.ignored import ignored_settings

    exp = simlat.load(ROOT / "experiments/demo.yaml")
    assert ignored_settings(exp) == []
    jsq = simlat.override(exp, {"fleet.balancer": "join_shortest_queue"})
    (note,) = ignored_settings(jsq)
    assert "fleet.balancer" in note and "ignored" in note
    assert note in simlat.run(jsq, requests=2000).summary.warnings
    assert ignored_settings(simlat.override(jsq, {"fleet.queue": "per_replica"})) == []


def test_cli_warnings_are_one_line_without_a_source_path(tmp_path):
    import subprocess
    import sys

    text = (ROOT / "experiments/demo.yaml").read_text().replace("device: h100", "device: a100")
    path = tmp_path / "d.yaml"
    path.write_text(text.replace("../calibration/", f"{ROOT / 'calibration'}/"))
    out = subprocess.run([sys.executable, "-m", "simlat.cli", "simulate", str(path), "-n", "2000"],
                         capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("warning: ") and "device differs" in out.stderr and ".py:" not in out.stderr


def test_cli_version():
    from typer.testing import CliRunner

    from simlat.cli import app

    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.stdout.strip() == f"simlat {simlat.__version__}"


def test_summary_text_for_drops_and_an_l2_without_l1():
    from simlat.metrics import Summary
    from simlat.summary_view import cache_text, slo_estimate_text

    base = simlat.run(simlat.load(ROOT / "experiments/demo.yaml"), requests=2000).summary
    dropped = base.model_copy(update={"drop_rate": 0.05, "slo_estimate_ms": float("inf"), "slo_ci_ms": None})
    text = slo_estimate_text(dropped)
    assert "undefined" in text and "5.00% of requests were dropped" in text and "1.00%" in text and "inf" not in text
    assert slo_estimate_text(base).startswith("estimate ")
    l2only = base.model_copy(update={"cache_hit_ratio": 0.537, "cache_l1_hit_ratio": None, "cache_l2_hit_ratio": 0.537})
    assert "of the L1 misses" not in cache_text(l2only) and "no L1" in cache_text(l2only)
    assert isinstance(base, Summary)


def test_help_shows_no_bool_metavar_and_no_truncated_text():
    from typer.testing import CliRunner

    from simlat.cli import app

    out = CliRunner().invoke(app, ["sweep", "--help"])
    assert out.exit_code == 0 and "<bool>" not in out.stdout and "…" not in out.stdout
    assert "why not chosen) to a .parquet, .csv or .json file" in " ".join(out.stdout.split())
