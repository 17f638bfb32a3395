"""Where to measure a curve: coarse batch sizes first, then bisection where interpolation misses.

The simulator reads a batch size between two measured ones as the linear interpolation (in items)
of their quantile functions (:class:`simlat.profiles.sampling.Curve`). The ``adaptive`` budget
measures a coarse subset of the batch-size grid first (every ``step``-th size, plus the largest),
then, between two measured neighbours with grid sizes left between them, the middle grid size (in
log2). If the simulator's interpolation between the neighbours misses that size's measured median
by more than ``tolerance``, both halves are bisected again; otherwise both halves are left to
interpolation. Sizes never measured between two measured ones are recorded in the profile as
interpolated.

Pure Python: the worker imports it, so it stays free of the simulator's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def coarse(grid: list[int], step: int) -> list[int]:
    """Every ``step``-th size of ``grid`` and the largest (``[1, 16, 256, 4096]`` from the powers of two to 4096, step 4)."""
    out = list(grid[::max(step, 1)])
    if grid and grid[-1] not in out:
        out.append(grid[-1])
    return out


def interpolate(a: int, ya: float, b: int, yb: float, x: int) -> float:
    """Linear interpolation in items between (a, ya) and (b, yb), as the simulator does."""
    return ya + (yb - ya) * (x - a) / (b - a)


@dataclass
class Refiner:
    """The measuring order of one curve: :meth:`next_size` after each :meth:`record`.

    ``grid``: the candidate batch sizes (increasing); ``step``: the coarse stride; ``tolerance``:
    the largest relative error of interpolation at a checked midpoint that is left unrefined.
    ``checks`` keeps (size, predicted, measured) of every midpoint checked.
    """

    grid: list[int]
    step: int = 4
    tolerance: float = 0.05
    measured: dict[int, float] = field(default_factory=dict)
    checks: list[tuple[int, float, float]] = field(default_factory=list)
    _todo: list[int] = field(default_factory=list)
    _open: list[tuple[float, int, int]] = field(default_factory=list)  # (priority, lo, hi): intervals to check

    def __post_init__(self) -> None:
        if any(b <= a for a, b in zip(self.grid, self.grid[1:], strict=False)) or not self.grid:
            raise ValueError(f"grid must increase strictly and not be empty, got {self.grid}")
        first = coarse(self.grid, self.step)
        self._todo = [first[0], first[-1], *first[1:-1]] if len(first) > 1 else first  # the ends first: a cut-short curve still spans the grid

    def _between(self, lo: int, hi: int) -> list[int]:
        return [b for b in self.grid if lo < b < hi]

    def _middle(self, lo: int, hi: int) -> int:
        inside = self._between(lo, hi)
        return inside[(len(inside) - 1) // 2] if len(inside) % 2 else inside[len(inside) // 2]

    def _open_interval(self, lo: int, hi: int, priority: float) -> None:
        if self._between(lo, hi):
            self._open.append((priority, lo, hi))

    def next_size(self) -> int | None:
        """The next batch size to measure, or None when the curve is within tolerance everywhere."""
        if self._todo:
            return self._todo[0]
        if not self._open:
            return None
        self._open.sort(key=lambda t: (-t[0], t[1]))
        _, lo, hi = self._open[0]
        return self._middle(lo, hi)

    def record(self, size: int, median_ms: float) -> None:
        """Record the measured median at ``size`` (the size :meth:`next_size` gave)."""
        self.measured[size] = median_ms
        if self._todo:
            self._todo.remove(size)
            if not self._todo:  # the coarse pass is done: every gap between its sizes is to be checked
                done = sorted(self.measured)
                for lo, hi in zip(done, done[1:], strict=False):
                    self._open_interval(lo, hi, float(len(self._between(lo, hi))))
            return
        for k, (_, lo, hi) in enumerate(self._open):
            if lo < size < hi:
                del self._open[k]
                break
        else:
            return
        pred = interpolate(lo, self.measured[lo], hi, self.measured[hi], size)
        self.checks.append((size, pred, median_ms))
        err = abs(pred - median_ms) / max(median_ms, 1e-12)
        if err > self.tolerance:
            self._open_interval(lo, size, err)
            self._open_interval(size, hi, err)

    def unmeasured(self) -> list[int]:
        """Grid sizes not measured."""
        return [b for b in self.grid if b not in self.measured]

    def interpolated(self) -> list[int]:
        """Grid sizes not measured between two measured ones (the simulator interpolates them)."""
        if not self.measured:
            return []
        lo, hi = min(self.measured), max(self.measured)
        return [b for b in self.unmeasured() if lo < b < hi]

    def expected_left(self) -> int:
        """A guess of the sizes still to measure (for pacing): the coarse ones left, two per open gap."""
        return max(min(len(self._todo) + 2 * len(self._open), len(self.unmeasured())), 1)

    def complete(self) -> bool:
        """Whether the refinement ran to its end (every gap checked or within tolerance)."""
        return self.next_size() is None

    def summary(self) -> dict:
        """What a profile records: the grid, the tolerance, the checked midpoints and what is interpolated."""
        return {
            "grid": list(self.grid),
            "tolerance": self.tolerance,
            "interpolated": self.interpolated(),
            "unmeasured": self.unmeasured(),
            "checks": [[b, round(p, 6), round(m, 6)] for b, p, m in self.checks],
            "complete": self.complete(),
        }
