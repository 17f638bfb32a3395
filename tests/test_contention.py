"""Contention calibration: the overlap and slowdown arithmetic on synthetic timestamps, the SPEC
errors (exit 2 naming the bad part), and a real campaign on the CPU (processes, tiny windows) whose
file reads back, with k = 1 at slowdown 1 and the CUDA-only modes recorded as unavailable. The
campaign runs with pydantic, simpy and pandas made unimportable: GPU hosts lack them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.calibrate.contention import gpu, overlap, profile
from simlat.calibrate.contention.spec import make_sets, parse_instances, parse_spec
from simlat.cli import app
from simlat.errors import SimlatError

ROOT = Path(__file__).resolve().parents[1]
MS = 1_000_000  # ns


def _rec(starts_ms, dur_ms) -> np.ndarray:
    s = np.asarray(starts_ms, dtype=np.float64)
    d = np.broadcast_to(np.asarray(dur_ms, dtype=np.float64), s.shape)
    return np.stack([s * MS, (s + d) * MS], axis=1).astype(np.int64)


def test_together_keeps_only_batches_inside_every_window():
    a = _rec(np.arange(0, 100, 10), 10)  # 0..100 ms, back-to-back
    b = _rec(np.arange(25, 125, 5), 5)  # 25..125 ms
    c = _rec(np.arange(5, 85, 20), 20)  # 5..85 ms
    assert overlap.together_interval([a, b, c]) == (25 * MS, 85 * MS)
    ta, tb, tc = overlap.together([a, b, c])
    assert ta[:, 0].tolist() == [x * MS for x in (30, 40, 50, 60, 70)]  # 20..30 starts before 25, 80..90 ends after 85
    assert tb[0, 0] == 25 * MS and tb[-1, 1] == 85 * MS and len(tb) == 12
    assert tc[:, 0].tolist() == [25 * MS, 45 * MS, 65 * MS]  # 5..25 starts before 25
    for t in (ta, tb, tc):
        assert (t[:, 0] >= 25 * MS).all() and (t[:, 1] <= 85 * MS).all()


def test_no_overlap_or_an_idle_member_gives_nothing_together():
    a, b = _rec([0, 10], 10), _rec([30, 40], 10)
    assert overlap.together_interval([a, b]) is None
    assert all(t.shape == (0, 2) for t in overlap.together([a, b]))
    assert overlap.together_interval([a, a[:0]]) is None


def test_slowdown_and_its_spread_between_repeats():
    alone = [_rec(np.arange(0, 100, 1), 1.0), _rec(np.arange(0, 100, 1), 1.0)]
    together = [_rec(np.arange(0, 100, 2), 1.8), _rec(np.arange(0, 100, 2), 2.2)]
    ratio, sd = overlap.slowdown(alone, together)
    assert ratio == pytest.approx(2.0)
    assert sd == pytest.approx(np.std([1.8, 2.2], ddof=1))
    same = [_rec(np.arange(0, 100, 1), 1.0)] * 2
    assert overlap.slowdown(same, same) == (pytest.approx(1.0), pytest.approx(0.0))


def test_one_repeat_takes_the_spread_between_sub_windows():
    alone = [_rec(np.arange(0, 90, 1), 1.0)]
    # three equal spans of start time with per-batch times 1, 2, 3 ms
    t = np.concatenate([_rec(np.arange(0, 30, 3), 1.0), _rec(np.arange(30, 60, 3), 2.0), _rec(np.arange(60, 90, 3), 3.0)])
    parts = overlap.split_by_start(t)
    assert [len(p) for p in parts] == [10, 10, 10]
    ratio, sd = overlap.slowdown(alone, [t])
    assert ratio == pytest.approx(2.0)
    assert sd == pytest.approx(1.0)


def test_summary():
    s = overlap.summary(np.arange(1, 101, dtype=float))
    assert s["n"] == 100 and s["mean"] == pytest.approx(50.5) and s["p50"] == pytest.approx(50.5)
    assert s["p50"] <= s["p90"] <= s["p99"] <= 100


def test_clock_note():
    assert gpu.clock_note("mps", [], []) is None
    note = gpu.clock_note("mps", [1410.0, 1980.0, 1755.0], [1980.0])
    assert note == ("mps: SM clock read by nvidia-smi in the middle of each window: alone median 1755 MHz (1410-1980, "
                    "3 windows); together median 1980 MHz (1980-1980, 1 windows)")


def test_sets_from_spec():
    members = parse_spec("mlp_ranker/bf16@32, dlrm_small/bf16@64,encoder_small/bf16@16", "cuda")
    sets = make_sets(members, parse_instances("2,4"), pairs=True)
    assert [s.label for s in sets][:3] == ["mlp_ranker/bf16@32 x1", "mlp_ranker/bf16@32 x2", "mlp_ranker/bf16@32 x4"]
    assert [s.k for s in sets] == [1, 2, 4] * 3 + [2, 2, 2]
    assert sets[-1].label == "dlrm_small/bf16@64 + encoder_small/bf16@16"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--contention", "mlp_ranker/bf16"], "--contention: 'mlp_ranker/bf16' is invalid: give model/variant@batch"),
        (["--contention", "mlp_ranker/fp32@8,resnet/fp32@8"], "'resnet/fp32@8': model 'resnet' is not a built-in model"),
        (["--contention", "mlp_ranker/tf32@8"], "'mlp_ranker/tf32@8': variant 'tf32' does not run on cpu"),
        (["--contention", "mlp_ranker/fp32@0"], "'mlp_ranker/fp32@0': batch size '0' is invalid"),
        (["--contention", "mlp_ranker/fp32@8,mlp_ranker/fp32@8"], "'mlp_ranker/fp32@8' is given twice"),
        (["--contention", "mlp_ranker/fp32@8", "--instances", "1,x"], "--instances: 'x' is invalid"),
        (["--contention", "mlp_ranker/fp32@8", "--modes", "processes,vgpu"], "--modes: 'vgpu' is not a mode; valid: processes, mps, streams"),
        (["--contention", "mlp_ranker/fp32@8", "--pairs"], "--pairs: needs at least two entries"),
        (["--contention", "mlp_ranker/fp32@8", "--window-s", "0"], "--window-s: 0.0 is invalid"),
        (["--contention", "mlp_ranker/fp32@8", "--out", "c.yaml"], "a contention profile is a .json file"),
    ],
)
def test_bad_requests_exit_2_naming_the_bad_part(tmp_path: Path, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "c.json")]
    res = CliRunner().invoke(app, ["calibrate", "--device", "cpu", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_module_entry_exits_2_on_a_bad_spec(tmp_path: Path):
    res = subprocess.run([sys.executable, "-m", "simlat.calibrate.contention", "--device", "cpu", "--contention",
                          "mlp_ranker/fp32@8,dlrm_small/fp32", "--out", str(tmp_path / "c.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2
    assert "'dlrm_small/fp32' is invalid" in res.stderr and "Traceback" not in res.stderr


def _blocked_path(tmp_path: Path) -> str:
    """A folder whose pydantic, simpy and pandas fail to import, first on the import path."""
    block = tmp_path / "block"
    block.mkdir()
    for name in ("pydantic", "simpy", "pandas"):
        (block / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on this host')\n")
    return str(block)


def test_the_measuring_side_imports_no_pydantic_simpy_or_pandas(tmp_path: Path):
    code = ("import sys; import simlat.calibrate.contention.command, simlat.calibrate.contention.campaign, "
            "simlat.calibrate.contention.profile, simlat.calibrate.contention.worker, simlat.calibrate.contention.mps; "
            "print(sorted(m for m in ('pydantic', 'simpy', 'pandas', 'torch') if m in sys.modules))")
    env = {"PYTHONPATH": _blocked_path(tmp_path) + ":" + str(ROOT), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"  # torch too is imported only inside the measuring processes


@pytest.mark.slow  # about 10 s on two busy cores: two worker processes import torch
def test_cpu_campaign_writes_a_profile_that_reads_back(tmp_path: Path):
    out = tmp_path / "cpu-contention.json"
    env = {"PYTHONPATH": _blocked_path(tmp_path) + ":" + str(ROOT), "PATH": "/usr/bin:/bin"}
    # the module entry: what a GPU host without the CLI's dependencies runs (typer itself imports pydantic)
    res = subprocess.run([sys.executable, "-m", "simlat.calibrate.contention", "--device", "cpu", "--contention",
                          "mlp_ranker/fp32@4", "--instances", "2", "--modes", "processes,streams,mps",
                          "--window-s", "0.25", "--repeats", "1", "--threads", "1", "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "contention profile written to" in res.stdout
    data = profile.load(out)
    assert data["provenance"]["device"] == "cpu" and data["provenance"]["device_name"].startswith("cpu")
    assert "simlat.calibrate.contention --device cpu --contention mlp_ranker/fp32@4" in data["provenance"]["command"]
    one, two = data["measurements"]
    assert one["mode"] == two["mode"] == "processes"
    assert len(one["members"]) == 1 and one["slowdown"] == [1.0] and one["slowdown_sd"] == [0.0]
    assert one["alone_ms"] == one["together_ms"]
    assert two["members"] == [{"model": "mlp_ranker", "variant": "fp32", "batch_size": 4}] * 2
    assert two["alone_ms"] == [one["alone_ms"][0]] * 2
    for st, x in zip(two["together_ms"], two["slowdown"], strict=True):
        assert st["n"] >= 3 and x == pytest.approx(st["mean"] / one["alone_ms"][0]["mean"])
    assert two["repeats"] == 1 and two["window_s"] == 0.25
    assert {u["mode"] for u in data["unavailable"]} == {"streams", "mps"}
    text = CliRunner().invoke(app, ["profile", "describe", str(out)]).output
    assert "| processes | mlp_ranker/fp32@4 x2 | 2 |" in text and "Not measured (mps): MPS needs --device cuda" in text


def test_the_file_is_checked_on_reading(tmp_path: Path):
    good = {
        "schema": "simlat.contention", "schema_version": 1,
        "provenance": {"device_name": "d", "device": "cuda", "host": "h", "torch": "2", "driver": None,
                       "created": "2026-12-05T00:00:00+00:00", "command": "c", "notes": []},
        "measurements": [{"mode": "processes", "members": [{"model": "m", "variant": "bf16", "batch_size": 8}] * 2,
                          "alone_ms": [{"p50": 1, "p90": 1, "p99": 2, "mean": 1.1, "n": 10}] * 2,
                          "together_ms": [{"p50": 2, "p90": 2, "p99": 3, "mean": 2.1, "n": 9}] * 2,
                          "slowdown": [1.9, 1.9], "slowdown_sd": [0.1, 0.1], "repeats": 2, "window_s": 3.0}],
        "unavailable": [{"mode": "mps", "reason": "r"}],
    }
    p = tmp_path / "c.json"
    p.write_text(json.dumps(good))
    assert profile.load(p)["measurements"][0]["slowdown"] == [1.9, 1.9]
    bad = json.loads(json.dumps(good))
    bad["measurements"][0]["slowdown"] = [1.9]
    p.write_text(json.dumps(bad))
    with pytest.raises(SimlatError, match=r"measurements\[0\].slowdown: \[1.9\] is invalid: must hold one entry per member \(2\)"):
        profile.load(p)


def test_cuda_without_gpu_exits_2(tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = subprocess.run([sys.executable, "-m", "simlat.calibrate.contention", "--device", "cuda", "--contention",
                          "mlp_ranker/bf16@8", "--out", str(tmp_path / "g.json")], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 2
    assert "--device cuda: no CUDA GPU is visible here" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "g.json").exists()


def test_shipped_contention_profiles_read_back_and_agree_with_their_statistics():
    files = [f for f in sorted((ROOT / "calibration").glob("*.json")) if profile.is_contention(f)]
    assert files, "no contention profile is shipped"
    for f in files:
        data = profile.load(f)
        for m in data["measurements"]:
            k = len(m["members"])
            if k == 1:
                assert m["slowdown"] == [1.0] and m["alone_ms"] == m["together_ms"]
            for a, t, x in zip(m["alone_ms"], m["together_ms"], m["slowdown"], strict=True):
                assert x == pytest.approx(t["mean"] / a["mean"], rel=1e-9), (f.name, m["mode"], m["members"])



def test_a_spent_time_limit_is_recorded_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "c.json"
    res = subprocess.run([sys.executable, "-m", "simlat.calibrate.contention", "--device", "cpu", "--contention",
                          "mlp_ranker/fp32@4", "--modes", "processes", "--time-limit", "0.1", "--threads", "1",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "no contention set could be measured; nothing written" in res.stderr
    assert "processes: not measured: the time limit was spent" in res.stderr
    assert not out.exists()
