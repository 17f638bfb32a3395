"""Timing one batch: CUDA events on the GPU, perf_counter on the CPU; warm-up until steady.

A *timed call* runs one batch and returns its time in ms. On cuda with ``cuda_events`` the time is
taken between two events on the stream around the call, and the host waits for the end event
before returning (a serving replica waits for its batch before answering). ``perf_counter``
brackets the call on the host (with a device synchronize on cuda).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed_call(call: Callable, timer: str, device: str) -> Callable[[object], float]:
    """``run(inputs) -> ms`` for one batch with the chosen timer."""
    if timer == "cuda_events":
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def run_events(inputs) -> float:
            start.record()
            call(inputs)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return run_events

    sync = None
    if device == "cuda":
        import torch

        sync = torch.cuda.synchronize

    def run_wall(inputs) -> float:
        t0 = time.perf_counter()
        call(inputs)
        if sync is not None:
            sync()
        return (time.perf_counter() - t0) * 1e3

    return run_wall


def first_call_ms(call: Callable, inputs, device: str) -> float:
    """Wall time of a first call (compilation, graph recording and lazy init included)."""
    sync = None
    if device == "cuda":
        import torch

        sync = torch.cuda.synchronize
        sync()
    t0 = time.perf_counter()
    call(inputs)
    if sync is not None:
        sync()
    return (time.perf_counter() - t0) * 1e3


def warm_up(run: Callable[[object], float], inputs: list, *, max_s: float, chunk: int = 5, tol: float = 0.05, min_chunks: int = 2) -> dict:
    """Call until the median of consecutive chunks of ``chunk`` calls changes by less than ``tol``.

    Stops at ``max_s`` even if not steady (``steady: False`` is recorded). Returns the calls made
    and whether the timings settled.
    """
    t_end = time.perf_counter() + max_s
    prev = None
    calls = 0
    settled = 0
    k = 0
    while True:
        ms = [run(inputs[(k + i) % len(inputs)]) for i in range(chunk)]
        k += chunk
        calls += chunk
        med = float(np.median(ms))
        if prev is not None and abs(med - prev) <= tol * max(prev, 1e-9):
            settled += 1
            if settled >= min_chunks - 1:
                return {"calls": calls, "steady": True}
        else:
            settled = 0
        prev = med
        if time.perf_counter() >= t_end:
            return {"calls": calls, "steady": False}


def sample(run: Callable[[object], float], inputs: list, *, min_n: int, max_n: int, max_s: float, hard_s: float | None = None,
           rel_ci: float = 0.0) -> np.ndarray:
    """Back-to-back timed calls (rotating over input sets) until ``max_s`` and ``min_n``, or ``max_n``.

    ``hard_s``: stop there even below ``min_n`` (keeping at least 3 samples), for slow batches.
    ``rel_ci`` > 0: stop early, once ``min_n`` are taken, when the median's 95% CI half-width is
    below ``rel_ci`` times the median (checked every tenth of the samples so far).
    """
    out: list[float] = []
    t0 = time.perf_counter()
    t_end = t0 + max_s
    t_hard = t0 + hard_s if hard_s is not None else float("inf")
    i = 0
    check_at = max(min_n, 3)
    while len(out) < max_n:
        now = time.perf_counter()
        if len(out) >= min_n and now >= t_end:
            break
        if len(out) >= 3 and now >= t_hard:
            break
        if rel_ci > 0 and len(out) >= check_at:
            if precise_enough(out, rel_ci):
                break
            check_at = len(out) + max(5, len(out) // 10)
        out.append(run(inputs[i % len(inputs)]))
        i += 1
    return np.asarray(out)


def precise_enough(samples, rel_ci: float) -> bool:
    """Whether the median's 95% CI half-width is at most ``rel_ci`` times the median."""
    from simlat.calibrate.stats import median_ci

    med = float(np.median(samples))
    lo, hi = median_ci(np.asarray(samples))
    return med > 0 and (hi - lo) / 2.0 <= rel_ci * med


def sample_after_idle(run: Callable[[object], float], inputs: list, *, n: int, gap_s: float) -> np.ndarray:
    """Timed calls each after ``gap_s`` of idleness (the device and caches go cold between batches)."""
    out = []
    for i in range(n):
        time.sleep(gap_s)
        out.append(run(inputs[i % len(inputs)]))
    return np.asarray(out)
