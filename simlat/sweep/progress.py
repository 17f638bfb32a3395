"""Sweep progress for the terminal: a rich bar on a terminal, plain lines when piped; the ETA comes
from this sweep's own rate (configurations computed per second since the first one started, cached
ones left out), not from a short moving window.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def eta_s(elapsed_s: float, computed: int, remaining: int) -> float | None:
    """Seconds left at the mean rate so far (None before the first computed configuration)."""
    if computed <= 0:
        return None
    return elapsed_s / computed * remaining


class SweepProgress:
    """Context manager whose instance is the ``progress(done, total, cached)`` callback of run_sweep.

    Piped (not a terminal), it prints one plain line at most every ``line_every_s`` seconds and at the end.
    """

    def __init__(self, description: str, console: Console | None = None, enabled: bool = True, line_every_s: float = 10.0):
        self._console = console or Console(stderr=True)
        self._enabled = enabled
        self._live = enabled and self._console.is_terminal
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("configurations"),
            TextColumn("{task.fields[cached]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=self._console,
            disable=not self._live,
            transient=False,
        )
        self._task: TaskID | None = None
        self._description = description
        self._t0 = None
        self._first = 0
        self._last_line = 0.0
        self._every = line_every_s
        self.done = 0
        self.total = 0

    def __enter__(self) -> SweepProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def text(self, done: int, total: int, cached: int) -> tuple[str, str]:
        """(cached note, ETA) as shown."""
        now = time.perf_counter()
        eta = eta_s(now - self._t0, done - self._first, total - done) if self._t0 is not None else None
        return (f"({cached} cached)" if cached else ""), ("-:--:--" if eta is None else _clock(eta))

    def __call__(self, done: int, total: int, cached: int) -> None:
        if self._t0 is None:  # the first call comes after the cache is read: computing starts now
            self._t0, self._first = time.perf_counter(), done
        self.done, self.total = done, total
        note, eta = self.text(done, total, cached)
        if self._live:
            if self._task is None:
                self._task = self._bar.add_task(self._description, total=total, completed=done, cached=note, eta=eta)
            else:
                self._bar.update(self._task, completed=done, cached=note, eta=eta)
        elif self._enabled:
            now = time.perf_counter()
            if now - self._last_line >= self._every or done == total:
                self._last_line = now
                self._console.print(f"{self._description}: {done}/{total} configurations {note} "
                                    f"{_clock(now - self._t0)} elapsed, ETA {eta}", highlight=False, soft_wrap=True)
