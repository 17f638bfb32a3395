"""The service profile: the versioned file format ``simlat calibrate`` writes, and its load/save.

A profile holds what ``simlat calibrate`` measured on one machine: per model and variant, the
service-time distribution of a batch at each measured batch size (a quantile table on a fixed
grid of levels, a faithful sketch of the raw samples), back-to-back ("steady") and after an idle
gap ("idle"), plus cold-start costs, output error against fp32 eager, the roofline floor of each
point, the overhead components around the model (serialization, host/device copies) and the
provenance of the measurement.

Schema history (bump ``SCHEMA_VERSION`` and add a line for every change of meaning or shape):

- 1 (2026-11-24): first version. Quantile tables on ``quantile_levels``; steady and idle curves;
  per-process medians; cold start; output error; roofline; overhead components; provenance.
  2026-12-05, same version: optional ``provenance.projection`` (absent in measured profiles, so
  every version-1 file still loads): set by ``simlat profile project`` on a profile derived for
  another device (:mod:`simlat.profiles.project`).
  2026-12-05, same version: optional ``Variant.refinement`` (absent: every batch size of the
  variant's grid was measured): set by ``--budget adaptive``, it lists the grid sizes left to
  interpolation and the midpoints checked against it (:mod:`simlat.calibrate.adaptive`).

The simulator refuses a profile whose ``schema_version`` it does not know (a newer simlat wrote
it, or it is not a profile). Service profiles carry no ``kind`` tag: the registry
(:mod:`simlat.profiles.resolve`) recognises them by their ``schema_version``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from simlat.config.base import StrictModel
from simlat.errors import SimlatError, validate_as
from simlat.profiles.levels import SCHEMA_VERSION, default_quantile_levels  # noqa: F401 (re-exported)
from simlat.profiles.resolve import ProfileKind, register
from simlat.profiles.resolve import load as _load

KNOWN_SCHEMA_VERSIONS = frozenset({1})




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


class ReplicaStart(StrictModel):
    """A real serving replica's start, measured from outside (``simlat validate --cold-start``): process
    start to its first correct answer, then its first requests against the same server's steady state."""

    server: str = Field(description="the server started, e.g. triton")
    max_batch: PositiveInt
    ready_s: list[NonNegativeFloat] = Field(min_length=1, description="process start to first answer, per start in order (the first with cold caches)")
    first_request_ms: list[NonNegativeFloat] = Field(default_factory=list, description="latency of the first request after the first answer, per start")
    first_requests: PositiveInt = Field(description="requests measured after the first answer, per start")
    rate_rps: PositiveFloat
    first_p50_ms: NonNegativeFloat
    first_p99_ms: NonNegativeFloat
    steady_p50_ms: NonNegativeFloat
    steady_p99_ms: NonNegativeFloat
    slow_requests: NonNegativeInt = Field(description="most first requests, over the starts, slower than 2x the steady p99")
    measured: str = Field(default="", description="where and when (host, date)")


class ColdStart(StrictModel):
    """Costs paid once per process, before steady state (ms), and, where measured, a real replica's start."""

    process_ready_ms: NonNegativeFloat | None = Field(default=None, description="process start to model built")
    setup_ms: NonNegativeFloat | None = Field(default=None, description="variant preparation: quantize, trace, export, wrap")
    first_call_ms: NonNegativeFloat | None = Field(default=None, description="first call at the first batch size (compiles)")
    replica: ReplicaStart | None = Field(default=None, description="a serving replica's start measured from outside")


class Refinement(StrictModel):
    """How an adaptive calibration chose a variant's batch sizes (:mod:`simlat.calibrate.adaptive`).

    ``steady`` holds the measured sizes only; the ``interpolated`` sizes of the ``grid`` were not
    measured: the simulator reads them, like any size between two points, as the linear
    interpolation of their measured neighbours. ``checks``: (batch size, interpolated median,
    measured median) at each midpoint checked; ``complete``: every gap was checked within
    ``tolerance`` or bisected down to the grid (False: the time budget cut the refinement short).
    """

    grid: list[PositiveInt]
    tolerance: NonNegativeFloat
    interpolated: list[PositiveInt] = Field(default_factory=list)
    checks: list[tuple[PositiveInt, NonNegativeFloat, NonNegativeFloat]] = Field(default_factory=list)
    complete: bool = True


class Variant(StrictModel):
    """One way of running a model (precision, compiler, runtime).

    ``fixed_shape``: the variant runs only the recorded shapes (compiled per shape, CUDA graphs):
    a batch is padded up to the next measured batch size. ``steady`` and ``idle`` are curves of
    points sorted by batch size; ``idle`` may cover fewer batch sizes. ``refinement``: set when
    the batch sizes were chosen adaptively (which sizes were interpolated, not measured).
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
    refinement: Refinement | None = None

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


class Projection(StrictModel):
    """How a projected profile was derived (``simlat profile project``): it was not measured.

    ``uncertainty_sd_log`` is the sd of log of the projected medians' error that the projection adds
    to each point's process spread (see :mod:`simlat.profiles.project`)."""

    projected: Literal[True] = True
    source: str
    source_device: str
    source_spec: dict[str, Any]
    target: dict[str, Any]
    method: str
    host_ratio: float = Field(gt=0)
    uncertainty_sd_log: NonNegativeFloat


class Provenance(StrictModel):
    """Where and how the measurements were taken (``projection``: set only on a projected profile)."""

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
    projection: Projection | None = None


class ServiceProfile(StrictModel):
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


def parse_profile(data: object, source: str = "profile") -> ServiceProfile:
    """Validate a parsed service profile, refusing unknown schema versions first with a clear message."""
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
    return validate_as(ServiceProfile, data, f"{source} is not a valid profile:")


def _is_untagged_service(data: dict[str, Any]) -> bool:
    return "schema_version" in data and not {"kind", "format", "schema"} & data.keys()


SERVICE = register(ProfileKind("service", frozenset(), parse_profile, legacy=_is_untagged_service))


def load_profile(path: str | Path, *, base_dir: str | Path | None = None, field: str = "path") -> ServiceProfile:
    """Read and validate a service profile file (cached per file and modification time)."""
    profile = _load(path, SERVICE.name, base_dir=base_dir, field=field)
    assert isinstance(profile, ServiceProfile)
    return profile


def save_profile(profile: ServiceProfile, path: str | Path) -> Path:
    """Write ``profile`` as indented JSON (creating the folder)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(profile.model_dump_json(indent=1) + "\n")
    return p
