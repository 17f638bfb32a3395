"""Bad input: each case gives one clear message naming the field, the value and the rule; exit 2; no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BASE = {
    "name": "bad-input",
    "workload": {"arrivals": {"kind": "poisson", "rate_rps": 100.0}},
    "service": {"kind": "deterministic", "ms": 1.0},
    "slo": {"latency_ms": 10.0},
    "run": {"requests": 2000},
}


def simulate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simlat.cli", "simulate", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, data, name="exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def with_(path: str, value):
    """A copy of BASE with one dotted path set."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return data


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in {proc.stderr!r}"


def test_missing_file(tmp_path):
    assert_clean_error(simulate(tmp_path / "nope.yaml"), "nope.yaml", "no such file")


def test_invalid_yaml(tmp_path):
    p = write(tmp_path, "name: x\nworkload: [unclosed\n")
    assert_clean_error(simulate(p), "invalid YAML", "line")


def test_unknown_key(tmp_path):
    p = write(tmp_path, with_("fleet.replica", 3))
    assert_clean_error(simulate(p), "fleet.replica", "unknown key")


def test_wrong_type(tmp_path):
    p = write(tmp_path, with_("fleet.replicas", "many"))
    assert_clean_error(simulate(p), "fleet.replicas", "'many'", "integer")


def test_negative_rate(tmp_path):
    p = write(tmp_path, with_("workload.arrivals.rate_rps", -5))
    assert_clean_error(simulate(p), "workload.arrivals.rate_rps", "-5", "greater than 0")


def test_negative_max_wait(tmp_path):
    p = write(tmp_path, with_("batching", {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": -1}))
    assert_clean_error(simulate(p), "batching.max_wait_ms", "-1", "greater than or equal to 0")


def test_unknown_kind(tmp_path):
    p = write(tmp_path, with_("workload.arrivals", {"kind": "poison", "rate_rps": 5}))
    assert_clean_error(simulate(p), "workload.arrivals", "poison")


def _trace_exp(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "trace.csv").write_text(csv_text)
    return write(tmp_path, with_("workload.arrivals", {"kind": "trace", "path": "trace.csv", "unit": "s"}))


def test_trace_unsorted(tmp_path):
    p = _trace_exp(tmp_path, "timestamp\n0.0\n1.0\n0.5\n2.0\n")
    assert_clean_error(simulate(p), "trace.csv", "0.5", "sorted")


def test_trace_non_numeric(tmp_path):
    p = _trace_exp(tmp_path, "timestamp\n0.0\n1.0\nsoon\n2.0\n")
    assert_clean_error(simulate(p), "trace.csv", "soon")


def test_trace_empty(tmp_path):
    p = _trace_exp(tmp_path, "timestamp\n")
    assert_clean_error(simulate(p), "trace.csv", "empty")


@pytest.mark.parametrize("args", [["simulate"], ["simulate", "a.yaml", "--requests", "0"]])
def test_bad_cli_arguments_exit_2(args):
    proc = subprocess.run([sys.executable, "-m", "simlat.cli", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
