"""A rich progress bar with ETA for sweeps (the library reports progress through a plain callback)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SweepProgress:
    """Context manager whose instance is the ``progress(done, total, cached)`` callback of run_sweep."""

    def __init__(self, description: str, console: Console | None = None, enabled: bool = True):
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("configurations"),
            TextColumn("{task.fields[cached]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self._task: TaskID | None = None
        self._description = description

    def __enter__(self) -> SweepProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def __call__(self, done: int, total: int, cached: int) -> None:
        note = f"({cached} cached)" if cached else ""
        if self._task is None:
            # cached configurations are excluded from the ETA's rate by starting the task after them
            self._task = self._bar.add_task(self._description, total=total, completed=done, cached=note)
            self._bar.reset(self._task, total=total, completed=done, cached=note)
        else:
            self._bar.update(self._task, completed=done, cached=note)
