"""A progress bar for long simulations, shown on stderr only once a run has taken over a second.

The queues report how many requests they have dispatched, once per chunk of batches (static
queues) or of arrivals (event path), so the cost is nil when nobody watches.
"""

from __future__ import annotations

import sys
import time

DELAY_S = 1.0


class RunProgress:
    """Counts simulated requests out of ``total``; draws a bar after ``DELAY_S`` if enabled."""

    def __init__(self, total: int, enabled: bool):
        self.total = max(1, total)
        self.enabled = enabled and sys.stderr.isatty()
        self.done = 0
        self._start = time.monotonic()
        self._bar = None
        self._task = None

    def advance(self, k: int) -> None:
        """``k`` more requests have been simulated."""
        self.done += k
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._start < DELAY_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("simulating"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                transient=True,
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("simulate", total=self.total)
        self._bar.update(self._task, completed=min(self.done, self.total))

    def close(self) -> None:
        """Remove the bar (if one was drawn)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
