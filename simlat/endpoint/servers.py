"""Starting and stopping the servers a campaign measures, so every repeat can meet a fresh one.

- :class:`TritonServer`: NVIDIA Triton Inference Server (the ``tritonserver`` binary, e.g. from the
  ``nvidia-pytriton`` wheel) over a model repository written by :func:`write_triton_repository`:
  one of simlat's built-in models in a variant, behind Triton's dynamic batcher;
- :class:`SimlatServer`: simlat's own aiohttp server (:mod:`simlat.validate.server`), which also
  speaks the KServe v2 protocol;
- :class:`CommandServer`: any server started by a shell command (``--server-cmd``).

Each is a context manager that waits until the endpoint answers a real request and stops the
whole process group on exit. Needs numpy only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simlat.endpoint.probe import EndpointError, child_env, wait_ready
from simlat.endpoint.protocol import Target

SIMLAT_ROOT = Path(__file__).resolve().parents[2]
INPUTS = {"mlp_ranker": ("float32", 512), "encoder_small": ("int64", 64)}
"""Built-in single-input models that the generated servers can serve: input dtype and size."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_triton_repository(root: Path, *, model: str, variant: str, device: str, max_batch: int,
                            max_wait_ms: float, instances: int = 1, name: str = "simlat") -> Path:
    """A Triton model repository serving ``model`` in ``variant`` with the dynamic batcher."""
    if model not in INPUTS:
        raise EndpointError(f"model: {model!r} cannot be served by the generated Triton model (valid: {', '.join(INPUTS)})")
    dtype, size = INPUTS[model]
    mdir = root / name
    (mdir / "1").mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("triton_model.py"), mdir / "1" / "model.py")
    tdt = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}[dtype]
    kind = "KIND_GPU" if device == "cuda" else "KIND_CPU"
    params = {"simlat_root": str(SIMLAT_ROOT), "model": model, "variant": variant, "device": device,
              "max_batch": str(max_batch)}
    ptxt = "\n".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items())
    (mdir / "config.pbtxt").write_text(f'''name: "{name}"
backend: "python"
max_batch_size: {max_batch}
input [ {{ name: "x", data_type: {tdt}, dims: [ {size} ] }} ]
output [ {{ name: "y", data_type: TYPE_FP32, dims: [ 1 ] }} ]
dynamic_batching {{ max_queue_delay_microseconds: {int(round(max_wait_ms * 1000))} }}
instance_group [ {{ count: {instances}, kind: {kind} }} ]
{ptxt}
''')
    return root


class _Process:
    """A server process in its own process group, stopped with everything it started."""

    proc: subprocess.Popen | None = None
    target: Target

    def _start(self, cmd, env=None, shell=False, start_timeout_s: float = 180.0, cpus: str = "") -> None:
        self._log = tempfile.NamedTemporaryFile(mode="w+", prefix="simlat-server-", suffix=".log", delete=False)
        pin = {int(c) for c in cpus.split(",") if c} if cpus else None
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, shell=shell,
                                     start_new_session=True,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None)
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                if self.proc.poll() is not None:
                    raise EndpointError(f"server exited with code {self.proc.returncode} before it was ready: "
                                        f"{self.log_tail()}")
                try:
                    wait_ready(self.target, timeout_s=min(5.0, max(0.5, deadline - time.monotonic())))
                    return
                except EndpointError:
                    if time.monotonic() > deadline:
                        raise
        except BaseException:
            self.stop()
            raise

    def log_tail(self, n: int = 800) -> str:
        """The end of the server's log."""
        try:
            return Path(self._log.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        try:
            os.unlink(self._log.name)
        except (OSError, AttributeError):
            pass


class TritonServer(_Process):
    """``tritonserver`` over a model repository, HTTP and metrics on free loopback ports."""

    def __init__(self, binary: str, repository: Path, *, model_name: str = "simlat", input_spec: str = "float32:512",
                 cpus: str = "", start_timeout_s: float = 240.0):
        http, grpc, metrics = free_port(), free_port(), free_port()
        self.target = Target(url=f"http://127.0.0.1:{http}", protocol="kserve_v2", model=model_name,
                             input_spec=input_spec, metrics_url=f"http://127.0.0.1:{metrics}/metrics")
        cmd = [binary, f"--model-repository={repository}", f"--http-port={http}", f"--grpc-port={grpc}",
               f"--metrics-port={metrics}", "--log-verbose=0", "--allow-gpu-metrics=false"]
        backends = Path(binary).resolve().parents[1] / "backends"
        if backends.is_dir():
            cmd.append(f"--backend-directory={backends}")
        self._start(cmd, env=child_env(), start_timeout_s=start_timeout_s, cpus=cpus)


class SimlatServer(_Process):
    """simlat's own server (:mod:`simlat.validate.server`) measured through its KServe v2 route."""

    def __init__(self, *, model: str, variant: str = "fp32", device: str = "cpu", max_batch: int = 1,
                 max_wait_ms: float = 0.0, threads: int = 1, cpus: str = "", start_timeout_s: float = 240.0):
        port = free_port()
        dtype, size = INPUTS[model]
        self.target = Target(url=f"http://127.0.0.1:{port}", protocol="kserve_v2", model=model,
                             input_spec=f"{dtype}:{size}")
        cmd = [sys.executable, "-P", "-m", "simlat.validate.server", "--model", model, "--variant", variant,
               "--device", device, "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms),
               "--threads", str(threads), "--port", str(port)]
        self._start(cmd, env=child_env(), start_timeout_s=start_timeout_s, cpus=cpus)


class CommandServer(_Process):
    """Any server, started by a shell command and measured at ``target``."""

    def __init__(self, command: str, target: Target, start_timeout_s: float = 240.0, cpus: str = ""):
        self.target = target
        self._start(command, env=child_env(), shell=True, start_timeout_s=start_timeout_s, cpus=cpus)


def split_cpus() -> tuple[str, list[int] | None]:
    """Disjoint CPU sets for the server (first half) and the load generators (the rest), on hosts with
    at least 8 usable cores; nothing pinned on smaller ones."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 8:
        return "", None
    k = max(4, (len(cpus) * 3) // 8)
    return ",".join(map(str, cpus[:k])), cpus[k:]
