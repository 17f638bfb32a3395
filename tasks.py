#!/usr/bin/env python3
"""Set up a virtual environment and run simlat's main job or its tests. Needs only Python 3.11+ and pip.

    python3 tasks.py demo    # set up, simulate the demo experiment, run the feed sweep, write the report
    python3 tasks.py test    # set up, run the test suite
    python3 tasks.py bench   # set up, run the engine benchmark
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SIMLAT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
# torch 2.13.0 is first installed on its own so that pip takes the CPU wheel; the project's range admits it.
TORCH = "torch==2.13.0"


def sh(*args: str | Path) -> None:
    """Run a command from the repository root; stop with its exit code if it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    rc = subprocess.call([str(a) for a in args], cwd=ROOT)
    if rc:
        sys.exit(rc)


def setup() -> None:
    """Create .venv and install simlat with its calibration and test extras (skipped when up to date)."""
    if sys.version_info < (3, 11):
        sys.exit(f"simlat needs Python >= 3.11, this is {sys.version.split()[0]}")
    stamp = VENV / ".simlat-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"+ python -m venv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    sh(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    sh(PY, "-m", "pip", "install", "-q", TORCH)
    sh(PY, "-m", "pip", "install", "-q", "-e", ".[calibrate,test]")
    stamp.write_text(digest)


def demo() -> None:
    """The main job on shipped defaults: one simulation, then the feed sweep and its report."""
    sh(BIN / "simlat", "simulate", "experiments/demo.yaml")
    sh(BIN / "simlat", "sweep", "experiments/feed.yaml")


def test() -> None:
    """The whole test suite (CI runs exactly this)."""
    sh(PY, "-m", "pytest", "-q", *sys.argv[2:])


def bench() -> None:
    """Engine speed against the naive per-request SimPy model."""
    sh(PY, "benchmarks/engine_bench.py")


TASKS = {"demo": demo, "test": test, "bench": bench, "setup": lambda: None}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    setup()
    TASKS[sys.argv[1]]()
