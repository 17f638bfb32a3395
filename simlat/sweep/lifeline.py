"""Worker processes that die with their parent: a killed sweep leaves no process behind.

A local sweep runs its configurations in a process pool whose workers fork from a fork server. If
the sweep is killed (SIGKILL, the OOM killer), nothing tells them: they would wait for work for
ever, holding hundreds of MB. Each of those processes therefore asks the kernel to kill it when its
parent dies (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), or elsewhere watches its parent from a
thread. The chain is: sweep -> fork server -> workers; the resource tracker exits by itself once
no process holds its pipe.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
SWEEP_PID_ENV = "SIMLAT_SWEEP_PID"
"""Set by the sweep to its pid before the fork server starts; the fork server (whose parent it is)
reads it when it imports :mod:`simlat.sweep.forkserver_guard`."""


def die_with_parent() -> None:
    """Make this process exit when its parent does (kernel death signal, or a watching thread)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the signal was armed
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch, args=(parent,), name="simlat-lifeline", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
