"""The adaptive calibration budget: where it measures, when it stops sampling, and what the profile records.

The refiner is checked on curves whose answer is known (a straight line needs only the coarse
sizes; a kink is bisected down to the grid around it); one real CPU calibration checks the profile
marks the sizes it interpolated and that the simulator reads it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from simlat.calibrate.adaptive import Refiner, coarse, interpolate
from simlat.calibrate.budget import get_budget
from simlat.calibrate.command import calibrate
from simlat.calibrate.models import resolve_model
from simlat.calibrate.plan import make_tasks
from simlat.calibrate.timing import precise_enough, sample
from simlat.config.service import ProfileService
from simlat.engine.service import build_profile_service
from simlat.profiles.schema import load_profile

GRID = [2**i for i in range(13)]  # 1 .. 4096, the cuda grid of the built-in models


def _refine(f, grid=GRID, tolerance=0.05) -> Refiner:
    r = Refiner(grid, step=4, tolerance=tolerance)
    while (b := r.next_size()) is not None:
        r.record(b, f(b))
    return r


def test_coarse_sizes():
    assert coarse(GRID, 4) == [1, 16, 256, 4096]
    assert coarse([1, 2, 4, 8, 16, 32, 64, 128, 256, 512], 4) == [1, 16, 256, 512]
    assert interpolate(1, 1.0, 3, 3.0, 2) == 2.0


def test_a_straight_line_needs_only_the_coarse_sizes_and_one_check_per_gap():
    r = _refine(lambda b: 0.2 + 0.001 * b)
    assert sorted(r.measured) == [1, 4, 16, 64, 256, 1024, 4096]  # 4 coarse + one checked midpoint per gap
    assert r.complete() and len(r.checks) == 3
    assert all(abs(p - m) < 1e-9 for _, p, m in r.checks)
    assert r.interpolated() == [b for b in GRID if b not in r.measured]


def test_a_kink_is_bisected_to_the_grid_and_the_rest_interpolates_within_tolerance():
    def f(b):  # flat (launch-bound) to 64, then linear: linear interpolation misses around the knee
        return 0.1 if b <= 64 else 0.1 + 0.002 * (b - 64)

    r = _refine(f)
    assert r.complete()
    for b in (32, 64, 128):  # the knee is measured
        assert b in r.measured
    # every size left out is predicted within the tolerance by its measured neighbours
    done = sorted(r.measured)
    for b in r.interpolated():
        lo = max(x for x in done if x < b)
        hi = min(x for x in done if x > b)
        assert abs(interpolate(lo, f(lo), hi, f(hi), b) - f(b)) <= 0.05 * f(b)


def test_a_stricter_tolerance_measures_more():
    def f(b):
        return 0.1 + 0.01 * np.sqrt(b)

    loose, strict = _refine(f, tolerance=0.2), _refine(f, tolerance=0.01)
    assert len(loose.measured) < len(strict.measured)
    assert set(loose.measured) <= set(strict.measured)


def test_a_cut_short_curve_measures_the_ends_first_and_interpolates_only_between_measured_sizes():
    r = Refiner(GRID)
    assert r.next_size() == 1
    r.record(1, 0.1)
    assert r.interpolated() == [] and r.unmeasured() == GRID[1:]  # nothing above 1 is interpolated
    assert r.next_size() == 4096
    r.record(4096, 0.5)
    assert r.interpolated() == GRID[1:-1] and not r.complete()
    assert r.summary()["complete"] is False


def test_refiner_rejects_a_bad_grid():
    with pytest.raises(ValueError, match="increase strictly"):
        Refiner([4, 2])


def test_sampling_stops_once_the_median_is_precise():
    rng = np.random.default_rng(3)
    calls = []

    def run(_):
        calls.append(1)
        return 1.0 + 0.01 * rng.standard_normal()

    s = sample(run, [None], min_n=15, max_n=10000, max_s=5.0, rel_ci=0.02)
    assert 15 <= s.size < 100 and precise_enough(s, 0.02)
    wide = sample(lambda _: float(rng.exponential()), [None], min_n=15, max_n=400, max_s=5.0, rel_ci=0.02)
    assert wide.size > s.size  # a spread-out distribution needs more samples for the same precision


def test_adaptive_plan_refines_free_shapes_and_repeats_coarse_sizes():
    bud = get_budget("adaptive")
    tasks = make_tasks("cuda", [resolve_model("mlp_ranker")], ["fp32", "compile_cudagraphs", "compile_max_autotune"], None, bud)
    prim = {t.variant: t for t in tasks if t.kind == "variant" and t.repeat == 0}
    assert prim["fp32"].adaptive and prim["compile_max_autotune"].adaptive
    assert not prim["compile_cudagraphs"].adaptive  # fixed shapes: every bucket is a shape the variant runs
    reps = [t for t in tasks if t.kind == "variant" and t.repeat == 1]
    assert len(reps) == 3  # two processes per variant: the spread between processes
    assert next(t for t in reps if t.variant == "fp32").batch_sizes == [1, 4096, 256]  # the primary's order: ends first
    assert prim["compile_max_autotune"].weight > prim["fp32"].weight
    assert bud.default_time_limit_s is not None and bud.default_time_limit_s <= 600
    # a compiling variant's second process runs with warm on-disk caches: it holds back little time
    rep = {t.variant: t for t in reps}
    assert rep["compile_max_autotune"].weight == rep["compile_cudagraphs"].weight == 0.5 < prim["compile_max_autotune"].weight / 2
    normal = make_tasks("cuda", [resolve_model("mlp_ranker")], ["compile_max_autotune"], None, get_budget("normal"))
    assert [t.weight for t in normal if t.repeat == 1] == [prim["compile_max_autotune"].weight / 2]


def test_variants_the_device_check_rules_out_start_no_worker():
    from simlat.calibrate.command import _known_skips

    env = {"torchao": None, "onnxruntime": "1.30.0", "onnxruntime_providers": ["CPUExecutionProvider"]}
    skips = _known_skips("cuda", env)
    assert set(skips) == {"onnxruntime", "ao_int8_weight_only", "ao_fp8_weight_only"}
    assert "CUDAExecutionProvider" in skips["onnxruntime"] and "torchao" in skips["ao_fp8_weight_only"]
    assert _known_skips("cuda", {"torchao": "0.18.0", "onnxruntime_providers": ["CUDAExecutionProvider"]}) == {}
    assert _known_skips("cuda", {}) == {}  # a device check that said nothing rules nothing out


@pytest.mark.slow  # two measuring processes (torch import each): ~12 s on the shared 2-core machine
def test_adaptive_cpu_calibration_records_what_it_interpolated(tmp_path: Path):
    t0 = time.time()
    prof = calibrate(device="cpu", model="mlp_ranker", out=tmp_path / "a.json", variants=["fp32"],
                     batch_sizes="1,2,4,8,16,32,64", threads=1, budget="adaptive", progress=False, overheads=False,
                     time_limit_s=60)
    assert time.time() - t0 < 60
    v = prof.model("mlp_ranker").variants[0]
    assert v.status == "ok" and v.processes == 2 and v.refinement is not None
    measured = [p.batch_size for p in v.steady]
    assert {1, 16, 64} <= set(measured)
    assert sorted(measured + v.refinement.interpolated) == v.refinement.grid == [1, 2, 4, 8, 16, 32, 64]
    assert v.refinement.checks and all(b in measured for b, _, _ in v.refinement.checks)
    # two processes at the repeated sizes: the spread between them is known there
    assert len(next(p for p in v.steady if p.batch_size == 64).dist.process_medians_ms) == 2
    # the simulator reads every size of the grid (the interpolated ones between measured neighbours)
    svc = build_profile_service(ProfileService(kind="profile", path=str(tmp_path / "a.json"), model="mlp_ranker", variant="fp32"))
    means = {b: svc.mean_ms(b) for b in [1, 2, 4, 8, 16, 32, 64]}
    assert all(m > 0 for m in means.values())
    for b in v.refinement.interpolated:  # between its measured neighbours, as the refinement checked
        lo, hi = max(x for x in measured if x < b), min(x for x in measured if x > b)
        assert min(means[lo], means[hi]) <= means[b] <= max(means[lo], means[hi])
    assert load_profile(tmp_path / "a.json").model("mlp_ranker").variants[0].refinement == v.refinement
