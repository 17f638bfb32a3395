"""Which batches ran together, their statistics and the slowdown: pure numpy, no device.

A member's record of one window is an ``(n, 2)`` int64 array of batch start and end times in ns
on the host's monotonic clock (``time.monotonic_ns``: one clock for every process of the host).
A batch counts as *together* only if it started and ended while every member of the set was
inside its measuring window, i.e. inside ``[latest first start, earliest last end]``.
"""

from __future__ import annotations

import numpy as np

SUB_WINDOWS = 3
"""With a single repeat, the spread of a slowdown is taken between this many equal sub-windows."""


def together_interval(records: list[np.ndarray]) -> tuple[int, int] | None:
    """``(lo, hi)``: the span in which every member was measuring (None if some member ran no batch
    or the spans do not overlap)."""
    if not records or any(r.shape[0] == 0 for r in records):
        return None
    lo = max(int(r[0, 0]) for r in records)
    hi = min(int(r[-1, 1]) for r in records)
    return (lo, hi) if hi > lo else None


def together(records: list[np.ndarray]) -> list[np.ndarray]:
    """Each member's batches that started and ended inside :func:`together_interval` (empty if none)."""
    span = together_interval(records)
    if span is None:
        return [r[:0] for r in records]
    lo, hi = span
    return [r[(r[:, 0] >= lo) & (r[:, 1] <= hi)] for r in records]


def durations_ms(record: np.ndarray) -> np.ndarray:
    """Per-batch times in ms."""
    return (record[:, 1] - record[:, 0]).astype(np.float64) / 1e6


def summary(ms: np.ndarray) -> dict:
    """p50, p90, p99, mean (ms) and n of per-batch times."""
    if ms.size == 0:
        raise ValueError("no batches to summarise")
    p50, p90, p99 = (float(x) for x in np.percentile(ms, [50, 90, 99]))
    return {"p50": p50, "p90": p90, "p99": p99, "mean": float(ms.mean()), "n": int(ms.size)}


def split_by_start(record: np.ndarray, parts: int = SUB_WINDOWS) -> list[np.ndarray]:
    """The batches of a record in ``parts`` equal spans of start time (empty spans dropped)."""
    if record.shape[0] == 0:
        return []
    lo, hi = int(record[0, 0]), int(record[-1, 0]) + 1
    edges = np.linspace(lo, hi, parts + 1)
    idx = np.clip(np.searchsorted(edges, record[:, 0], side="right") - 1, 0, parts - 1)
    return [record[idx == i] for i in range(parts) if np.any(idx == i)]


def slowdown(alone: list[np.ndarray], together_recs: list[np.ndarray]) -> tuple[float, float]:
    """One member's slowdown (together mean / alone mean, over all repeats pooled) and its spread.

    ``alone[r]`` and ``together_recs[r]`` are the member's records of repeat ``r`` (together
    batches only). The spread is the standard deviation of the per-repeat ratios with two or more
    repeats; with one, of the ratios of :data:`SUB_WINDOWS` sub-windows of the together record to
    the alone mean (0 if fewer than two sub-windows hold batches).
    """
    a_all = np.concatenate([durations_ms(a) for a in alone])
    t_all = np.concatenate([durations_ms(t) for t in together_recs])
    ratio = float(t_all.mean() / a_all.mean())
    if len(alone) >= 2:
        per = [durations_ms(t).mean() / durations_ms(a).mean() for a, t in zip(alone, together_recs, strict=True)]
    else:
        base = durations_ms(alone[0]).mean()
        per = [durations_ms(s).mean() / base for s in split_by_start(together_recs[0])]
    sd = float(np.std(per, ddof=1)) if len(per) >= 2 else 0.0
    return ratio, sd
