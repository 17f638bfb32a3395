"""What the GPU reports while it is measured (nvidia-smi), for the provenance; never required."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np


def sm_clock_mhz() -> float | None:
    """The first GPU's current SM clock in MHz, or None (no nvidia-smi, an error, 5 s without answer)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=clocks.sm", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=5)
        return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def clock_note(mode: str, alone: list[float], together: list[float]) -> str | None:
    """``mps: SM clock mid-window: alone median 1755 MHz (1410-1980, 6 windows), together ...``; None without readings."""
    parts = []
    for name, xs in (("alone", alone), ("together", together)):
        if xs:
            parts.append(f"{name} median {np.median(xs):.0f} MHz ({min(xs):.0f}-{max(xs):.0f}, {len(xs)} windows)")
    return f"{mode}: SM clock read by nvidia-smi in the middle of each window: " + "; ".join(parts) if parts else None
