"""``simlat profile compare`` and the CPU projection by a probe: point-by-point errors, the probe's
file, the thread and host-speed terms, and the CPU16 -> CI check against the unchanged baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.cli import app
from simlat.errors import SimlatError
from simlat.profiles.accuracy import compare_profiles, overall
from simlat.profiles.devices import DEVICES, from_probe
from simlat.profiles.project import cpu_thread_factor, despike, host_ratio_from_components, project
from simlat.profiles.schema import Dist, load_profile

ROOT = Path(__file__).resolve().parents[1]
CAL = ROOT / "calibration"
CPU16 = CAL / "h100-host-cpu16.json"
CI2 = CAL / "ci-cpu2.json"
CI2_PROBE = CAL / "ci-cpu2-probe.json"


def _scaled(profile, factor: float):
    """``profile`` with every steady point's distribution (and its CI) multiplied by ``factor``."""
    models = []
    for m in profile.models:
        variants = []
        for v in m.variants:
            steady = []
            for p in v.steady:
                d = p.dist
                nd = Dist(n=d.n, mean_ms=d.mean_ms * factor, quantiles_ms=[q * factor for q in d.quantiles_ms],
                          median_ci_ms=(d.median_ci_ms[0] * factor, d.median_ci_ms[1] * factor),
                          median_ci_half_width_ms=d.median_ci_half_width_ms * factor,
                          process_medians_ms=[x * factor for x in d.process_medians_ms], process_spread=d.process_spread)
                steady.append(p.model_copy(update={"dist": nd}))
            variants.append(v.model_copy(update={"steady": steady}))
        models.append(m.model_copy(update={"variants": variants}))
    return profile.model_copy(update={"models": models})


def test_a_profile_against_itself_has_no_error_and_covers_every_point():
    ci = load_profile(CI2)
    rows = compare_profiles(ci, ci)
    assert all(r.median_error == 0 and r.worst_error == 0 and r.covered == r.points for r in rows)
    o = overall(rows)
    assert o.median_abs_error == 0 and o.rms_log_error == 0 and o.covered_share == 1.0


def test_a_profile_half_again_as_slow_is_50_percent_off_everywhere():
    ci = load_profile(CI2)
    rows = compare_profiles(_scaled(ci, 1.5), ci)
    assert all(math.isclose(r.median_error, 0.5, rel_tol=1e-6) and math.isclose(r.worst_error, 0.5, rel_tol=1e-6) for r in rows)
    assert math.isclose(overall(rows).rms_log_error, math.log(1.5), rel_tol=1e-6)
    assert overall(rows).covered_share < 0.5  # a measured CI is tight: 1.5x lies outside it at most points
    fast = compare_profiles(_scaled(ci, 0.5), ci)
    assert all(math.isclose(r.median_error, -0.5, rel_tol=1e-6) for r in fast)


def test_cli_prints_and_writes_the_table(tmp_path):
    for suffix in ("md", "csv", "json"):
        out = tmp_path / f"t.{suffix}"
        res = CliRunner().invoke(app, ["profile", "compare", str(CPU16), str(CI2), "--table", str(out)])
        assert res.exit_code == 0, res.output
        assert "| dlrm_small | fp32 | 10 |" in res.output and "| **all** | | 176 |" in res.output
        text = out.read_text()
        if suffix == "md":
            assert text.strip().endswith(res.output.strip().splitlines()[-1])
        elif suffix == "csv":
            assert text.splitlines()[0] == "model,variant,batch_size,error" and len(text.splitlines()) == 177
        else:
            assert json.loads(text)["overall"]["points"] == 176


@pytest.mark.parametrize("args,needle", [
    (["--table", "x.txt"], "--table"),
    (["--condition", "warm"], "--condition: 'warm'"),
])
def test_cli_errors_exit_2(tmp_path, args, needle):
    args = [a if a != "x.txt" else str(tmp_path / "x.txt") for a in args]
    res = CliRunner().invoke(app, ["profile", "compare", str(CPU16), str(CI2), *args])
    assert res.exit_code == 2 and needle in res.output, res.output


def test_profiles_with_nothing_in_common_are_refused():
    h100 = load_profile(CAL / "h100-cuda.json")
    ci = load_profile(CI2)
    odd = ci.model_copy(update={"models": [m.model_copy(update={"name": m.name + "_other"}) for m in ci.models]})
    with pytest.raises(SimlatError, match="nothing to compare"):
        compare_profiles(h100, odd)


def test_thread_factor():
    # same cores: the floor ratio stands
    assert cpu_thread_factor(1.0, 3.0, 8, 8) == 1.0
    # a fully parallel source (it reached its all-thread floor): the floor ratio stands
    assert math.isclose(cpu_thread_factor(1.0, 1.0, 16, 2), 1.0)
    # a source that used 2 cores' worth of 16: on 2 cores it keeps its per-core speed (the factor undoes 16/2)
    assert math.isclose(cpu_thread_factor(1.0, 8.0, 16, 2), 2 / 16)
    # never faster than per-core rates allow, never slower than the all-thread floor ratio
    for dev in (1.0, 1.5, 3.0, 8.0, 40.0):
        f = cpu_thread_factor(1.0, dev, 16, 2)
        assert 2 / 16 - 1e-12 <= f <= 1.0 + 1e-12


def test_despike_replaces_only_isolated_spikes():
    sizes = [1, 2, 4, 8, 16]
    meds, spikes = despike([2.69, 0.084, 0.113, 0.23, 0.35], sizes)
    assert spikes == [0] and meds[0] == 0.084 and meds[1:] == [0.084, 0.113, 0.23, 0.35]
    assert despike([0.1, 0.2, 0.4, 0.8, 1.7], sizes)[1] == []  # a curve linear in the batch is not a spike
    assert despike([0.1, 0.1, 0.1, 0.1, 0.9], sizes)[1] == [4]  # 9x its neighbour at twice the batch is
    assert despike([0.1, 5.0, 0.1], [1, 2, 4])[1] == [1]


def test_host_ratio_of_a_profile_against_its_own_components_is_one():
    src = load_profile(CPU16)
    lv = src.quantile_levels
    own = {m.name: {c.name: {str(p.batch_size): {"p10_ms": float(np.interp(0.1, lv, p.dist.quantiles_ms))} for p in c.points}
                    for c in m.components} for m in src.models}
    assert math.isclose(host_ratio_from_components(src, own), 1.0)
    assert host_ratio_from_components(src, {}) is None


def _probe_of(profile, threads: int) -> dict:
    """A probe result describing the machine ``profile`` was measured on (its peaks per thread, its components)."""
    lv = profile.quantile_levels
    pk = profile.peaks
    return {"format": "simlat.probe", "version": 1, "device_name": "self", "threads": threads, "date": "d",
            "matmul_flops_per_s": dict(pk.matmul_flops_per_s),
            "matmul_flops_per_s_1thread": {k: v / threads for k, v in pk.matmul_flops_per_s.items()},
            "copy_bytes_per_s": pk.copy_bytes_per_s,
            "components": {m.name: {c.name: {str(p.batch_size): {"p10_ms": float(np.interp(0.1, lv, p.dist.quantiles_ms))}
                                             for p in c.points} for c in m.components} for m in profile.models}}


def test_a_probe_of_the_source_machine_leaves_the_curves_in_place():
    src = load_profile(CPU16)
    same = project(src, from_probe(_probe_of(src, 16)))
    assert same.provenance.projection.host_ratio == pytest.approx(1.0)
    rows = compare_profiles(same, src)
    # only the source's spikes move (to their neighbours' level)
    assert overall(rows).median_abs_error < 1e-9


@pytest.mark.parametrize("bad,needle", [
    ({"format": "x"}, "not a probe result"),
    ({"format": "simlat.probe", "version": 9}, "version 9"),
    ({"format": "simlat.probe", "version": 1, "threads": 2}, "incomplete"),
])
def test_bad_probe_files_are_refused(bad, needle):
    with pytest.raises(SimlatError, match=needle):
        from_probe(bad)


def test_the_shipped_probe_projection_beats_leaving_the_profile_unchanged():
    """CPU16 -> the 2-core VM, with the probe shipped in calibration/ (measured on such a VM):
    closer to the measured ci-cpu2 profile than the 16-core profile used as it is."""
    src, ci = load_profile(CPU16), load_profile(CI2)
    probe = json.loads(CI2_PROBE.read_text())
    projected = project(src, from_probe(probe))
    new = overall(compare_profiles(projected, ci))
    unchanged = overall(compare_profiles(src, ci))
    old = overall(compare_profiles(project(src, DEVICES["ci-cpu2"]), ci))
    assert new.median_abs_error < unchanged.median_abs_error and new.rms_log_error < unchanged.rms_log_error
    assert new.median_abs_error < old.median_abs_error


def test_cli_project_with_a_probe(tmp_path):
    out = tmp_path / "p.json"
    res = CliRunner().invoke(app, ["profile", "project", str(CPU16), "--probe", str(CI2_PROBE), "--out", str(out)])
    assert res.exit_code == 0, res.output
    prj = load_profile(out).provenance.projection
    assert prj.target["basis"] == "probe" and "serialization components" in prj.method
    both = CliRunner().invoke(app, ["profile", "project", str(CPU16), "--probe", str(CI2_PROBE), "--to", "ci-cpu2", "--out", str(out)])
    assert both.exit_code == 2 and "either as --to" in both.output


def test_same_day_probe_and_measurement_projection_is_within_its_recorded_error():
    """validation/cpu-projection-2026-12-05: a probe and a calibration of the same quiet 2-core VM within
    six minutes; the 16-core profile projected with that probe misses the measurement by a median 23%
    (RMS log error 0.43), against 51% (0.88) for the profile used unchanged, and every measured median
    lies inside the projected 95% interval."""
    day = Path(__file__).resolve().parents[1] / "validation" / "cpu-projection-2026-12-05"
    src, measured = load_profile(CPU16), load_profile(day / "ci-cpu2-measured.json")
    projected = project(src, from_probe(json.loads((day / "ci-cpu2-probe.json").read_text())))
    new, unchanged = overall(compare_profiles(projected, measured)), overall(compare_profiles(src, measured))
    assert new.points == unchanged.points == 176
    assert new.median_abs_error == pytest.approx(0.23, abs=0.02) and new.rms_log_error == pytest.approx(0.43, abs=0.02)
    assert unchanged.median_abs_error == pytest.approx(0.51, abs=0.02)
    assert new.covered_share == 1.0


H100 = CAL / "h100-cuda.json"


def _gpu_probe_of(profile, launch_us: float = 5.0, scale: float = 1.0) -> dict:
    """A GPU probe describing the machine ``profile`` was measured on, its rates x ``scale``, its host
    timings ``launch_us`` and 2x and 4x that."""
    probe = _probe_of(profile, 16)
    pk = profile.peaks
    probe.update(device="cuda", gpu={"device_name": "self", "launch_us": launch_us, "op_sync_us": 2 * launch_us, "linear_sync_us": 4 * launch_us,
                                     "matmul_flops_per_s": {k: v * scale for k, v in pk.matmul_flops_per_s.items()},
                                     "copy_bytes_per_s": pk.copy_bytes_per_s * scale})
    return probe


def test_a_gpu_probe_of_the_source_machine_leaves_the_curves_in_place():
    src = load_profile(H100)
    same = project(src, from_probe(_gpu_probe_of(src)), source_probe=from_probe(_gpu_probe_of(src)))
    prj = same.provenance.projection
    assert prj.host_ratio == pytest.approx(1.0) and "GPU probes' host timings" in prj.method and prj.target["basis"] == "probe"
    assert overall(compare_profiles(same, src)).median_abs_error < 1e-9


def test_a_gpu_probe_with_half_the_host_timings_and_twice_the_rates_halves_every_point():
    """Host ratio from the two probes' host timings, device rates from the target probe: both twice
    as fast, so every steady median halves (the source's spikes aside)."""
    src = load_profile(H100)
    fast = project(src, from_probe(_gpu_probe_of(src, 2.5, 2.0)), source_probe=from_probe(_gpu_probe_of(src, 5.0)))
    assert fast.provenance.projection.host_ratio == pytest.approx(2.0)
    rows = compare_profiles(fast, src)
    errs = [e for r in rows for e in r.errors]
    assert np.median(errs) == pytest.approx(-0.5, abs=1e-9)
    assert max(errs) < -0.4


def test_a_gpu_probe_without_a_source_probe_keeps_the_host_and_scales_serialization_by_its_components():
    """Serialization speed does not say how fast a GPU host launches kernels (the H100 -> H200 check):
    without a probe of the source, the model's host part keeps the table's ratio (1.0); the
    serialization components scale by the components the probe measured."""
    src = load_profile(H100)
    probe = _gpu_probe_of(src)
    for per in probe["components"].values():
        for comp in per.values():
            for point in comp.values():
                point["p10_ms"] *= 2.0  # a host whose serialization runs half as fast
    projected = project(src, from_probe(probe))
    prj = projected.provenance.projection
    assert prj.host_ratio == pytest.approx(1.0) and "the device table" in prj.method and "x0.5 host speed" in prj.method
    lv = src.quantile_levels
    med = {(m.name, c.name, p.batch_size): float(np.interp(0.5, lv, p.dist.quantiles_ms)) for m in src.models for c in m.components for p in c.points}
    got = {(m.name, c.name, p.batch_size): float(np.interp(0.5, lv, p.dist.quantiles_ms)) for m in projected.models for c in m.components for p in c.points}
    ser = [k for k in med if k[1].startswith(("serialize", "deserialize"))]
    assert ser and all(got[k] == pytest.approx(2.0 * med[k]) for k in ser)


def test_bad_gpu_probes_are_refused():
    src = load_profile(H100)
    bad = _gpu_probe_of(src)
    del bad["gpu"]["launch_us"]
    with pytest.raises(SimlatError, match="without its GPU measurements"):
        from_probe(bad)
    with pytest.raises(SimlatError, match="cannot describe the source"):
        project(src, from_probe(_gpu_probe_of(src)), source_probe=from_probe(_probe_of(load_profile(CPU16), 16)))


def test_the_h100_to_h200_check_is_recomputed_from_the_shipped_files():
    """validation/gpu-projection-2026-12-05: the H100 profile projected to the H200 and compared with
    an H200 calibration, point by point. The datasheet projection shipped before the measurement
    misses it by a median 14% (RMS log error 0.31), as close as the H100 profile used unchanged (13%,
    0.30): these launch-bound models barely feel the H200's bandwidth, and the error is at the
    measurement's own floor (the H200's two processes differ by a median 21%); its 95% interval
    covers 95% of the measured medians, against 10% for the unchanged profile's own intervals."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "validation" / "gpu-projection-2026-12-05" / "compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    measured = load_profile(mod.H200)
    assert "H200" in measured.provenance.device_name and measured.provenance.projection is None
    preds = mod.predictions()
    unchanged, datasheet, probe = (overall(compare_profiles(p, measured)) for p in list(preds.values())[:3])
    assert datasheet.points == unchanged.points >= 200
    assert datasheet.median_abs_error == pytest.approx(0.14, abs=0.01) and datasheet.rms_log_error == pytest.approx(0.31, abs=0.01)
    assert unchanged.median_abs_error == pytest.approx(0.13, abs=0.01) and unchanged.covered_share < 0.2
    assert datasheet.covered_share >= 0.9 and probe.covered_share >= 0.9
    n, floor, _ = mod.process_floor(mod.H200)
    assert n >= 50 and floor > datasheet.median_abs_error


def test_a_cpu_source_probe_measures_the_host_ratio_probe_against_probe():
    """Both machines probed: serialization components of probe against probe (same code, same
    sizes), not against what the source profile recorded."""
    src = load_profile(CPU16)
    target = _probe_of(src, 16)
    for per in target["components"].values():
        for comp in per.values():
            for point in comp.values():
                point["p10_ms"] *= 4.0  # the target host serializes 4x slower than the source probe says
    prj = project(src, from_probe(target), source_probe=from_probe(_probe_of(src, 16))).provenance.projection
    assert prj.host_ratio == pytest.approx(0.25) and "against the source probe's" in prj.method
