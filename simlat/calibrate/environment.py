"""Provenance of a measurement: device, driver, CUDA, library versions, CPU model, threads.

``describe(device)`` imports torch, so it runs in a worker; the parent adds the date, the simlat
version, the command line and the budget.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from typing import Any


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def nvidia_driver() -> str | None:
    """The driver version nvidia-smi reports, if it is there."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(mod: str) -> str | None:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", None)
    except Exception:  # noqa: BLE001 - absent or broken: not recorded
        return None


def describe(device: str) -> dict:
    """Provenance fields measured in this process."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "torchao": _version("torchao"),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": cpu_count(),
        "hostname": socket.gethostname(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(device_name=props.name, cuda=torch.version.cuda, driver=nvidia_driver())
        info["notes"] = [f"{props.multi_processor_count} SMs, {props.total_memory / 2**30:.1f} GiB"]
    else:
        info.update(device_name=f"cpu: {info['cpu_model']}")
        info["notes"] = []
    return info
