"""The day's numbers from its per-window table, whichever engine produced it.

The table needs one row per window, in time order, with the columns of :data:`WINDOW_COLUMNS`
(``t_s`` the window's start; the window runs to the next row's start, the last one to the end of the
day). The quasi-static day (:mod:`simlat.autoscale.day`) writes them, and so can an event-level one.

Definitions:

- **1-minute compliance**: the day is cut into minutes ``[60 m, 60 (m + 1))``; a minute meets the SLO
  when every window overlapping it does (``meets_slo``). With 60-s windows aligned on minutes this is
  the share of windows meeting the SLO; with longer windows (120 s, say) each minute takes its window's
  verdict, so a breach confined to one minute of a passing window is not seen (the window's p99 is
  not a per-minute p99); with shorter windows a minute fails when any of its windows fails.
- **requests share**: requests that met the SLO over all requests. With a ``within_slo_share`` column
  (the quasi-static day: the share of a window's simulated requests completed within the SLO latency,
  0 in an unstable window), ``sum(requests x within_slo_share) / sum(requests)``; without it, the share
  of requests that arrived in windows meeting the SLO.
- **replica-hours**: ``sum(billed x window length) / 3600``; **cost**: replica-hours x price.
- **recovery**: a breach starts at a window missing the SLO after one meeting it (or at the first
  window) and ends at the start of the first later window from which ``recovery_windows`` windows in
  a row meet it (fewer when the day ends first). Its length is end - start; the day's ``recovery_s``
  is the longest breach (None when the SLO is never missed); a breach still open at the end of the day
  lasts until then and is flagged ``recovered=False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

WINDOW_COLUMNS = ("t_s", "offered_rps", "requests", "drops", "ready", "starting", "draining", "billed", "utilization",
                  "p50_ms", "p99_ms", "p99_lo_ms", "p99_hi_ms", "meets_slo")
"""The columns every per-window table of a day carries (both engines)."""


@dataclass(frozen=True)
class Breach:
    """One stretch of windows missing the SLO, and how long until it held again."""

    start_s: float
    duration_s: float
    recovered: bool


@dataclass(frozen=True)
class DayMetrics:
    """The day's numbers computed from its window table (see the module doc)."""

    minutes: int
    minutes_share: float
    windows_share: float
    requests: float
    requests_share: float
    drops: float
    replica_hours: float
    cost_usd: float | None
    ready_min: int
    ready_max: int
    ready_mean: float
    breaches: int
    recovery_s: float | None
    recovery_from_s: float | None
    recovered: bool


def window_lengths(t_s: np.ndarray, day_s: float) -> np.ndarray:
    """Each window's length: to the next window's start, the last to the end of the day."""
    ends = np.append(t_s[1:], day_s)
    return ends - t_s


def minute_verdicts(t_s: np.ndarray, meets: np.ndarray, day_s: float) -> np.ndarray:
    """One bool per minute of the day: every window overlapping the minute meets the SLO."""
    n = math.ceil(day_s / 60.0 - 1e-9)
    lo = np.arange(n) * 60.0
    hi = np.minimum(lo + 60.0, day_s)
    first = np.searchsorted(t_s, lo, side="right") - 1  # the window holding the minute's start
    last = np.searchsorted(t_s, hi, side="left") - 1  # the last window starting before the minute ends
    bad = np.concatenate([[0], np.cumsum(~meets)])
    return (bad[last + 1] - bad[np.maximum(first, 0)]) == 0


def breaches(t_s: np.ndarray, meets: np.ndarray, day_s: float, hold: int) -> list[Breach]:
    """Every stretch missing the SLO, from its first failing window to the start of the first window
    from which ``hold`` windows in a row (or all left in the day) meet it."""
    out = []
    i, n = 0, len(meets)
    while i < n:
        if meets[i]:
            i += 1
            continue
        start = i
        j = i + 1
        while j < n and not all(meets[j:min(j + hold, n)]):
            j += 1
        if j < n:
            out.append(Breach(float(t_s[start]), float(t_s[j] - t_s[start]), True))
        else:
            out.append(Breach(float(t_s[start]), float(day_s - t_s[start]), False))
        i = j
    return out


def largest_step(windows: pd.DataFrame) -> tuple[float | None, float, float | None]:
    """The largest window-to-window rise of the offered rate: when, how large, and the time from that
    window's start to the start of the first window (it included) meeting the SLO (None: never)."""
    rates = windows["offered_rps"].to_numpy(float)
    starts = windows["t_s"].to_numpy(float)
    meets = windows["meets_slo"].to_numpy(bool)
    if len(rates) < 2:
        return None, 0.0, None
    rise = np.diff(rates)
    k = int(np.argmax(rise)) + 1
    if rise[k - 1] <= 0:
        return None, 0.0, None
    ok = np.flatnonzero(meets[k:])
    return float(starts[k]), float(rise[k - 1]), (float(starts[k + ok[0]] - starts[k]) if len(ok) else None)


def day_metrics(windows: pd.DataFrame, *, day_s: float, price: float | None, recovery_windows: int = 3) -> DayMetrics:
    """The day's numbers from a per-window table (the columns of :data:`WINDOW_COLUMNS`)."""
    missing = [c for c in WINDOW_COLUMNS if c not in windows]
    if missing:
        raise ValueError(f"the window table lacks {missing}")
    t = windows["t_s"].to_numpy(float)
    meets = windows["meets_slo"].to_numpy(bool)
    dur = window_lengths(t, day_s)
    req = windows["requests"].to_numpy(float)
    total = float(req.sum())
    if "within_slo_share" in windows:
        within = float((req * windows["within_slo_share"].to_numpy(float)).sum())
    else:
        within = float(req[meets].sum())
    billed = windows["billed"].to_numpy(float)
    ready = windows["ready"].to_numpy(float)
    replica_hours = float((billed * dur).sum() / 3600.0)
    minutes = minute_verdicts(t, meets, day_s)
    eps = breaches(t, meets, day_s, recovery_windows)
    worst = max(eps, key=lambda b: b.duration_s) if eps else None
    return DayMetrics(
        minutes=len(minutes), minutes_share=float(minutes.mean()), windows_share=float(meets.mean()),
        requests=total, requests_share=within / total if total > 0 else 1.0, drops=float(windows["drops"].sum()),
        replica_hours=replica_hours, cost_usd=None if price is None else replica_hours * price,
        ready_min=int(ready.min()), ready_max=int(ready.max()), ready_mean=float((ready * dur).sum() / dur.sum()),
        breaches=len(eps), recovery_s=None if worst is None else worst.duration_s,
        recovery_from_s=None if worst is None else worst.start_s, recovered=True if worst is None else worst.recovered,
    )
