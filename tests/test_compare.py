"""simlat compare: two runs or two sweep tables side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from simlat.cli import app
from simlat.compare import compare_runs, compare_sweeps

ROOT = Path(__file__).resolve().parents[1]


def test_compare_runs_from_simulate_json(tmp_path):
    runner = CliRunner()
    paths = []
    for replicas in (10, 14):
        res = runner.invoke(app, ["simulate", str(ROOT / "experiments/demo.yaml"), "-n", "3000", "--json",
                                  "--set", f"fleet.replicas={replicas}"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout)
        assert data["experiment"] == "demo" and data["seed"] == 7 and data["simlat_version"]
        paths.append(tmp_path / f"r{replicas}.json")
        paths[-1].write_text(res.stdout)
    out = runner.invoke(app, ["compare", str(paths[0]), str(paths[1]), "--out", str(tmp_path / "c.csv")])
    assert out.exit_code == 0, out.output
    df = pd.read_csv(tmp_path / "c.csv").set_index("field")
    assert float(df.loc["p99_ms", "B"]) < float(df.loc["p99_ms", "A"])  # more replicas wait less


def test_compare_sweeps_matches_on_parameters():
    a = pd.DataFrame({"fleet.replicas": [1, 2], "label": ["r1", "r2"], "max_rate_rps": [100.0, 200.0]})
    b = pd.DataFrame({"fleet.replicas": [2, 3], "label": ["r2", "r3"], "max_rate_rps": [220.0, 300.0]})
    df = compare_sweeps(a, b).set_index("fleet.replicas")
    assert abs(df.loc["2", "max_rate_change"] - 0.1) < 1e-12 and df["max_rate_rps_A"].isna().sum() == 1
    assert compare_runs({"p99_ms": 2.0}, {"p99_ms": 3.0}).iloc[0]["B / A - 1"] == 0.5


def test_compare_refuses_mixed_kinds(tmp_path):
    (tmp_path / "run.json").write_text('{"p99_ms": 1}')
    pd.DataFrame({"fleet.replicas": [1], "label": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "run.json"), str(tmp_path / "t.csv")])
    assert out.exit_code == 2 and "cannot compare a run" in out.output
