"""Projected profiles (simlat.profiles.project): identity, monotonicity, the CLI's errors, a projected
profile in an experiment and a sweep, and the CPU -> CPU check against a measured profile."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.api import run
from simlat.cli import app
from simlat.config import load_experiment
from simlat.errors import SimlatError
from simlat.profiles.devices import DEVICES, device
from simlat.profiles.project import compare, fit_split, is_projected, project
from simlat.profiles.schema import load_profile, parse_profile
from simlat.uncertainty import profile_process_sd

ROOT = Path(__file__).resolve().parents[1]
CAL = ROOT / "calibration"
H100 = CAL / "h100-cuda.json"
CPU16 = CAL / "h100-host-cpu16.json"
CI2 = CAL / "ci-cpu2.json"
H200 = CAL / "h200-projected-from-h100.json"


def _medians(profile):
    lv = profile.quantile_levels
    return {(m.name, v.name, c, p.batch_size): float(np.interp(0.5, lv, p.dist.quantiles_ms))
            for m in profile.models for v in m.variants for c in ("steady", "idle") for p in getattr(v, c)}


def _faster(spec, factor: float):
    return dataclasses.replace(spec, name=f"{spec.name}-x{factor:g}", flops={k: v * factor for k, v in spec.flops.items()},
                               memory_bytes_per_s=spec.memory_bytes_per_s * factor,
                               host_link_bytes_per_s=(spec.host_link_bytes_per_s or 0) * factor or None,
                               host_speed=spec.host_speed * factor)


@pytest.mark.parametrize("path,name", [(H100, "h100"), (CPU16, "xeon-16")])
def test_projecting_onto_the_source_device_is_the_identity(path, name):
    src = load_profile(path)
    same = project(src, DEVICES[name])
    assert _medians(same) == _medians(src)
    assert is_projected(same) and same.provenance.projection.uncertainty_sd_log == 0.0


@pytest.mark.parametrize("path,name", [(H100, "h100"), (CPU16, "xeon-16")])
def test_a_device_twice_as_fast_everywhere_is_never_slower(path, name):
    src = load_profile(path)
    base, fast = _medians(src), _medians(project(src, _faster(DEVICES[name], 2.0)))
    assert base.keys() == fast.keys()
    assert all(fast[k] <= base[k] * (1 + 1e-12) for k in base)
    assert any(fast[k] < base[k] * 0.9 for k in base), "twice every rate changed nothing"


def test_the_split_recovers_a_known_host_and_efficiency():
    floors = [0.01, 0.1, 1.0, 10.0]
    fit = fit_split([0.2 + 3.0 * f for f in floors], floors)
    assert math.isclose(fit.host_ms, 0.2, rel_tol=1e-9) and math.isclose(fit.k, 3.0, rel_tol=1e-9)


def test_the_shipped_h200_profile_is_projected_and_wider():
    h200, h100 = load_profile(H200), load_profile(H100)
    prj = h200.provenance.projection
    assert prj is not None and prj.projected and prj.source == "h100-cuda.json"
    assert prj.target["name"] == "h200" and "projected" in h200.provenance.device_name
    # same compute, more bandwidth: never slower than the measured H100
    a, b = _medians(h100), _medians(h200)
    assert all(b[k] <= a[k] * (1 + 1e-9) for k in a)
    # the projection's uncertainty reaches simlat's prediction interval
    exp = load_experiment(ROOT / "experiments" / "fraud_hardware.yaml")
    h100_cfg = exp.service.model_copy(update={"path": H100})
    assert profile_process_sd(exp.service) > profile_process_sd(h100_cfg)
    # it re-loads through the schema unchanged
    assert parse_profile(json.loads(H200.read_text())) == h200


def test_measured_profiles_still_load_without_a_projection():
    for path in (H100, CPU16, CI2):
        assert load_profile(path).provenance.projection is None


def test_a_projected_profile_runs_in_an_experiment(tmp_path):
    out = tmp_path / "l4.json"
    res = CliRunner().invoke(app, ["profile", "project", str(H100), "--to", "l4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    exp = load_experiment(ROOT / "experiments" / "fraud_hardware.yaml")
    exp = exp.model_copy(update={"service": exp.service.model_copy(update={"path": out}),
                                 "fleet": exp.fleet.model_copy(update={"replicas": 8})})
    s = run(exp, requests=5000, seed=1).summary
    assert s.completed > 0 and s.p99_ms is not None and s.p99_ms > 0


@pytest.mark.parametrize("args,needle", [
    (["--to", "h300"], "known devices: h100, h200, a100, l4"),
    (["--to", "ci-cpu2"], "not supported"),
    (["--to", "h200", "--host-speed", "0"], "--host-speed"),
    (["--to", "h200", "--uncertainty", "-1"], "--uncertainty"),
])
def test_cli_errors_exit_2(tmp_path, args, needle):
    res = CliRunner().invoke(app, ["profile", "project", str(H100), *args, "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and needle in res.output, res.output
    assert not (tmp_path / "x.json").exists()


def test_cli_error_for_a_missing_source(tmp_path):
    res = CliRunner().invoke(app, ["profile", "project", str(tmp_path / "none.json"), "--to", "h200", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "is not a profile file" in res.output


def test_an_unknown_source_device_asks_for_from():
    src = load_profile(H100)
    odd = src.model_copy(update={"provenance": src.provenance.model_copy(update={"device_name": "Some GPU"})})
    with pytest.raises(SimlatError, match="--from"):
        project(odd, device("h200"))
    assert is_projected(project(odd, device("h200"), source=device("h100")))


@pytest.mark.parametrize("target", ["ci-cpu2", "xeon-2"])
def test_the_cpu_to_cpu_check_is_computed(target):
    rows = compare(project(load_profile(CPU16), device(target)), load_profile(CI2))
    assert {r["model"] for r in rows} == {"mlp_ranker", "dlrm_small", "encoder_small"}
    assert len(rows) >= 15
    for r in rows:
        assert r["points"] >= 1 and 0 <= r["covered"] <= r["points"]
        assert math.isfinite(r["median_err"]) and math.isfinite(r["worst_err"])
        assert abs(r["worst_err"]) >= abs(r["median_err"])


def test_the_sweep_warns_when_the_chosen_device_is_projected():
    from simlat.sweep.runner import run_sweep

    exp = load_experiment(ROOT / "experiments" / "fraud_hardware.yaml")
    sweep = exp.sweep.model_copy(update={
        "cases": [c for c in exp.sweep.cases if "h200-projected" in str(c["service.path"])][-1:],
        "grid": {"fleet.replicas": [6]}, "min_headroom": 0.0, "min_requests": 3000, "max_requests": 6000, "rate_search": None,
    })
    result = run_sweep(exp.model_copy(update={"sweep": sweep}), base_dir=ROOT / "experiments", cache_dir=None, workers=1, details=False)
    assert result.chosen is not None, result.recommendation
    assert any("PROJECTED" in w for w in result.warnings), result.warnings
    assert "(projected)" in result.recommendation
    # no rate search: the headroom is only known to be >= 0, less than the projection's 90% uncertainty (+57%)
    h = float(result.points.loc[result.points["config_id"] == result.chosen, "headroom"].iloc[0])
    assert h == 0.0 and any("headroom (0%)" in w for w in result.warnings), (h, result.warnings)


def test_a_projected_choice_with_less_headroom_than_its_uncertainty_is_warned():
    from simlat.sweep.cost import projected_warning

    exp = load_experiment(ROOT / "experiments" / "fraud_hardware.yaml")
    assert len(projected_warning(exp, None)) == 1
    low = projected_warning(exp, 0.21)
    assert len(low) == 2 and "21%" in low[1] and "57% longer" in low[1]
    assert len(projected_warning(exp, 0.9)) == 1
    measured = exp.model_copy(update={"service": exp.service.model_copy(update={"path": str(CAL / "h200-cuda.json")})})
    assert projected_warning(measured, 0.05) == []


def test_cli_check_prints_the_error_table(tmp_path):
    res = CliRunner().invoke(app, ["profile", "project", str(CPU16), "--to", "ci-cpu2", "--out", str(tmp_path / "p.json"),
                                   "--check", str(CI2)])
    assert res.exit_code == 0, res.output
    assert "| model | variant | points | median error | worst error |" in res.output
    assert "| dlrm_small | fp32 | 10 |" in res.output
    assert load_profile(tmp_path / "p.json").provenance.projection.target["name"] == "ci-cpu2"


def test_the_report_inputs_say_a_projected_profile_was_not_measured():
    from simlat.sweep.inputs import _provenance

    assert "PROJECTED" in _provenance(H200) and "not measured" in _provenance(H200)
    assert _provenance(H100).split(", ")[1].startswith("measured ")
