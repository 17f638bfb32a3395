"""Detect a machine too loaded for a timing test: such a test skips with the reason, never fails
or passes by luck.

A shared 2-core machine once made the real-server test predict p50 2,217 ms against 2.55 ms
measured, then pass on rerun. :class:`OtherLoad` measures the CPU time that processes other than
this one and its children used while the test ran (``/proc/stat`` busy time, less our own and our
waited-for children's ``getrusage``), as a fraction of the machine's CPU capacity.
"""

from __future__ import annotations

import os
import resource
import time

import pytest

MAX_OTHER_FRACTION = 0.25
"""Above this share of the machine's CPUs used by other processes, timings are not trusted."""


def _busy_s() -> float | None:
    """Seconds of CPU time all CPUs spent busy (user, nice, system, irq, softirq, steal) since boot."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class OtherLoad:
    """Context manager: ``.fraction`` is the share of the machine's CPU capacity that other processes
    used inside the block (None where ``/proc/stat`` is unavailable)."""

    def __enter__(self) -> OtherLoad:
        self.fraction: float | None = None
        self._b0, self._o0, self._t0 = _busy_s(), _own_s(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        b1 = _busy_s()
        if self._b0 is None or b1 is None:
            return
        wall = max(time.monotonic() - self._t0, 1e-6)
        other = (b1 - self._b0) - (_own_s() - self._o0)
        machine = os.cpu_count() or 1  # /proc/stat counts every CPU of the machine
        self.fraction = max(0.0, other) / (machine * wall)

    def reason(self) -> str | None:
        """Why the block's timings cannot be trusted, or None."""
        if self.fraction is not None and self.fraction > MAX_OTHER_FRACTION:
            return (f"other processes used {self.fraction:.0%} of this machine's CPU during the test "
                    f"(limit {MAX_OTHER_FRACTION:.0%}): timings are not comparable")
        return None


def skip_if_busy(seconds: float = 1.0) -> None:
    """Skip now if other processes are using the machine (measured over ``seconds``)."""
    with OtherLoad() as load:
        time.sleep(seconds)
    if load.reason():
        pytest.skip("machine too busy before the test: " + load.reason())
