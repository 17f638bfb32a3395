"""The CUDA MPS control daemon: started for the ``mps`` mode, always stopped after it.

``nvidia-cuda-mps-control -d`` is started with its pipe and log folders in fresh temporary
folders, so it neither meets nor disturbs another daemon of the host; the measuring processes
get the same ``CUDA_MPS_PIPE_DIRECTORY`` and become its clients. Every call has a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CONTROL = "nvidia-cuda-mps-control"
TIMEOUT_S = 20.0


class MpsUnavailable(Exception):
    """MPS cannot be used here; the message says why."""


class MpsDaemon:
    """A running control daemon and the environment its clients need."""

    def __init__(self, exe: str, pipe_dir: str, log_dir: str):
        self.exe, self.pipe_dir, self.log_dir = exe, pipe_dir, log_dir
        self.env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=pipe_dir, CUDA_MPS_LOG_DIRECTORY=log_dir)

    def query(self, command: str) -> str:
        """Send one command to the daemon (e.g. ``get_server_list``); its answer, stripped."""
        out = subprocess.run([self.exe], input=command + "\n", env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S)
        return (out.stdout + out.stderr).strip()

    def log_tail(self, n: int = 4) -> str:
        """The last lines of the daemon's logs (control.log, server.log), for a reason."""
        lines: list[str] = []
        for name in ("control.log", "server.log"):
            p = Path(self.log_dir) / name
            if p.exists():
                lines += [f"{name}: {x}" for x in p.read_text(errors="replace").splitlines()[-n:] if x.strip()]
        return " | ".join(lines)[-600:]

    def stop(self) -> str | None:
        """Ask the daemon to quit (it stops its server); None, or what went wrong."""
        problem = None
        try:
            subprocess.run([self.exe], input="quit\n", env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S)
            t_end = time.monotonic() + 10.0
            while (Path(self.pipe_dir) / "control").exists() and time.monotonic() < t_end:
                time.sleep(0.1)
        except (OSError, subprocess.SubprocessError) as err:
            problem = f"stopping the MPS daemon failed: {type(err).__name__}: {err}"
        shutil.rmtree(self.pipe_dir, ignore_errors=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return problem


def start() -> MpsDaemon:
    """Start a control daemon of our own, or raise :class:`MpsUnavailable` with the reason."""
    exe = shutil.which(CONTROL)
    if exe is None:
        raise MpsUnavailable(f"{CONTROL} not found on PATH")
    pipe_dir = tempfile.mkdtemp(prefix="simlat-mps-pipe-")
    log_dir = tempfile.mkdtemp(prefix="simlat-mps-log-")
    daemon = MpsDaemon(exe, pipe_dir, log_dir)
    try:
        out = subprocess.run([exe, "-d"], env=daemon.env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as err:
        daemon.stop()
        raise MpsUnavailable(f"{CONTROL} -d failed: {type(err).__name__}: {err}") from err
    if out.returncode != 0:
        msg = (out.stderr or out.stdout).strip()[:300]
        tail = daemon.log_tail()
        daemon.stop()
        raise MpsUnavailable(f"{CONTROL} -d exited with code {out.returncode}: {msg} {tail}".strip())
    t_end = time.monotonic() + 10.0
    while not (Path(pipe_dir) / "control").exists():
        if time.monotonic() > t_end:
            tail = daemon.log_tail()
            daemon.stop()
            raise MpsUnavailable(f"{CONTROL} -d started but made no control pipe in {pipe_dir} within 10 s {tail}".strip())
        time.sleep(0.05)
    return daemon
