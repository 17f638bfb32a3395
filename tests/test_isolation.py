"""Faults and isolation: a killed sweep leaves no process behind; child processes never import from
the current directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

SWEEP = {
    "name": "killme",
    "workload": {"arrivals": {"kind": "poisson", "rate_rps": 500.0}},
    "batching": {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 0.5},
    "service": {"kind": "exponential", "mean_ms": 1.0},
    "slo": {"percentile": 99, "latency_ms": 20, "target_rate_rps": 500},
    "run": {"requests": 20000, "seed": 1},
    "sweep": {"grid": {"fleet.replicas": [1, 2, 3, 4, 5, 6, 7, 8], "batching.max_wait_ms": [0.1, 0.5, 1, 2]},
              "min_requests": 20000, "max_requests": 200000, "cost_per_replica_hour": 1},
}


def test_killing_a_sweep_leaves_no_process_behind(tmp_path):
    psutil = pytest.importorskip("psutil")
    exp = tmp_path / "sw.yaml"
    exp.write_text(yaml.safe_dump(SWEEP))
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlat.cli", "sweep", str(exp), "--workers", "2", "--no-cache", "--no-report", "-q"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    kids: list = []
    deadline = time.monotonic() + 90
    try:
        # wait until the pool is up: resource tracker, fork server and both workers
        while time.monotonic() < deadline and proc.poll() is None:
            kids = psutil.Process(proc.pid).children(recursive=True)
            if len(kids) >= 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        assert len(kids) >= 4, [k.cmdline()[:3] for k in kids]
        time.sleep(0.5)  # mid-run
        kids = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(kids, timeout=5)
        assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:
            try:
                k.kill()
            except psutil.Error:
                pass


def test_child_processes_do_not_import_from_the_current_directory(tmp_path):
    from simlat.launch import module_command

    marker = tmp_path / "PWNED"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    safe = subprocess.run(module_command("json.tool"), input='{"a": 1}', capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)
    assert safe.returncode == 0 and '"a": 1' in safe.stdout, safe.stderr
    assert not marker.exists()
    # the check can fail: plain ``python -m`` runs the stray module
    subprocess.run([sys.executable, "-m", "json.tool"], input="{}", capture_output=True, text=True, cwd=tmp_path,
                   env=env, timeout=60)
    assert marker.exists()


def test_simlat_modules_start_in_safe_path_mode():
    from simlat.launch import module_command

    cmd = module_command("simlat.calibrate.worker", "--device", "cpu")
    assert cmd[:2] == [sys.executable, "-P"] and cmd[-2:] == ["--device", "cpu"]
    out = subprocess.run(module_command("simlat.launch"), capture_output=True, text=True, cwd="/", timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr  # simlat is found without the current directory or PYTHONPATH
