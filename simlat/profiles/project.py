"""Projecting a measured service profile onto a device it was not measured on.

Each point's measured time is split in two, from the variant's own steady curve:

    time(b) = host + k * roofline(b)        roofline(b) = max(flops(b) / peak, bytes(b) / bandwidth)

``host`` (ms) is the part the device's roofline cannot explain: Python, the framework's dispatch,
kernel launches and thread wake-ups, which scale with the host CPU, not the accelerator. ``k`` is the
inverse of the efficiency the source device reached against its measured peaks. Both are fitted per
variant by non-negative least squares on relative error over the measured batch sizes. At each point
the device part is ``d = min(k * roofline_source(b), time(b))`` and the host part the rest, so that
the two add up to the measured median exactly; the projected median is

    host_part / host_speed_ratio + d * roofline_target(b) / roofline_source(b)

with the target's peaks = the source's measured peaks x (target / source) in the device table
(:mod:`simlat.profiles.devices`) and the efficiency ``k`` assumed the same on the target. Points of
the ``idle`` curve keep the steady curve's device part at their batch size and treat the rest (the
wake-up) as host time. Overhead components: serialization scales with the host, host/device copies
with the host link.

CPU targets differ in three ways (each measured in the CPU -> CPU check, docs/calibration.md):

- the floor is the compute floor only (``flops / peak``): these models' weights stay in the CPU's
  caches, so DRAM bandwidth does not bound them;
- the device part is capped by the target's cores: the source reached ``c = t_src x floor / device``
  cores' worth of its all-thread peak, the target keeps that parallelism up to its own ``t_tgt``
  cores at its per-core rate (:func:`cpu_thread_factor`): 16 threads that a small model keeps 20%
  busy do not make a 2-core machine 8x slower;
- with a probe of the target (``simlat profile probe``: ``--probe FILE``) the target's rates are
  absolute measurements, and the host ratio is measured: the probe runs the serialization
  components ``simlat calibrate`` records, with the same code, so source / target time of those
  components is the target's single-thread speed relative to the source's
  (:func:`host_ratio_from_components`), or with ``--source-probe`` the two probes' components.

GPU targets: a probe (``simlat profile probe --device cuda``) gives the target's peaks as calibration
measures them; with a probe of the source machine too, the host part scales by the geometric mean of
the two probes' host timings (:func:`host_ratio_for`). Serialization components scale only the
serialization overheads on a GPU: in the H100 -> H200 check they did not track the launch path.

Source medians that are spikes (over twice what their neighbours allow: another job or a
descheduled thread during that batch size) are projected from their neighbours' level (:func:`despike`), and said so in
the variant's notes.

The whole quantile function of a point is scaled by the ratio of the projected to the measured
median: the shape (the spread around the median) is the measured one. The projection's own error is
an uncertainty of that level, not more noise per batch, so it goes where simlat's prediction interval
reads a profile's level uncertainty: each point's ``process_medians_ms`` becomes two values whose sd
of log is ``sqrt(sd_source^2 + sd_projection^2)`` (:func:`simlat.uncertainty.profile_process_sd`),
and ``median_ci_ms`` widens to ``exp(+-1.96 sd)``. ``sd_projection`` defaults to
:data:`DEFAULT_SD_LOG` (0 onto the source's own device) and is recorded in the provenance.

What a projection is worth: the CPU -> CPU check and the H100 -> H200 check (docs/calibration.md,
"Projected profiles") measured its errors against real profiles: H100 -> H200 from the datasheets a
median 14%, worst +122%, 95% of the measured medians inside the 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from simlat.errors import SimlatError
from simlat.profiles.devices import GPU_HOST_TIMINGS, DeviceSpec, source_device
from simlat.profiles.schema import Dist, ModelProfile, Point, Projection, ServiceProfile, Variant

DEFAULT_SD_LOG = {"cuda": 0.35, "cpu": 1.0}
"""sd of log of a projected median's error, per target kind, used unless given.

cpu: 1.0, about the RMS log error of the CPU -> CPU check with a probe of the target (16-core Xeon ->
2-core CI VM, 176 points: 0.97; docs/calibration.md; in-sample: chosen from that check). cuda: 0.35
(about x1.4 at one sd), assumed before any GPU check; the H100 -> H200 check then measured an RMS log
error of 0.31 and 95% of the H200's medians inside the interval (233 points). Read a projected GPU
plan as a range and check it on the device."""

METHOD = (
    "per variant fit time(b) = host + k * roofline(b) (non-negative least squares, relative error) on the "
    "source's steady curve; host part / host_speed ratio, device part x roofline(target) / roofline(source) "
    "with target peaks = measured source peaks x table ratio; quantiles scaled by projected / measured median; "
    "projection uncertainty added to process_medians_ms"
)

HOST_BASIS = {
    "table": "the device table (host_speed)",
    "given": "--host-speed",
    "components": "the probe's serialization components against the source profile's (same code, one thread)",
    "probes": "the target probe's serialization components against the source probe's (same code, one thread)",
    "gpu_probes": "the two GPU probes' host timings (geometric mean of source / target: launch, op + sync, Linear + sync)",
}

_PEAK_KEY = {"tf32": "tf32", "bf16": "bf16", "fp16": "bf16", "ao_int8_weight_only": "bf16", "ao_fp8_weight_only": "bf16"}
"""Variant -> the peak its roofline floor uses (as in simlat.calibrate.variants; fp32 otherwise)."""


@dataclass(frozen=True)
class Fit:
    """One variant's split: ``host_ms`` + ``k`` x roofline floor."""

    host_ms: float
    k: float


def fit_split(medians: list[float], floors: list[float]) -> Fit:
    """Fit ``median = host + k * floor`` with host, k >= 0, minimising relative error."""
    m = np.asarray(medians, dtype=float)
    f = np.asarray(floors, dtype=float)
    w = 1.0 / np.maximum(m, 1e-12)
    a = np.column_stack([w, f * w])
    (host, k), _ = nnls(a, m * w)
    return Fit(float(host), float(k))


class Projector:
    """Projects the points of a profile from its ``source`` device onto ``target``."""

    def __init__(self, profile: ServiceProfile, target: DeviceSpec, *, source: DeviceSpec | None = None,
                 host_speed: float | None = None, source_probe: DeviceSpec | None = None):
        prov = profile.provenance
        if profile.peaks is None:
            raise SimlatError("the source profile records no peaks: its points cannot be split into host and device time")
        src = source or source_device(prov.device, prov.device_name, prov.threads)
        if src is None:
            raise SimlatError(
                f"the source profile's device {prov.device_name!r} ({prov.device}, {prov.threads} threads) is not in the"
                " device table; name it with --from"
            )
        if src.kind != target.kind:
            raise SimlatError(
                f"--to {target.name}: projecting a {src.kind} profile onto a {target.kind} device is not supported"
                " (the efficiency measured on one kind of device does not carry over to the other)"
            )
        self.profile, self.source, self.target = profile, src, target
        self.levels = profile.quantile_levels
        if source_probe is not None and source_probe.kind != target.kind:
            raise SimlatError(f"--source-probe: a {source_probe.kind} probe cannot describe the source of a {target.kind} projection")
        # serialization components: the probes' own (same code on both machines), else the target
        # probe's against the source profile's; the model's host part: see host_ratio_for
        serial: tuple[float, str] | None = None
        if source_probe is not None and source_probe.components and target.components:
            r = probe_component_ratio(source_probe.components, target.components)
            serial = (r, "probes") if r is not None else None
        if serial is None and target.components:
            r = host_ratio_from_components(profile, target.components)
            serial = (r, "components") if r is not None else None
        self.host_ratio, self.host_basis = host_ratio_for(target, src, source_probe, serial, host_speed)
        self.serial_ratio = host_speed if host_speed is not None else (serial[0] if serial is not None else self.host_ratio)
        if not (self.host_ratio > 0 and math.isfinite(self.host_ratio)):
            raise SimlatError(f"--host-speed: {self.host_ratio!r} is invalid: it must be > 0")
        pk = profile.peaks
        self.src_peaks = dict(pk.matmul_flops_per_s)
        self.src_bw = pk.copy_bytes_per_s
        if target.basis == "probe":  # measured on the target itself: absolute rates
            self.tgt_peaks = {d: target.peak(d) for d in self.src_peaks}
            self.tgt_bw = target.memory_bytes_per_s
        else:  # datasheet or table: ratios applied to the source's measured peaks
            self.tgt_peaks = {d: v * target.peak(d) / src.peak(d) for d, v in self.src_peaks.items()}
            self.tgt_bw = self.src_bw * target.memory_bytes_per_s / src.memory_bytes_per_s
        # CPU: the threads each side runs with (the source's device part is capped by the target's cores)
        self.threads = (src.cores or prov.threads, target.cores) if target.kind == "cpu" else (None, None)
        self.identity = target == src and self.host_ratio == 1.0

    def _floor(self, p: Point, dtype: str, *, target: bool) -> float | None:
        if p.flops is None or p.bytes is None:
            return None
        peaks, bw = (self.tgt_peaks, self.tgt_bw) if target else (self.src_peaks, self.src_bw)
        pf = peaks.get(dtype) or peaks.get("fp32")
        if not pf or not bw:
            return None
        if self.target.kind == "cpu":  # these models' weights stay in the CPU's caches: DRAM bandwidth does not bound them
            return p.flops / pf * 1e3
        return max(p.flops / pf, p.bytes / bw) * 1e3

    def variant_fit(self, v: Variant, medians: list[float] | None = None) -> Fit | None:
        """The host/device split of ``v``'s steady curve (None without roofline data); ``medians``:
        the steady medians to fit (default: the measured ones)."""
        dtype = _PEAK_KEY.get(v.name, "fp32")
        floors = [self._floor(p, dtype, target=False) for p in v.steady]
        if not v.steady or any(f is None for f in floors):
            return None
        meds = medians if medians is not None else [_median_from_levels(self.levels, p.dist) for p in v.steady]
        return fit_split(meds, [float(f) for f in floors])  # type: ignore[arg-type]

    def point_median(self, p: Point, fit: Fit | None, dtype: str, device_ms: float | None = None,
                     median_ms: float | None = None) -> tuple[float, float]:
        """(projected median, its device part on the source) of one point (``median_ms``: the
        source median to project, default the point's own)."""
        m = _median_from_levels(self.levels, p.dist) if median_ms is None else median_ms
        if self.identity:
            return m, 0.0
        fs = self._floor(p, dtype, target=False)
        ft = self._floor(p, dtype, target=True)
        if device_ms is None:
            device_ms = min(fit.k * fs, m) if fit is not None and fs is not None else 0.0
        ratio = (ft / fs) if fs and ft is not None else self._device_ratio(dtype)
        t_src, t_tgt = self.threads
        if t_src and t_tgt and fs and device_ms > 0:
            ratio *= cpu_thread_factor(fs, device_ms, t_src, t_tgt)
        host = m - device_ms
        return host / self.host_ratio + device_ms * ratio, device_ms

    def _device_ratio(self, dtype: str) -> float:
        """Without per-point FLOPs and bytes: the slower of the compute and memory ratios."""
        s = self.source.peak(dtype) / self.target.peak(dtype)
        b = self.source.memory_bytes_per_s / self.target.memory_bytes_per_s
        return max(s, b)

    def component_ratio(self, name: str) -> float:
        """Serialization runs on the host; host/device copies over the host link."""
        if name.startswith(("h2d", "d2h")):
            s, t = self.source.host_link_bytes_per_s, self.target.host_link_bytes_per_s
            return (s / t) if s and t else 1.0
        return 1.0 / self.serial_ratio


def cpu_thread_factor(floor_ms: float, device_ms: float, t_src: int, t_tgt: int) -> float:
    """How much longer the device part takes on ``t_tgt`` cores than the floor ratio says (CPU).

    The roofline floors use all-thread peaks, so ``floor_target / floor_source`` assumes the work
    spreads over every core of both machines. A small model's op does not: on the source it ran at
    ``c = t_src x floor / device`` cores' worth of peak (its efficiency). The same work keeps that
    parallelism on the target up to the target's cores, so per core it runs at the per-core rate
    ratio, and the device part is ``device x (per-core ratio) x c / min(c, t_tgt)``. In terms of
    the floor ratio (= per-core ratio x t_src / t_tgt): factor = ``t_tgt / t_src x c / min(c, t_tgt)``.
    1.0 when both sides have the same cores."""
    c = t_src * min(1.0, floor_ms / device_ms)
    return (t_tgt / t_src) * c / min(c, float(t_tgt))


def host_ratio_for(target: DeviceSpec, source: DeviceSpec, source_probe: DeviceSpec | None,
                   serial: tuple[float, str] | None, given: float | None) -> tuple[float, str]:
    """The target's host speed relative to the source's for the model's host part, and its basis.

    ``given`` (``--host-speed``) first. A GPU: with probes of both machines, the geometric mean of
    source / target over their three host timings (:data:`GPU_HOST_TIMINGS`: launch, op + sync,
    Linear + sync); otherwise the table's (1.0): the serialization components are NOT used for a GPU's
    host part (in the H100 -> H200 check they put the H200 host 2.6x slower than the same-day H100
    host; its batches were a median 1.3x slower). A CPU: the serialization components (``serial``:
    the ratio and its basis, probe against probe or probe against the source profile), else the table."""
    if given is not None:
        return given, "given"
    if target.kind == "cuda":
        if source_probe is not None and source_probe.gpu_host_us and target.gpu_host_us:
            logs = [math.log(source_probe.gpu_host_us[k] / target.gpu_host_us[k]) for k in GPU_HOST_TIMINGS]
            return math.exp(sum(logs) / len(logs)), "gpu_probes"
        return target.host_speed / source.host_speed, "table"
    if serial is not None:
        return serial
    return target.host_speed / source.host_speed, "table"


def probe_component_ratio(source: dict, target: dict) -> float | None:
    """The median over the serialization components two probes share (at least 5 us on the source)
    of source / target time at the 10th percentile; None when they share none."""
    ratios = []
    for model, comps in source.items():
        for name, per in comps.items():
            for b, t in per.items():
                s_ms = t.get("p10_ms") if isinstance(t, dict) else None
                t2 = ((target.get(model) or {}).get(name) or {}).get(b)
                t_ms = t2.get("p10_ms") if isinstance(t2, dict) else None
                if name.startswith(("serialize", "deserialize")) and s_ms and t_ms and s_ms >= 0.005 and t_ms > 0:
                    ratios.append(float(s_ms) / float(t_ms))
    return float(np.median(ratios)) if ratios else None


def host_ratio_from_components(profile: ServiceProfile, components: dict) -> float | None:
    """The target's single-thread host speed relative to the source's: the median over the
    serialization components both measured (same model, component and batch size, at least 5 us on
    the source) of source / target time at the 10th percentile (the calls other jobs on either
    machine did not slow down). None when they share none."""
    lv = profile.quantile_levels
    ratios = []
    for m in profile.models:
        tgt_m = components.get(m.name) or {}
        for c in m.components:
            if not c.name.startswith(("serialize", "deserialize")):
                continue
            tgt_c = tgt_m.get(c.name) or {}
            for p in c.points:
                t = tgt_c.get(str(p.batch_size))
                t_ms = t.get("p10_ms") if isinstance(t, dict) else None
                src_ms = float(np.interp(0.1, lv, p.dist.quantiles_ms))
                if t_ms and t_ms > 0 and src_ms >= 0.005:
                    ratios.append(src_ms / float(t_ms))
    return float(np.median(ratios)) if ratios else None


SPIKE = 2.0
"""A source median more than this many times what its neighbours allow is a spike (another job or a
descheduled thread during that batch size), not the curve."""


def despike(medians: list[float], sizes: list[int]) -> tuple[list[float], list[int]]:
    """``medians`` (at increasing batch ``sizes``) with each spike replaced by its neighbours' level,
    and the spikes' indices.

    A batch takes at most proportionally longer than a smaller one and no longer than a larger one,
    so a neighbour ``j`` allows ``m_j x max(1, b_i / b_j)`` at batch ``b_i``; a point over ``SPIKE``
    times what every neighbour allows is a one-off disturbance of the source (a 16-thread run
    descheduled at batch 1 reads 30x its neighbour), and a projection carries the curve, not that."""
    out, spikes = list(medians), []
    n = len(medians)
    for i, m in enumerate(medians):
        allowed = [medians[j] * max(1.0, sizes[i] / sizes[j]) for j in (i - 1, i + 1) if 0 <= j < n]
        if allowed and all(m > SPIKE * a for a in allowed):
            out[i] = max(allowed)
            spikes.append(i)
    return out, spikes


def _median_from_levels(levels: list[float], d: Dist) -> float:
    return float(np.interp(0.5, levels, d.quantiles_ms))


def scale_point(p: Point, levels: list[float], new_median: float, sd_projection: float, floor_ms: float | None) -> Point:
    """``p`` with its distribution scaled to ``new_median`` and its level uncertainty widened."""
    d = p.dist
    old = _median_from_levels(levels, d)
    s = new_median / old if old > 0 else 1.0
    meds = list(d.process_medians_ms)
    sd_src = float(np.std(np.log(meds), ddof=1)) if len(meds) >= 2 and min(meds) > 0 else 0.0
    if sd_projection <= 0 and s == 1.0:
        return p
    sd = math.hypot(sd_src, sd_projection)
    mid = _median_from_levels(levels, d) * s
    if sd_projection > 0:
        half = sd / math.sqrt(2.0)
        medians = [mid * math.exp(-half), mid * math.exp(half)]
        ci = (mid * math.exp(-1.96 * sd), mid * math.exp(1.96 * sd))
        spread = math.exp(2 * half)
    else:
        medians = [x * s for x in meds]
        ci = (d.median_ci_ms[0] * s, d.median_ci_ms[1] * s)
        spread = d.process_spread
    dist = Dist(
        n=d.n, mean_ms=d.mean_ms * s, quantiles_ms=[q * s for q in d.quantiles_ms], median_ci_ms=ci,
        median_ci_half_width_ms=(ci[1] - ci[0]) / 2, process_medians_ms=medians, process_spread=max(1.0, spread),
        unstable=d.unstable or spread > 1.1,
    )
    return p.model_copy(update={"dist": dist, "roofline_floor_ms": floor_ms if floor_ms is not None else p.roofline_floor_ms,
                                "first_call_ms": p.first_call_ms * s if p.first_call_ms is not None else None})


def project(profile: ServiceProfile, target: DeviceSpec, *, source_name: str = "profile", source: DeviceSpec | None = None,
            host_speed: float | None = None, sd_log: float | None = None, command: str = "",
            source_probe: DeviceSpec | None = None) -> ServiceProfile:
    """The profile ``profile`` would be on ``target``: same schema, marked projected (module docstring);
    ``source_probe``: a probe of the machine ``profile`` was measured on (the host ratio then compares
    probe with probe)."""
    pr = Projector(profile, target, source=source, host_speed=host_speed, source_probe=source_probe)
    sd_proj = (0.0 if pr.identity else DEFAULT_SD_LOG[target.kind]) if sd_log is None else float(sd_log)
    if not (sd_proj >= 0 and math.isfinite(sd_proj)):
        raise SimlatError(f"--uncertainty: {sd_log!r} is invalid: it must be >= 0")
    lv = profile.quantile_levels
    models = []
    for m in profile.models:
        variants = []
        for v in m.variants:
            if v.status != "ok":
                variants.append(v)
                continue
            dtype = _PEAK_KEY.get(v.name, "fp32")
            measured = [_median_from_levels(lv, p.dist) for p in v.steady]
            base, spikes = despike(measured, [p.batch_size for p in v.steady]) if not pr.identity else (measured, [])
            fit = pr.variant_fit(v, base)
            steady, device_at = [], {}
            for p, m_src in zip(v.steady, base, strict=True):
                med, dev = pr.point_median(p, fit, dtype, median_ms=m_src)
                device_at[p.batch_size] = (p, dev)
                steady.append(scale_point(p, lv, med, sd_proj, pr._floor(p, dtype, target=True)))
            idle = []
            for p in v.idle:
                ref = device_at.get(p.batch_size)
                if ref is not None and not pr.identity:
                    med, _ = pr.point_median(ref[0].model_copy(update={"dist": p.dist}), fit, dtype, device_ms=min(ref[1], _median_from_levels(lv, p.dist)))
                else:
                    med = _median_from_levels(lv, p.dist) / (1.0 if pr.identity else pr.host_ratio)
                idle.append(scale_point(p, lv, med, sd_proj, None))
            note = (f"projected from {pr.source.name} to {target.name}: fit host {fit.host_ms:.4g} ms + {fit.k:.3g} x roofline"
                    if fit is not None and fit.k > 0 else
                    f"projected from {pr.source.name} to {target.name}: all host time (no roofline fit)")
            if spikes:
                note += "; source spikes (over 2x what their neighbours allow) projected from their neighbours' level: batch " + ", ".join(
                    f"{v.steady[i].batch_size} ({measured[i]:.3g} ms)" for i in spikes)
            variants.append(v.model_copy(update={"steady": steady, "idle": idle, "notes": [*v.notes, note]}))
        comps = []
        for c in m.components:
            r = pr.component_ratio(c.name)
            comps.append(c.model_copy(update={"points": [scale_point(p, lv, _median_from_levels(lv, p.dist) * r, sd_proj, None) for p in c.points]}))
        models.append(ModelProfile.model_validate({**m.model_dump(), "variants": [x.model_dump() for x in variants],
                                                   "components": [x.model_dump() for x in comps]}))
    prov = profile.provenance
    method = METHOD
    if target.kind == "cpu":
        method += (f"; cpu: device part x t_tgt/t_src x c/min(c, t_tgt), c = the cores' worth the source reached"
                   f" ({pr.threads[0]} -> {pr.threads[1]} threads)")
    method += f"; host ratio from {HOST_BASIS[pr.host_basis]}"
    if pr.serial_ratio != pr.host_ratio:
        method += f"; serialization components at x{pr.serial_ratio:.3g} host speed (the components measured)"
    projection = Projection(
        source=source_name, source_device=prov.device_name, source_spec=pr.source.to_json(), target=target.to_json(),
        method=method, host_ratio=pr.host_ratio, uncertainty_sd_log=sd_proj,
    )
    new_prov = prov.model_copy(update={
        "device": target.kind, "device_name": f"{target.description} (projected)", "hostname": None,
        "threads": target.cores if target.kind == "cpu" else prov.threads,
        "cpu_count": target.cores if target.kind == "cpu" else prov.cpu_count,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command or f"simlat profile project --to {target.name}",
        "notes": [*prov.notes, f"projected, not measured: from {source_name} ({prov.device_name}) to {target.description}"],
        "elapsed_s": None, "projection": projection,
    })
    peaks = profile.peaks.model_copy(update={  # type: ignore[union-attr]
        "matmul_flops_per_s": pr.tgt_peaks, "copy_bytes_per_s": pr.tgt_bw,
        "method": (f"measured on the target by its probe ({target.source})" if target.basis == "probe" else
                   f"projected: measured source peaks x ({target.name} / {pr.source.name}) from the device table"),
    })
    return profile.model_copy(update={"provenance": new_prov, "peaks": peaks, "models": models})


def project_file(path: str | Path, target: DeviceSpec, **kw) -> ServiceProfile:
    """:func:`project` of the profile file at ``path`` (its name recorded as the source)."""
    from simlat.profiles.schema import load_profile

    return project(load_profile(path, field="SOURCE"), target, source_name=Path(path).name, **kw)


def is_projected(profile: ServiceProfile) -> bool:
    """Whether ``profile`` was projected rather than measured."""
    return profile.provenance.projection is not None


def compare(projected: ServiceProfile, measured: ServiceProfile) -> list[dict]:
    """Projected against measured medians, per model and variant over the steady batch sizes both have.

    Each row: ``model``, ``variant``, ``points``, ``median_err`` and ``worst_err`` (of
    ``projected / measured - 1``, by absolute value, signed), ``covered`` (points whose measured
    median lies in the projected point's ``median_ci_ms``)."""
    rows = []
    lv_p, lv_m = projected.quantile_levels, measured.quantile_levels
    have = {(m.name, v.name): v for m in measured.models for v in m.variants if v.status == "ok"}
    for m in projected.models:
        for v in m.variants:
            mv = have.get((m.name, v.name))
            if v.status != "ok" or mv is None:
                continue
            meas = {p.batch_size: p for p in mv.steady}
            errs, covered = [], 0
            for p in v.steady:
                q = meas.get(p.batch_size)
                if q is None:
                    continue
                got, want = _median_from_levels(lv_p, p.dist), _median_from_levels(lv_m, q.dist)
                errs.append(got / want - 1.0)
                covered += int(p.dist.median_ci_ms[0] <= want <= p.dist.median_ci_ms[1])
            if not errs:
                continue
            e = np.asarray(errs)
            rows.append({"model": m.name, "variant": v.name, "points": len(errs),
                         "median_err": float(np.median(np.abs(e))) * float(np.sign(np.median(e)) or 1.0),
                         "worst_err": float(e[np.argmax(np.abs(e))]), "covered": covered})
    return rows


def check_table(rows: list[dict]) -> str:
    """:func:`compare` rows as a Markdown table (errors as signed percentages)."""
    lines = ["| model | variant | points | median error | worst error | measured median inside the projected 95% interval |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {r['points']} | {r['median_err']:+.0%} | {r['worst_err']:+.0%}"
                     f" | {r['covered']}/{r['points']} |")
    return "\n".join(lines)
