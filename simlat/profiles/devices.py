"""The device table a profile is projected with: peak rates per dtype, memory and host-link bandwidth.

Every entry names its source. GPU entries are datasheet numbers (dense, no sparsity); a projection
never uses them as absolute rates, only as ratios between the source and the target device
(``target peak = measured source peak x datasheet target / datasheet source``), so the source's
measured efficiency against its datasheet carries over. CPU entries are described by cores and
per-core rates; the two CPU hosts simlat has profiles of are entered from their *measured* peaks
(the ``peaks`` block ``simlat calibrate`` records: ``torch.mm`` 1024^3 per dtype and a 256 MiB
copy, about 15 s), per core. A CPU projection between two measured entries is therefore a
projection by a short measured probe, not by a datasheet; a datasheet CPU entry would be compared
with a measured one and is not offered.

``host_speed`` is the per-core speed of the host CPU that launches the work (Python, the framework
dispatcher, kernel launches, thread wake-ups), relative to the H100 host's Xeon core (1.0). No
host-CPU benchmark was run on these machines: every entry is 1.0 (same class of server core) until
one is, and ``simlat profile project --host-speed`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from simlat.errors import SimlatError

TERA = 1e12
GIGA = 1e9


@dataclass(frozen=True)
class DeviceSpec:
    """One device: ``flops`` per dtype (FLOP/s, whole device), ``memory_bytes_per_s`` (read plus
    write, the way the calibration's copy peak counts), ``host_link_bytes_per_s`` (host-to-device
    copies; None on a CPU), ``cores`` (CPU: the threads the profile runs with), ``match``: words of
    a profile's recorded device name that identify this device as a projection's source."""

    name: str
    kind: Literal["cuda", "cpu"]
    description: str
    flops: dict[str, float]
    memory_bytes_per_s: float
    source: str
    host_link_bytes_per_s: float | None = None
    cores: int | None = None
    host_speed: float = 1.0
    basis: Literal["datasheet", "measured", "probe"] = "datasheet"
    match: tuple[str, ...] = field(default_factory=tuple)
    components: dict | None = None  # probe: serialization components measured on the target (model -> name -> batch -> ms)
    gpu_host_us: dict[str, float] | None = None  # GPU probe: launch_us, op_sync_us, linear_sync_us (simlat.calibrate.probe)

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype`` (tf32 falls back to fp32, other 16-bit types to bf16)."""
        if dtype in self.flops:
            return self.flops[dtype]
        fallback = {"tf32": "fp32", "fp16": "bf16"}.get(dtype, "fp32")
        return self.flops[fallback]

    def to_json(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "description": self.description,
            "flops_per_s": dict(self.flops), "memory_bytes_per_s": self.memory_bytes_per_s,
            "host_link_bytes_per_s": self.host_link_bytes_per_s, "cores": self.cores,
            "host_speed": self.host_speed, "basis": self.basis, "source": self.source,
            **({"components": self.components} if self.components else {}),
            **({"gpu_host_us": dict(self.gpu_host_us)} if self.gpu_host_us else {}),
        }


def _cpu(name: str, description: str, cores: int, per_core_flops: dict[str, float], memory: float, source: str,
         match: tuple[str, ...]) -> DeviceSpec:
    return DeviceSpec(name, "cpu", description, {k: v * cores for k, v in per_core_flops.items()}, memory, source,
                      cores=cores, basis="measured", match=match)


DEVICES: dict[str, DeviceSpec] = {
    d.name: d
    for d in (
        # NVIDIA H100 Tensor Core GPU datasheet (SXM5 80GB): FP32 67 TFLOPS, TF32 989 (sparse) -> 494.7
        # dense, BF16 1979 (sparse) -> 989.4 dense, HBM3 3.35 TB/s, PCIe Gen5 x16 64 GB/s per direction.
        DeviceSpec("h100", "cuda", "NVIDIA H100 SXM5 80GB",
                   {"fp32": 67 * TERA, "tf32": 494.7 * TERA, "bf16": 989.4 * TERA}, 3350 * GIGA,
                   "NVIDIA H100 datasheet (SXM5), dense rates", host_link_bytes_per_s=64 * GIGA, match=("h100",)),
        # NVIDIA H200 Tensor Core GPU datasheet (SXM 141GB): the H100's compute (FP32 67, TF32 989 sparse,
        # BF16 1979 sparse TFLOPS), HBM3e 4.8 TB/s, PCIe Gen5 x16 64 GB/s.
        DeviceSpec("h200", "cuda", "NVIDIA H200 SXM 141GB",
                   {"fp32": 67 * TERA, "tf32": 494.7 * TERA, "bf16": 989.4 * TERA}, 4800 * GIGA,
                   "NVIDIA H200 datasheet (SXM), dense rates", host_link_bytes_per_s=64 * GIGA, match=("h200",)),
        # NVIDIA A100 Tensor Core GPU datasheet (80GB SXM): FP32 19.5, TF32 156, BF16 312 TFLOPS dense,
        # HBM2e 2,039 GB/s, PCIe Gen4 x16 32 GB/s.
        DeviceSpec("a100", "cuda", "NVIDIA A100 SXM4 80GB",
                   {"fp32": 19.5 * TERA, "tf32": 156 * TERA, "bf16": 312 * TERA}, 2039 * GIGA,
                   "NVIDIA A100 datasheet (80GB SXM), dense rates", host_link_bytes_per_s=32 * GIGA, match=("a100",)),
        # NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3, TF32 120 (sparse) -> 60 dense, BF16 242 (sparse)
        # -> 121 dense TFLOPS, GDDR6 300 GB/s, PCIe Gen4 x16 32 GB/s.
        DeviceSpec("l4", "cuda", "NVIDIA L4 24GB",
                   {"fp32": 30.3 * TERA, "tf32": 60 * TERA, "bf16": 121 * TERA}, 300 * GIGA,
                   "NVIDIA L4 datasheet, dense rates", host_link_bytes_per_s=32 * GIGA, match=("l4",)),
        # The H100 host's CPU, 16 threads: calibration/h100-host-cpu16.json peaks (measured
        # 2026-11-24): fp32 1.51 TFLOP/s, bf16 4.02 TFLOP/s, copy 82 GB/s; per core = / 16.
        _cpu("xeon-16", "Intel Xeon server VM, 16 cores (the H100 host)", 16,
             {"fp32": 1.5104e12 / 16, "bf16": 4.0213e12 / 16}, 82.0e9,
             "measured: calibration/h100-host-cpu16.json peaks (torch.mm 1024^3, 256 MiB copy), per core",
             match=("xeon",)),
        # The same Xeon class described by cores only: 2 cores at the per-core rates measured on the
        # H100 host (compute and copy bandwidth = per-core x 2). A 2-vCPU slice of that host.
        _cpu("xeon-2", "Intel Xeon server VM, 2 cores (per-core rates of the H100 host)", 2,
             {"fp32": 1.5104e12 / 16, "bf16": 4.0213e12 / 16}, 82.0e9 / 16 * 2,
             "per-core rates measured on the H100 host (calibration/h100-host-cpu16.json peaks / 16), x 2 cores",
             match=("xeon",)),
        # The CI VM, 2 threads: calibration/ci-cpu2.json peaks (measured 2026-11-24 on a shared
        # machine): fp32 0.0766 TFLOP/s, bf16 1.05 TFLOP/s, copy 48 GB/s; per core = / 2.
        _cpu("ci-cpu2", "AMD EPYC VM, 2 cores (CI)", 2,
             {"fp32": 0.07660e12 / 2, "bf16": 1.0513e12 / 2}, 48.0e9,
             "measured: calibration/ci-cpu2.json peaks (torch.mm 1024^3, 256 MiB copy, shared machine), per core",
             match=("epyc",)),
    )
}
"""Known devices by name (``simlat profile project --to NAME``)."""


GPU_HOST_TIMINGS = ("launch_us", "op_sync_us", "linear_sync_us")
"""What a GPU probe measures of the host side of a launch-bound batch: one kernel launch issued back
to back, one tiny op and its synchronize, one tiny Linear and its synchronize."""


def from_probe(probe: dict, source: str = "probe") -> DeviceSpec:
    """The target a ``simlat profile probe`` result describes: its rates are absolute measurements
    (``basis: probe``), used as they are rather than as ratios to the table. A CPU probe's matmul rate
    is the larger of threads x the one-thread rate and the all-thread rate; a GPU probe
    (``--device cuda``) gives the GPU's peaks as calibration measures them and its launch cost. The
    host speed is left to the projection, which compares the probe's serialization components (or,
    for a GPU with a probe of the source too, its launch and round-trip costs) with the source's."""
    if not isinstance(probe, dict) or probe.get("format") != "simlat.probe":
        raise SimlatError(f"--probe: {source!r} is not a probe result (format simlat.probe); make one with simlat profile probe")
    if probe.get("version") != 1:
        raise SimlatError(f"--probe: {source!r} has version {probe.get('version')!r}; this simlat reads version 1")
    date = probe.get("date", "?")
    if probe.get("device") == "cuda":
        try:
            gpu = probe["gpu"]
            flops = {k: float(v) for k, v in gpu["matmul_flops_per_s"].items() if float(v) > 0}
            bw = float(gpu["copy_bytes_per_s"])
            host_us = {k: float(gpu[k]) for k in GPU_HOST_TIMINGS}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SimlatError(f"--probe: {source!r} is a cuda probe without its GPU measurements: {type(err).__name__}: {err}") from err
        if "fp32" not in flops or bw <= 0 or not all(v > 0 for v in host_us.values()):
            raise SimlatError(f"--probe: {source!r} lacks the GPU's fp32 matmul rate, its copy bandwidth or its launch cost")
        return DeviceSpec("probe", "cuda", f"{gpu.get('device_name') or 'GPU'} (probed {date})", flops, bw,
                          f"measured: simlat profile probe --device cuda ({source})", basis="probe",
                          components=probe.get("components") or None, gpu_host_us=host_us)
    try:
        threads = int(probe["threads"])
        # threads x the one-thread rate: on a shared machine the all-thread rate mostly measures the other jobs
        one = {k: float(v) for k, v in probe["matmul_flops_per_s_1thread"].items() if float(v) > 0}
        many = {k: float(v) for k, v in probe["matmul_flops_per_s"].items() if float(v) > 0}
        flops = {k: max(threads * one.get(k, 0.0), many.get(k, 0.0)) for k in {*one, *many}}
        bw = float(probe["copy_bytes_per_s"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SimlatError(f"--probe: {source!r} is incomplete: {type(err).__name__}: {err}") from err
    if "fp32" not in flops or bw <= 0 or threads < 1:
        raise SimlatError(f"--probe: {source!r} lacks an fp32 matmul rate, a copy bandwidth or a thread count")
    name = str(probe.get("device_name") or "cpu")
    return DeviceSpec("probe", "cpu", f"{name}, {threads} threads (probed {date})", flops, bw,
                      f"measured: simlat profile probe ({source})", cores=threads, basis="probe",
                      components=probe.get("components") or None)


def device(name: str) -> DeviceSpec:
    """The spec called ``name``, or a SimlatError listing the known ones."""
    key = name.strip().lower()
    if key not in DEVICES:
        raise SimlatError(f"--to: device {name!r} is unknown; known devices: {', '.join(DEVICES)}")
    return DEVICES[key]


def _words(text: str) -> set[str]:
    return set("".join(c.lower() if c.isalnum() else " " for c in text).split())


def source_device(kind: str, device_name: str, threads: int | None) -> DeviceSpec | None:
    """The table entry a measured profile's device is (same kind, its ``match`` words in the
    recorded device name, and for a CPU the same number of threads), or None."""
    words = _words(device_name)
    for spec in DEVICES.values():
        if spec.kind != kind or not spec.match or not set(spec.match) <= words:
            continue
        if kind == "cpu" and threads is not None and spec.cores != threads:
            continue
        return spec
    return None
