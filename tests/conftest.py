"""Shared fixtures: a real, throw-away Redis server on loopback (``redis_url``).

The server is the Debian ``redis-server`` binary (``.ci/run`` installs it), started on a free port
without persistence and stopped after the session. Without the binary the tests that use it skip
and say why.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    """URL of a fresh redis-server on 127.0.0.1 for this test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10.0
        while not _ping(port):
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with code {proc.returncode} before answering PING:\n{out}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {port} did not answer PING within 10 s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pytest_addoption(parser):
    parser.addoption(
        "--update-expected",
        action="store_true",
        help="re-record tests/expected/*.json from fresh reduced runs (as SIMLAT_UPDATE_EXPECTED=1)",
    )
