"""Where configurations run: in this process, a local process pool, or a Dask cluster.

Each configuration is one task (its whole rate search) calling :func:`simlat.sweep.search.search`
in-process; results come back as they finish. Every task carries its own seed, so the results do
not depend on the executor, the number of workers or the order of completion.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from simlat.errors import SimlatError, excerpt
from simlat.sweep.lifeline import SWEEP_PID_ENV, die_with_parent
from simlat.sweep.search import Outcome, SearchTask, search

# Imported once by the fork server, so that workers start with them loaded (scipy.stats alone takes
# over a second to import).
PRELOAD = ["simlat.sweep.forkserver_guard", "simlat.sweep.search", "simlat.api", "simlat.engine", "simlat.metrics", "simlat.workload", "scipy.stats"]


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_local(tasks: Sequence[SearchTask], workers: int | None = None) -> Iterator[Outcome]:
    """Run ``tasks`` on ``workers`` local processes (1: in this process), yielding as they finish."""
    workers = min(workers or default_workers(), len(tasks))
    if workers <= 1:
        for task in tasks:
            yield search(task)
        return
    # forkserver: workers fork from a clean server process that has simlat already imported
    # (cheap to start, and safe while this process runs a progress-bar thread).
    # The fork server and the workers die with this process (simlat.sweep.lifeline).
    os.environ[SWEEP_PID_ENV] = str(os.getpid())
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent)
    futures = [pool.submit(search, t) for t in tasks]
    try:
        for fut in as_completed(futures):
            yield fut.result()
    except BaseException:  # Ctrl-C or an error: stop now, not after the running searches finish
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers at once (their searches are lost; finished
    ones are already in the result cache)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public handle on the workers
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=2)


_ADDRESS = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")
CONNECT_TIMEOUT_S = 3.0


def check_cluster_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Dask scheduler address ``[tcp://|tls://]host:port``, or a SimlatError."""
    m = _ADDRESS.match(address.strip())
    if not m or not 0 < int(m.group(3)) < 65536:
        raise SimlatError(
            f"--cluster: {excerpt(address)} is not a scheduler address; expected tcp://host:port, e.g. tcp://127.0.0.1:8786"
        )
    return m.group(2).strip("[]"), int(m.group(3))


def probe_cluster(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast (within ``timeout_s``) when nothing listens at the scheduler's address."""
    host, port = check_cluster_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise SimlatError(f"--cluster: nothing is listening at {address} ({reason}); is the Dask scheduler running?") from None


def run_dask(tasks: Sequence[SearchTask], address: str) -> Iterator[Outcome]:
    """Run ``tasks`` on the existing Dask distributed cluster at ``address``."""
    probe_cluster(address)
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:  # pragma: no cover - dask is a dependency
        raise SimlatError(f"--cluster {address}: dask distributed is not installed ({err})") from None
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S * 3:.0f}s")
    except (OSError, TimeoutError, ValueError) as err:
        raise SimlatError(f"--cluster: cannot connect to a Dask scheduler at {address!r} ({err})") from None
    try:
        futures = client.map(search, list(tasks), pure=False)
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        client.close()


def run_tasks(tasks: Sequence[SearchTask], workers: int | None = None, cluster: str | None = None) -> Iterator[Outcome]:
    """Dispatch to the Dask cluster when an address is given, else to local processes."""
    if not tasks:
        return iter(())
    if cluster:
        return run_dask(tasks, cluster)
    return run_local(tasks, workers)
