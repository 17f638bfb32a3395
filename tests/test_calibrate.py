"""``simlat calibrate`` on the CPU: every CPU variant on a built-in model, user models, crash
isolation, the time limit, and the command's errors (exit 2, valid choices listed).

Real measurements with ``budget="quick"`` and two batch sizes; each test runs well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.calibrate.command import calibrate
from simlat.calibrate.models import resolve_model
from simlat.calibrate.plan import buckets, default_batch_sizes, parse_batch_sizes
from simlat.calibrate.variants import select_variants
from simlat.cli import app
from simlat.config.service import ProfileService
from simlat.engine.service import build_profile_service
from simlat.errors import SimlatError
from simlat.profiles.schema import load_profile

ROOT = Path(__file__).resolve().parents[1]
FAST_CPU = ["fp32", "bf16", "int8_dynamic", "int8_static", "torchscript", "onnxruntime"]
MAX_REL_ERROR = {"fp32": 0.0, "torchscript": 1e-5, "onnxruntime": 1e-4, "int8_dynamic": 0.1, "int8_static": 0.1, "bf16": 0.05, "compile": 1e-4}


def _check_variant(v, sizes: list[int]):
    assert [p.batch_size for p in v.steady] == sizes
    for p in v.steady:
        d = p.dist
        assert d.n >= 3 and d.quantiles_ms[0] > 0
        assert d.median_ci_ms[0] <= d.quantiles_ms[len(d.quantiles_ms) // 2] <= d.median_ci_ms[1] + 1e-9
        assert p.first_call_ms is not None and p.roofline_floor_ms is not None and p.flops > 0
    assert [p.batch_size for p in v.idle] == [sizes[0], sizes[-1]]
    assert v.cold_start.setup_ms is not None and v.cold_start.process_ready_ms > 0
    assert v.threads == 1 and v.timer == "perf_counter" and not v.fixed_shape
    assert v.error is not None and v.error.rel <= MAX_REL_ERROR[v.name] + 1e-12


def test_each_cpu_variant(tmp_path: Path):
    out = tmp_path / "cpu.json"
    prof = calibrate(device="cpu", model="mlp_ranker", out=out, variants=FAST_CPU, batch_sizes="1,2",
                     threads=1, budget="quick", progress=False, shared_machine=True)
    again = load_profile(out)
    assert again == prof
    assert prof.provenance.threads == 1 and prof.provenance.shared_machine and prof.provenance.budget == "quick"
    assert prof.peaks.matmul_flops_per_s["fp32"] > 1e8 and prof.peaks.copy_bytes_per_s > 1e8
    m = prof.model("mlp_ranker")
    assert m.flops_per_item == pytest.approx(2 * (512 * 1024 + 1024 * 1024 + 1024), rel=0.01)
    by = {v.name: v for v in m.variants}
    assert list(by) == FAST_CPU
    for name, v in by.items():
        if name == "bf16" and v.status == "skipped":
            assert "bf16" in v.reason
            continue
        assert v.status == "ok", (name, v.reason)
        _check_variant(v, [1, 2])
    comps = {c.name for c in m.components}
    assert {"serialize_json", "deserialize_msgpack", "serialize_raw"} <= comps
    # the profile drives the simulator's service model
    svc = build_profile_service(ProfileService(path=out, model="mlp_ranker", variant="int8_dynamic", add_components=("deserialize_json",)))
    draw = svc.batch_sampler(np.random.default_rng(0))
    assert all(draw(2) > 0 for _ in range(100)) and svc.max_items == 2
    with pytest.raises(SimlatError, match="exceeds the largest measured batch size"):
        draw(3)


@pytest.mark.slow
def test_compile_variant_cpu(tmp_path: Path):
    out = tmp_path / "compile.json"
    prof = calibrate(device="cpu", model="mlp_ranker", out=out, variants=["compile"], batch_sizes="1,2",
                     threads=1, budget="quick", progress=False)
    v = prof.model("mlp_ranker").variants[0]
    assert v.status == "ok", v.reason
    _check_variant(v, [1, 2])
    assert v.steady[0].first_call_ms > v.steady[0].dist.mean_ms  # the first call compiles


CRASHY = '''
import os
import torch


class Crashy(torch.nn.Module):
    """Runs eagerly; kills its process when traced (stands in for a variant that segfaults)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(16, 4)

    def forward(self, x):
        if torch.jit.is_tracing():
            os._exit(3)
        return self.lin(x)


def make():
    return Crashy()
'''


def test_user_models_and_crash_isolation(tmp_path: Path, monkeypatch):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).eval()
    x = torch.randn(2, 16)
    ts = tmp_path / "tiny.pt"
    torch.jit.trace(net, x).save(str(ts))
    onnx_path = tmp_path / "tinyonnx.onnx"
    torch.onnx.export(net, (x,), str(onnx_path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}})
    pt2 = tmp_path / "tinyexp.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: batch},)), str(pt2))
    (tmp_path / "crashy_factory.py").write_text(textwrap.dedent(CRASHY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    models = ",".join(["crashy_factory:make", str(ts), str(pt2)])  # the crashing model goes first
    prof = calibrate(device="cpu", model=models, out=tmp_path / "user.json", variants=["fp32", "torchscript"],
                     batch_sizes="1,2", threads=1, budget="quick", input_shape="16", progress=False, overheads=False)
    by = {(m.name, v.name): v for m in prof.models for v in m.variants}
    assert by[("tiny", "fp32")].status == "ok" and by[("tinyexp", "fp32")].status == "ok"
    assert by[("make", "fp32")].status == "ok"
    crashed = by[("make", "torchscript")]
    assert crashed.status == "skipped" and "worker crashed (exit code 3)" in crashed.reason
    # the crash lost only its own variant: the run went on
    assert by[("tiny", "torchscript")].status == "ok"
    prof = calibrate(device="cpu", model=str(onnx_path), out=tmp_path / "onnx.json", variants=["fp32", "onnxruntime"],
                     batch_sizes="1,2", threads=1, budget="quick", input_shape="16", progress=False, overheads=False)
    by = {v.name: v for v in prof.model("tinyonnx").variants}
    assert by["onnxruntime"].status == "ok" and by["onnxruntime"].error is None  # no torch reference for an ONNX file
    assert by["fp32"].status == "skipped" and "only under onnxruntime" in by["fp32"].reason


def test_time_limit_records_what_was_not_run(tmp_path: Path):
    prof = calibrate(device="cpu", model="mlp_ranker", out=tmp_path / "t.json", variants=["fp32", "torchscript"],
                     batch_sizes="1", threads=1, budget="quick", progress=False, time_limit_s=0.5, overheads=False)
    reasons = [v.reason or "" for v in prof.model("mlp_ranker").variants]
    assert any("time limit" in r for r in reasons)


def _cli(*args: str):
    return CliRunner().invoke(app, ["calibrate", *args])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "resnet9000"], "'resnet9000' is not a known model: use a built-in (mlp_ranker, dlrm_small, encoder_small)"),
        (["--model", "mlp_ranker", "--variants", "fp32,turbo"], "'turbo' is not a variant; valid on cpu: fp32, bf16, int8_dynamic, int8_static, torchscript, onnxruntime, compile"),
        (["--model", "mlp_ranker", "--variants", "tf32"], "'tf32' does not run on cpu"),
        (["--model", "mlp_ranker", "--device", "tpu"], "--device: 'tpu' is not a device; valid: cpu, cuda"),
        (["--model", "mlp_ranker", "--budget", "lavish"], "--budget: 'lavish' is not a budget; valid: quick, normal, thorough, adaptive"),
        (["--model", "mlp_ranker", "--batch-sizes", "0,4"], "--batch-sizes: '0,4' is invalid"),
        (["--model", "model.onnx"], "'model.onnx' is not a file"),
        (["--model", "mlp_ranker", "--threads", "0"], "--threads: 0 is invalid"),
        (["--model", "mlp_ranker", "--out", "x.yaml"], "a profile is a .json file"),
    ],
)
def test_cli_errors(tmp_path: Path, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "p.json")]
    res = _cli(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_cli_requires_out_and_model():
    assert "--out is required" in _cli("--model", "mlp_ranker").output
    res = _cli("--out", "x.json")
    assert res.exit_code == 2 and "--model is required" in res.output


def test_cuda_without_gpu_exits_2(tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = subprocess.run([sys.executable, "-m", "simlat.cli", "calibrate", "--device", "cuda", "--model", "mlp_ranker",
                          "--out", str(tmp_path / "g.json"), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2
    assert "--device cuda: no CUDA GPU is visible here" in res.stderr
    assert "Traceback" not in res.stderr


def test_plan_and_inputs():
    assert default_batch_sizes("cuda", resolve_model("mlp_ranker"))[-1] == 4096
    assert default_batch_sizes("cpu", resolve_model("encoder_small"))[-1] == 32
    assert buckets([1, 2, 4, 8, 16, 32]) == [1, 4, 16, 32]
    assert buckets([1, 2, 4, 8, 16], 4) == [1, 16]
    assert parse_batch_sizes("8, 1,8") == [1, 8]
    assert select_variants("cuda", None)[0] == "fp32"
    with pytest.raises(SimlatError, match="--input-shape is required"):
        resolve_model("pkg.mod:factory")
    with pytest.raises(SimlatError, match="--input-shape: '3xa' is invalid"):
        resolve_model("pkg.mod:factory", "3xa")
    assert resolve_model("pkg.mod:factory", "3x8").input_shape == (3, 8)


def _profile_dict(device_name: str, points: dict[int, tuple[float, float, float]]) -> dict:
    """A profile with model 'toy', variant 'eager': per batch size a U(a, b) sketch of median m."""
    from simlat.profiles import SCHEMA_VERSION, default_quantile_levels

    lv = default_quantile_levels()
    steady = [{"batch_size": b, "dist": {"n": 1000, "mean_ms": (a + c) / 2, "quantiles_ms": [a + (c - a) * u for u in lv],
                                         "median_ci_ms": [m, m], "median_ci_half_width_ms": 0.0, "process_medians_ms": [m]}}
              for b, (a, c, m) in points.items()]
    return {"schema_version": SCHEMA_VERSION, "quantile_levels": lv,
            "provenance": {"device": "cuda", "device_name": device_name, "date": "d", "simlat_version": "0", "command": "c"},
            "models": [{"name": "toy", "variants": [{"name": "eager", "status": "ok", "processes": 1, "steady": steady}]}]}


def test_merge_pools_processes_and_refuses_other_devices():
    from simlat.calibrate.merge import merge
    from simlat.profiles import parse_profile

    base = parse_profile(_profile_dict("H100", {1: (1.0, 2.0, 1.5)}))
    other = parse_profile(_profile_dict("H100", {1: (2.0, 3.0, 2.5), 3: (5.0, 6.0, 5.5)}))
    v = merge(base, other).model("toy").variants[0]
    assert [p.batch_size for p in v.steady] == [1, 3] and v.processes == 2
    d = v.steady[0].dist
    assert d.n == 2000 and d.process_medians_ms == [1.5, 2.5]
    assert d.process_spread == pytest.approx(2.5 / 1.5, rel=1e-3) and d.unstable
    assert d.quantiles_ms[0] == pytest.approx(1.0, abs=1e-3) and d.quantiles_ms[-1] == pytest.approx(3.0, abs=1e-3)
    mid = len(d.quantiles_ms) // 2
    assert d.quantiles_ms[mid] == pytest.approx(2.0, abs=0.01)  # the pooled median of U(1,2) and U(2,3)
    with pytest.raises(SimlatError, match="device differs: base='H100'"):
        merge(base, parse_profile(_profile_dict("A100", {1: (1.0, 2.0, 1.5)})))


def test_calibration_writes_its_profile_on_a_host_without_pydantic(tmp_path):
    """GPU hosts have torch and numpy but not the simulator's pydantic: the profile is written as
    measured (the schema check happens when it is first read) instead of failing at the end."""



    block = tmp_path / "block"
    block.mkdir()
    for name in ("pydantic", "simpy", "pandas"):
        (block / f"{name}.py").write_text(f"raise ModuleNotFoundError('no {name} here', name='{name}')\n")
    out = tmp_path / "p.json"
    code = ("from simlat.calibrate.command import calibrate; "
            f"r = calibrate(device='cpu', model='mlp_ranker', out={str(out)!r}, variants=['fp32'], batch_sizes='1,2', "
            "budget='quick', overheads=False, progress=False, threads=1); print('returned', r)")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180,
                         env={"PYTHONPATH": f"{block}:{root}", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "returned None" in res.stdout and "without the schema check" in res.stderr
    from simlat.profiles.schema import load_profile

    prof = load_profile(out)  # validated here, where pydantic is installed
    (v,) = prof.model("mlp_ranker").variants
    assert v.status == "ok" and [p.batch_size for p in v.steady] == [1, 2]
    assert any("without the schema check" in n for n in prof.provenance.notes)
