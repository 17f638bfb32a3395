"""Calibration profiles: the versioned file format, load/save, and the ``kind: profile`` service model.

A profile holds what ``simlat calibrate`` measured on one machine: per model and variant, the
service-time distribution of a batch at each measured batch size (a quantile table on a fixed
grid of levels, a faithful sketch of the raw samples), back-to-back ("steady") and after an idle
gap ("idle"), plus cold-start costs, output error against fp32 eager, the roofline floor of each
point, the overhead components around the model (serialization, host/device copies) and the
provenance of the measurement.

Schema history (bump ``SCHEMA_VERSION`` and add a line for every change of meaning or shape):

- 1 (2026-11-24): first version. Quantile tables on ``quantile_levels``; steady and idle curves;
  per-process medians; cold start; output error; roofline; overhead components; provenance.

The simulator refuses a profile whose ``schema_version`` it does not know (a newer simlat wrote
it, or it is not a profile), and warns when an experiment names another device than the profile's.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.errors import SimlatError, validate_as

SCHEMA_VERSION = 1
"""The newest profile schema this simlat reads and writes."""

KNOWN_SCHEMA_VERSIONS = frozenset({1})

DENSE_GRID = 2048
"""Intervals of the uniform grid a sampler reads its quantile function from."""

BUFFER = 65536
"""Uniform draws made per refill of a sampler's buffer."""


def default_quantile_levels() -> list[float]:
    """The level grid calibration writes: fine everywhere, finer in the tails (105 levels, 0 and 1 included)."""
    mid = [round(0.01 * i, 2) for i in range(1, 100)]
    return [0.0, 0.001, 0.005, *mid, 0.995, 0.999, 1.0]


class ProfileDeviceWarning(UserWarning):
    """An experiment plans for another device than the profile was measured on."""


# ----------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------


class Dist(StrictModel):
    """The distribution of one measured quantity (ms): quantiles on the profile's level grid.

    ``median_ci_ms`` is the distribution-free 95% confidence interval of the median (order
    statistics); ``process_medians_ms`` holds the median of each separate measuring process, and
    ``process_spread`` their max/min ratio (1.0 with one process).
    """

    n: PositiveInt
    mean_ms: NonNegativeFloat
    quantiles_ms: list[NonNegativeFloat]
    median_ci_ms: tuple[NonNegativeFloat, NonNegativeFloat]
    median_ci_half_width_ms: NonNegativeFloat
    process_medians_ms: list[NonNegativeFloat] = Field(default_factory=list)
    process_spread: float = Field(default=1.0, ge=1.0)
    unstable: bool = False

    @model_validator(mode="after")
    def _monotone(self):
        q = self.quantiles_ms
        if any(b < a for a, b in zip(q, q[1:], strict=False)):
            raise ValueError("quantiles_ms must be non-decreasing")
        return self


class Point(StrictModel):
    """One batch size: its measured distribution, first-call cost and roofline floor."""

    batch_size: PositiveInt
    dist: Dist
    first_call_ms: NonNegativeFloat | None = None
    flops: NonNegativeFloat | None = None
    bytes: NonNegativeFloat | None = None
    roofline_floor_ms: NonNegativeFloat | None = None


class OutputError(StrictModel):
    """A variant's output against the fp32 eager reference on the same inputs."""

    max_abs: NonNegativeFloat
    rel: NonNegativeFloat = Field(description="||out - ref|| / ||ref|| (Frobenius norms)")


class ColdStart(StrictModel):
    """Costs paid once per process, before steady state (ms)."""

    process_ready_ms: NonNegativeFloat | None = Field(default=None, description="process start to model built")
    setup_ms: NonNegativeFloat | None = Field(default=None, description="variant preparation: quantize, trace, export, wrap")
    first_call_ms: NonNegativeFloat | None = Field(default=None, description="first call at the first batch size (compiles)")


class Variant(StrictModel):
    """One way of running a model (precision, compiler, runtime).

    ``fixed_shape``: the variant runs only the recorded shapes (compiled per shape, CUDA graphs):
    a batch is padded up to the next measured batch size. ``steady`` and ``idle`` are curves of
    points sorted by batch size; ``idle`` may cover fewer batch sizes.
    """

    name: str
    status: Literal["ok", "skipped"]
    reason: str | None = None
    description: str = ""
    fixed_shape: bool = False
    threads: PositiveInt | None = None
    timer: str | None = None
    processes: int = Field(default=0, ge=0)
    cold_start: ColdStart | None = None
    error: OutputError | None = None
    steady: list[Point] = Field(default_factory=list)
    idle: list[Point] = Field(default_factory=list)
    idle_gap_ms: NonNegativeFloat | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self):
        if self.status == "skipped" and not self.reason:
            raise ValueError(f"variant {self.name!r} is skipped but gives no reason")
        if self.status == "ok" and not self.steady:
            raise ValueError(f"variant {self.name!r} is ok but has no steady points")
        for curve in ("steady", "idle"):
            sizes = [p.batch_size for p in getattr(self, curve)]
            if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
                raise ValueError(f"variant {self.name!r}: {curve} batch sizes must be strictly increasing, got {sizes}")
        return self


class Component(StrictModel):
    """An overhead around the model, measured on its own (serialization, host/device copy)."""

    name: str
    description: str = ""
    points: list[Point] = Field(min_length=1)


class ModelProfile(StrictModel):
    """One model: what it is, its variants and the overhead components for its input size."""

    name: str
    description: str = ""
    inputs: list[str] = Field(default_factory=list, description="per-item input shapes and dtypes")
    input_bytes_per_item: NonNegativeFloat | None = None
    output_bytes_per_item: NonNegativeFloat | None = None
    flops_per_item: NonNegativeFloat | None = None
    variants: list[Variant]
    components: list[Component] = Field(default_factory=list)


class Peaks(StrictModel):
    """The device's measured ceilings, used for the roofline floors."""

    matmul_flops_per_s: dict[str, NonNegativeFloat] = Field(description="per dtype: fp32, tf32, bf16 ...")
    copy_bytes_per_s: NonNegativeFloat = Field(description="large copy, bytes read plus bytes written")
    method: str = ""


class Provenance(StrictModel):
    """Where and how the measurements were taken."""

    device: Literal["cpu", "cuda"]
    device_name: str
    driver: str | None = None
    cuda: str | None = None
    torch: str | None = None
    onnxruntime: str | None = None
    torchao: str | None = None
    python: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    threads: int | None = None
    hostname: str | None = None
    date: str
    simlat_version: str
    command: str
    budget: str | None = None
    shared_machine: bool = False
    notes: list[str] = Field(default_factory=list)
    elapsed_s: NonNegativeFloat | None = None


class Profile(StrictModel):
    """A calibration profile file (see the module docstring for the schema history)."""

    schema_version: int
    provenance: Provenance
    quantile_levels: list[float]
    peaks: Peaks | None = None
    models: list[ModelProfile]

    @model_validator(mode="after")
    def _grid(self):
        lv = self.quantile_levels
        if len(lv) < 2 or lv[0] != 0.0 or lv[-1] != 1.0 or any(b <= a for a, b in zip(lv, lv[1:], strict=False)):
            raise ValueError("quantile_levels must increase strictly from 0.0 to 1.0")
        for m in self.models:
            curves = [(f"variant {v.name}", p) for v in m.variants for p in (*v.steady, *v.idle)]
            curves += [(f"component {c.name}", p) for c in m.components for p in c.points]
            for where, p in curves:
                if len(p.dist.quantiles_ms) != len(lv):
                    raise ValueError(
                        f"model {m.name}, {where}, batch {p.batch_size}: {len(p.dist.quantiles_ms)} quantiles,"
                        f" expected {len(lv)} (one per quantile level)"
                    )
        return self

    def model(self, name: str) -> ModelProfile:
        """The model called ``name``, or a SimlatError listing the models the profile has."""
        for m in self.models:
            if m.name == name:
                return m
        raise SimlatError(f"model {name!r} is not in the profile; it has: {', '.join(x.name for x in self.models)}")


# ----------------------------------------------------------------------------------------------
# Load / save
# ----------------------------------------------------------------------------------------------


def parse_profile(data: object, source: str = "profile") -> Profile:
    """Validate a parsed profile, refusing unknown schema versions first with a clear message."""
    if not isinstance(data, dict):
        raise SimlatError(f"{source}: not a calibration profile (the top level must be a JSON object)")
    version = data.get("schema_version")
    if version is None:
        raise SimlatError(f"{source}: schema_version is missing; not a simlat calibration profile")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SimlatError(f"{source}: schema_version {version!r} is invalid: it must be an integer")
    if version > SCHEMA_VERSION:
        raise SimlatError(
            f"{source}: schema_version {version} is newer than this simlat reads (it reads up to"
            f" {SCHEMA_VERSION}); upgrade simlat or recalibrate with this version"
        )
    if version not in KNOWN_SCHEMA_VERSIONS:
        raise SimlatError(
            f"{source}: schema_version {version} is unknown (known: {sorted(KNOWN_SCHEMA_VERSIONS)})"
        )
    return validate_as(Profile, data, f"{source} is not a valid profile:")


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file."""
    p = Path(path)
    if not p.is_file():
        raise SimlatError(f"{p}: no such profile file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SimlatError(f"{p}: not a UTF-8 JSON profile file") from None
    except OSError as err:
        raise SimlatError(f"{p}: cannot be read: {err.strerror or err}") from None
    except RecursionError:
        raise SimlatError(f"{p}: invalid JSON: nested too deeply") from None
    except json.JSONDecodeError as err:
        raise SimlatError(f"{p}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    return parse_profile(data, source=str(p))


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Write ``profile`` as indented JSON (creating the folder)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(profile.model_dump_json(indent=1) + "\n")
    return p


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> Profile:
    return load_profile(path)


def resolve_profile_path(path: str | Path) -> Path:
    """An absolute path as given; a relative one against the working directory, then the project root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    root = Path(__file__).resolve().parents[1]
    cand = root / p
    return cand if cand.exists() else p


# ----------------------------------------------------------------------------------------------
# Device check
# ----------------------------------------------------------------------------------------------


def _tokens(name: str) -> set[str]:
    return {t for t in "".join(c.lower() if c.isalnum() else " " for c in name).split() if t not in {"nvidia"}}


def device_mismatch(profile: Profile, device: str | None) -> str | None:
    """A message when ``device`` (an experiment's) does not name the profile's device, else None.

    Matching is by words: "h100" matches "NVIDIA H100 80GB HBM3"; "cpu" matches any CPU profile.
    """
    if not device:
        return None
    prov = profile.provenance
    want = _tokens(device)
    have = _tokens(prov.device_name) | {prov.device}
    if want and want <= have:
        return None
    return f"device differs: experiment={device!r}, profile={prov.device_name!r} ({prov.device})"


# ----------------------------------------------------------------------------------------------
# Sampling: interpolated quantile functions
# ----------------------------------------------------------------------------------------------


class Curve:
    """Quantile functions measured at increasing batch sizes, resampled on a uniform level grid.

    The quantile function at ``items`` between two measured sizes is the linear interpolation of
    their quantile functions (so the shape of the distribution moves smoothly; a mixture would be
    bimodal). ``fixed_shape``: items are padded up to the next measured size instead. Below the
    smallest measured size the smallest one is used (a batch never runs faster than padded);
    above the largest, :class:`SimlatError`: no silent extrapolation.
    """

    def __init__(self, sizes: list[int], levels: list[float], quantiles: list[list[float]], *, fixed_shape: bool, label: str):
        if not sizes:
            raise SimlatError(f"{label}: no measured batch sizes")
        self.sizes = np.asarray(sizes, dtype=np.float64)
        grid = np.linspace(0.0, 1.0, DENSE_GRID + 1)
        self.tables = np.vstack([np.interp(grid, levels, q) for q in quantiles])
        # mean of the piecewise-linear quantile function on the dense grid (what the sampler draws)
        t = self.tables
        self.means = (t[:, :-1] + t[:, 1:]).sum(axis=1) / (2 * DENSE_GRID)
        self.fixed_shape = fixed_shape
        self.label = label
        self.max_items = int(sizes[-1])

    def _locate(self, items: float) -> tuple[int, int, float]:
        """Rows and weight of the upper row: quantile function = (1-w) row_lo + w row_hi."""
        if not items >= 1 or (isinstance(items, float) and math.isnan(items)):
            raise SimlatError(f"{self.label}: batch of {items!r} items is invalid: it must be >= 1")
        if items > self.max_items:
            raise SimlatError(
                f"{self.label}: batch of {items:g} items exceeds the largest measured batch size"
                f" ({self.max_items}); recalibrate with larger --batch-sizes or cap max_batch_size"
            )
        s = self.sizes
        hi = int(np.searchsorted(s, items, side="left"))
        if s[hi] == items or hi == 0 or self.fixed_shape:
            return hi, hi, 0.0
        lo = hi - 1
        return lo, hi, float((items - s[lo]) / (s[hi] - s[lo]))

    def table(self, items: float) -> np.ndarray:
        """The quantile function at ``items`` on the dense uniform grid."""
        lo, hi, w = self._locate(items)
        if w == 0.0:
            return self.tables[hi]
        return (1.0 - w) * self.tables[lo] + w * self.tables[hi]

    def mean(self, items: float) -> float:
        """Mean of the distribution at ``items`` (quantile functions mix linearly, so do means)."""
        lo, hi, w = self._locate(items)
        return float((1.0 - w) * self.means[lo] + w * self.means[hi])

    def quantile(self, items: float, q: float) -> float:
        """The ``q`` quantile at ``items``."""
        t = self.table(items)
        return float(np.interp(q, np.linspace(0.0, 1.0, DENSE_GRID + 1), t))


def curve_from_points(points: list[Point], levels: list[float], *, fixed_shape: bool, label: str) -> Curve:
    """A :class:`Curve` over a list of profile points."""
    return Curve(
        [p.batch_size for p in points],
        levels,
        [p.dist.quantiles_ms for p in points],
        fixed_shape=fixed_shape,
        label=label,
    )


def _curve_sampler(curve: Curve, rng: np.random.Generator) -> Callable[[int], float]:
    """Draws from one curve: a buffered uniform, read off the cached table at ``items``."""
    n = DENSE_GRID
    cache: dict[int, list[float]] = {}
    buf: list[float] = []
    pos = BUFFER

    def draw(items: int) -> float:
        nonlocal buf, pos
        t = cache.get(items)
        if t is None:
            t = curve.table(items).tolist()
            t.append(t[-1])  # guard for x == n exactly
            cache[items] = t
        if pos >= BUFFER:
            buf = (rng.random(BUFFER) * n).tolist()
            pos = 0
        x = buf[pos]
        pos += 1
        k = int(x)
        a = t[k]
        return a + (x - k) * (t[k + 1] - a)

    return draw


def make_sampler(curves: list[Curve], rng: np.random.Generator) -> Callable[[int], float]:
    """A fast ``items -> ms`` sampler: the sum of one independent draw from each curve.

    Uniform draws come from ``rng`` ``BUFFER`` at a time (one stream per curve, spawned from
    ``rng``); each curve's table at a given items count is computed once and cached as a list.
    """
    if len(curves) == 1:
        return _curve_sampler(curves[0], rng)
    draws = [_curve_sampler(c, r) for c, r in zip(curves, rng.spawn(len(curves)), strict=True)]
    if len(draws) == 2:
        d0, d1 = draws
        return lambda items: d0(items) + d1(items)

    def total(items: int) -> float:
        t = 0.0
        for d in draws:
            t += d(items)
        return t

    return total


def select_curves(profile: Profile, model: str, variant: str, condition: str, components: list[str], source: str) -> list[Curve]:
    """The curves one ProfileService draws from: the variant's condition curve, then each component."""
    if model not in {x.name for x in profile.models}:
        raise SimlatError(
            f"service.model: {model!r} is not in {source}; it has: {', '.join(x.name for x in profile.models)}"
        )
    m = profile.model(model)
    by_name = {v.name: v for v in m.variants}
    if variant not in by_name:
        ok = [v.name for v in m.variants if v.status == "ok"]
        raise SimlatError(f"service.variant: {variant!r} is not in {source} for model {model!r}; measured variants: {', '.join(ok)}")
    v = by_name[variant]
    if v.status != "ok":
        raise SimlatError(f"service.variant: {variant!r} of model {model!r} was skipped in {source}: {v.reason}")
    points = v.steady if condition == "steady" else v.idle
    if not points:
        raise SimlatError(f"service.condition: {condition!r} was not measured for {model}/{variant} in {source}")
    label = f"profile {source} {model}/{variant} ({condition})"
    curves = [curve_from_points(points, profile.quantile_levels, fixed_shape=v.fixed_shape, label=label)]
    comps = {c.name: c for c in m.components}
    for name in components:
        if name not in comps:
            raise SimlatError(
                f"service.add_components: {name!r} was not measured for model {model!r} in {source};"
                f" measured components: {', '.join(comps) or '(none)'}"
            )
        curves.append(curve_from_points(comps[name].points, profile.quantile_levels, fixed_shape=False, label=f"{label} + {name}"))
    return curves


def warn_device_mismatch(cfg, device: str | None, source: str = "experiment") -> None:
    """Warn (:class:`ProfileDeviceWarning`) when ``device`` is not the device of ``cfg``'s profile.

    Called when an experiment is loaded; a profile that cannot be read is left to the engine's error.
    """
    path = resolve_profile_path(cfg.path)
    if not path.is_file():
        return
    try:
        profile = _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
    except SimlatError:
        return
    msg = device_mismatch(profile, device)
    if msg:
        warnings.warn(f"{source}: service profile {path.name}: {msg}", ProfileDeviceWarning, stacklevel=3)


def profile_curves(cfg, *, device: str | None = None) -> list[Curve]:
    """The measured curves a ``kind: profile`` service config draws from (model, then components).

    ``cfg`` is a :class:`simlat.config.service.ProfileService`. ``device`` (the experiment's) is
    checked against the profile's device: a mismatch warns (:class:`ProfileDeviceWarning`).
    The engine turns the curves into its service model (:mod:`simlat.engine.service`).
    """
    path = resolve_profile_path(cfg.path)
    if not path.is_file():
        raise SimlatError(f"service.path: {str(cfg.path)!r} is not a profile file (looked in the working directory and the project root)")
    profile = _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
    msg = device_mismatch(profile, device)
    if msg:
        warnings.warn(f"{path.name}: {msg}", ProfileDeviceWarning, stacklevel=3)
    components = list(getattr(cfg, "add_components", []) or [])
    return select_curves(profile, cfg.model, cfg.variant, cfg.condition, components, path.name)
