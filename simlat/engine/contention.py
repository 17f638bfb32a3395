"""Slowdown of a batch from what else runs on its GPU, read from a contention profile.

A batch of model ``m`` with ``b`` items that runs alone takes its service time ``S`` (drawn from the
service model). While ``k`` batches run on its GPU, it progresses at rate ``1 / s`` with
``s = slowdown(m, b | the k running batches)``; :mod:`simlat.engine.shared_gpu` applies this exactly
(piecewise-constant rates between the starts and ends of batches on the device).

``s`` comes from the profile (:mod:`simlat.profiles.contention`), in this order:

1. ``k = 1``: ``s = 1`` exactly (a batch alone runs at its measured speed).
2. **Measured combination**: the profile has measurements of exactly these members (the same
   multiset of model and variant): the member's measured slowdown (the mean over members of its
   model in that measurement), interpolated linearly in ``x`` = the mean of log batch sizes over
   the members, between the measurements nearest in ``x`` (held flat beyond the measured ends).
3. **One model, a number of instances not measured**: linear in ``k`` between the nearest measured
   ``k`` below and above (``k = 1`` counts, with ``s = 1``), or beyond the largest through the two
   largest, each interpolated in ``x`` as above. A warning says so.
4. **Otherwise, additive pairs** (an approximation, warned): ``s = 1 + sum over the other running
   batches o of (s_pair(m, o) - 1)``, where ``s_pair`` is the slowdown of ``m`` measured beside one
   ``o`` (k = 2). A pair that the profile lacks is an error before the run starts
   (:meth:`SlowdownModel.check`).

Interpolating in the mean log batch size reduces a pair's two batch sizes to one number: measured
combinations with mixed sizes are matched by their average size only.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from simlat.errors import SimlatError
from simlat.profiles.contention import ContentionProfile

Key = tuple[str, str]
"""A model on the device: (model, variant)."""


def _curve(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, s) as a sorted curve, equal x averaged."""
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, s in points:
        by_x[x].append(s)
    xs = sorted(by_x)
    return np.array(xs), np.array([float(np.mean(by_x[x])) for x in xs])


class SlowdownModel:
    """``slowdowns(running)``: every running batch's slowdown (module docstring), memoised."""

    def __init__(self, profile: ContentionProfile, mode: str, source: str = "fleet.contention"):
        measured = [m for m in profile.measurements if m.mode == mode]
        if not measured:
            have = ", ".join(profile.modes()) or "none"
            raise SimlatError(f"{source}.mode: {mode!r} has no measurements in the contention profile "
                              f"(measured modes: {have})")
        self.mode = mode
        # combination (sorted keys) -> focal key -> [(x, slowdown)]
        pts: dict[tuple[Key, ...], dict[Key, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
        for m in measured:
            keys = [(mb.model, mb.variant) for mb in m.members]
            x = float(np.mean([math.log(mb.batch_size) for mb in m.members]))
            per_key: dict[Key, list[float]] = defaultdict(list)
            for key, s in zip(keys, m.slowdown, strict=True):
                per_key[key].append(s if m.k > 1 else 1.0)
            combo = tuple(sorted(keys))
            for key, ss in per_key.items():
                pts[combo][key].append((x, float(np.mean(ss))))
        self._curves = {c: {k: _curve(p) for k, p in d.items()} for c, d in pts.items()}
        self._memo: dict[tuple, float] = {}
        self.warnings: set[str] = set()

    # -- lookups -------------------------------------------------------------------------------
    def _measured(self, combo: tuple[Key, ...], focal: Key, x: float) -> float | None:
        curves = self._curves.get(combo)
        if curves is None or focal not in curves:
            return None
        xs, ss = curves[focal]
        return float(np.interp(x, xs, ss))

    def _homogeneous(self, focal: Key, k: int, x: float) -> float | None:
        """Linear in k through the two largest measured k of ``focal`` alone (k = 1: s = 1)."""
        ks = {1: 1.0}
        for combo in self._curves:
            if all(c == focal for c in combo) and len(combo) > 1:
                s = self._measured(combo, focal, x)
                if s is not None:
                    ks[len(combo)] = s
        if len(ks) < 2:
            return None
        measured = sorted(ks)
        if k < measured[-1]:  # between two measured counts (k = 1 among them): interpolate
            k2 = next(m for m in measured if m > k)
            k1 = max(m for m in measured if m < k)
            how = "interpolated"
        else:
            k1, k2 = measured[-2:]
            how = "extrapolated"
        s = ks[k2] + (k - k2) * (ks[k2] - ks[k1]) / (k2 - k1)
        self.warnings.add(
            f"contention: {k} instances of {focal[0]}/{focal[1]} on one GPU, measured at {measured}: "
            f"slowdown {how} linearly in the number of instances")
        return max(s, 1.0)

    def _pair(self, focal: Key, other: Key, x: float) -> float:
        s = self._measured(tuple(sorted((focal, other))), focal, x)
        if s is None and focal == other:  # a model beside itself measured at other counts only
            s = self._homogeneous(focal, 2, x)
        if s is None:
            raise SimlatError(self._missing(focal, other))
        return s

    def _missing(self, focal: Key, other: Key) -> str:
        return (f"fleet.contention: the profile has no {self.mode!r} measurement of {focal[0]}/{focal[1]} beside "
                f"{other[0]}/{other[1]} (k = 2), which the additive pair model needs for this placement")

    def slowdown(self, focal: tuple[Key, int], others: tuple[tuple[Key, int], ...]) -> float:
        """The slowdown of batch ``focal`` = (key, items) while ``others`` (sorted) run beside it."""
        memo_key = (focal, others)
        s = self._memo.get(memo_key)
        if s is not None:
            return s
        if not others:
            s = 1.0
        else:
            members = (focal, *others)
            x = float(np.mean([math.log(max(b, 1)) for _, b in members]))
            key = focal[0]
            combo = tuple(sorted(k for k, _ in members))
            s = self._measured(combo, key, x)
            if s is None and all(k == key for k in combo):
                s = self._homogeneous(key, len(combo), x)
            if s is None:
                self.warnings.add(
                    "contention: slowdown of a combination the profile did not measure approximated as "
                    "1 + the sum of its pairs' excess slowdowns (additive pair model)")
                s = 1.0
                for k, b in others:
                    xb = (math.log(max(focal[1], 1)) + math.log(max(b, 1))) / 2
                    s += self._pair(key, k, xb) - 1.0
        self._memo[memo_key] = s
        return s

    def check(self, devices: list[list[Key]]) -> None:
        """Refuse, before the run, a device whose mix needs a measurement the profile lacks
        (``devices``: the models of each device's instances): a model beside itself needs some
        measurement of it with k >= 2, two different models their pair (k = 2)."""
        for keys in devices:
            for a in sorted(set(keys)):
                if keys.count(a) > 1 and not any(
                    len(combo) > 1 and all(c == a for c in combo) for combo in self._curves
                ):
                    raise SimlatError(
                        f"fleet.contention: the profile has no {self.mode!r} measurement of {a[0]}/{a[1]} "
                        f"running beside itself (k >= 2)")
                for b in sorted(set(keys)):
                    if a != b and self._measured(tuple(sorted((a, b))), a, 0.0) is None:
                        raise SimlatError(self._missing(a, b))
