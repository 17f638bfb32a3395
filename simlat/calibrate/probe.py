"""A short probe of a host (``simlat profile probe``): what a projection needs to know about a target.

About 5-10 s, torch and numpy only (no simulator dependencies), on the machine itself:

- ``matmul_flops_per_s``: fp32 and bf16 ``torch.mm`` (256^3, the size of these models' layers; the
  best of many short calls, so that other jobs on a shared machine disturb it little) with the
  threads the target will run, and ``matmul_flops_per_s_1thread`` with one thread;
- ``copy_bytes_per_s``: a 64 MiB copy, bytes read plus written;
- ``op_overhead_us``: the time of one tiny ``Linear`` call (1x64 by 64x64: dispatch, not arithmetic)
  with the target's threads and with one;
- ``components``: the serialization components ``simlat calibrate`` records (JSON, msgpack and raw
  encode/decode of the built-in models' inputs, one thread, :mod:`simlat.calibrate.overheads`) at a
  few batch sizes (10th percentile and median): the same code on both machines, so their ratio to a
  source profile's components is the target's single-thread host speed relative to the source's,
  measured.

With ``device="cuda"`` it also measures the GPU (``gpu``, about 10 s more): its peaks as ``simlat
calibrate`` measures them (:func:`simlat.calibrate.roofline.measure_peaks`: the same method, so a
projection's ratios compare like with like), the host-side cost of one kernel launch (a tiny
in-place add issued 2,000 times before one synchronize), the round trip of one tiny op and its
synchronize, and one tiny ``Linear`` call with its synchronize (dispatch, launch, wait: what a
launch-bound batch of these models pays).

The result is a plain JSON object (``format: simlat.probe``, ``version: 1``).
"""

from __future__ import annotations

import datetime as dt
import time

PROBE_FORMAT = "simlat.probe"
PROBE_VERSION = 1
COMPONENT_MODELS = ("mlp_ranker", "dlrm_small")
COMPONENT_SIZES = (1, 16)


def _best_rate(fn, work: float, *, max_s: float, reps: int = 2000) -> float:
    fn()
    best = 0.0
    t_end = time.perf_counter() + max_s
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = max(best, work / (time.perf_counter() - t0))
        if time.perf_counter() > t_end:
            break
    return best


def _matmul(threads: int, max_s: float) -> dict[str, float]:
    """Best FLOP/s per dtype over 256^3 and 512^3 (short calls: the best of many finds the
    undisturbed ones on a shared machine; the larger size lets 16-bit kernels reach their rate)."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    for n in (256, 512):
        for key, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            try:
                a = torch.randn(n, n, generator=gen).to(dtype)
                b = torch.randn(n, n, generator=gen).to(dtype)
                rate = _best_rate(lambda a=a, b=b: torch.mm(a, b), 2.0 * n**3, max_s=max_s / 4)
            except Exception:  # noqa: BLE001 - a dtype this CPU lacks is left out
                continue
            out[key] = max(out.get(key, 0.0), rate)
    return out


def _op_overhead_us(threads: int, max_s: float) -> float:
    """Median time of one tiny Linear call (microseconds)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    lin = torch.nn.Linear(64, 64)
    x = torch.randn(1, 64)
    per_call = []
    t_end = time.perf_counter() + max_s
    with torch.inference_mode():
        for _ in range(20):
            lin(x)
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            for _ in range(50):
                lin(x)
            per_call.append((time.perf_counter() - t0) / 50 * 1e6)
    return float(np.median(per_call))


def _components(max_s_each: float) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    import numpy as np

    from simlat.calibrate import overheads
    from simlat.calibrate.models import LoadedModel, resolve_model

    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    budget = {"max_samples": 5000, "component_point_s": max_s_each}
    for name in COMPONENT_MODELS:
        model = LoadedModel(resolve_model(name))
        samples, _ = overheads.measure(model, "cpu", list(COMPONENT_SIZES), budget, time.time() + 60.0, lambda: None)
        out[name] = {c: {str(b): {"p10_ms": float(np.quantile(s, 0.1)), "p50_ms": float(np.median(s))} for b, s in per.items()}
                     for c, per in samples.items()}
    return out


def _gpu(max_s: float) -> dict:
    """The GPU's peaks (as calibration measures them) and its launch and round-trip costs (microseconds)."""
    import numpy as np
    import torch

    from simlat.calibrate.roofline import measure_peaks

    sync = torch.cuda.synchronize
    x = torch.zeros(1, device="cuda")
    lin = torch.nn.Linear(64, 64).cuda()
    inp = torch.randn(1, 64, device="cuda")

    def median_us(fn, n: int) -> float:
        per: list[float] = []
        t_end = time.perf_counter() + max_s / 3
        with torch.inference_mode():
            for _ in range(3):
                fn()
            sync()
            while time.perf_counter() < t_end or len(per) < 5:
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                sync()
                per.append((time.perf_counter() - t0) / n * 1e6)
        return float(np.median(per))

    def op_and_sync() -> None:
        x.add_(1.0)
        sync()

    def linear_and_sync() -> None:
        lin(inp)
        sync()

    peaks = measure_peaks("cuda")
    return {
        "device_name": torch.cuda.get_device_name(0),
        "matmul_flops_per_s": peaks["matmul_flops_per_s"],
        "copy_bytes_per_s": peaks["copy_bytes_per_s"],
        "peaks_method": peaks["method"],
        "launch_us": median_us(lambda: x.add_(1.0), 2000),
        "op_sync_us": median_us(op_and_sync, 200),
        "linear_sync_us": median_us(linear_and_sync, 200),
    }


def run_probe(threads: int | None = None, *, seconds: float = 6.0, device: str = "cpu") -> dict:
    """Probe this machine's CPU (see the module docstring); ``threads``: the target's (default: torch's);
    ``device="cuda"``: its GPU too."""
    import torch

    from simlat.calibrate import environment

    t0 = time.time()
    threads = threads or torch.get_num_threads()
    share = seconds / 8.0
    copy_bytes = 64 << 20
    src = torch.empty(copy_bytes // 4).uniform_()
    dst = torch.empty_like(src)
    torch.set_num_threads(threads)
    bw = _best_rate(lambda: dst.copy_(src), 2.0 * copy_bytes, max_s=share)
    one = _matmul(1, share)
    many = _matmul(threads, share)
    notes = []
    slow = [k for k in one if many.get(k, 0.0) < one[k]]
    if slow:  # every multi-thread call was disturbed (another job held a core): once more, then no less than one thread
        again = _matmul(threads, share)
        for k in slow:
            many[k] = max(many.get(k, 0.0), again.get(k, 0.0), one[k])
        notes.append(f"{', '.join(slow)}: the {threads}-thread matmul ran slower than one thread (other jobs on the"
                     " machine); recorded as at least the one-thread rate")
    result: dict = {
        "format": PROBE_FORMAT,
        "version": PROBE_VERSION,
        "device": "cpu",
        "device_name": environment.cpu_model() or "cpu",
        "cpu_count": environment.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "matmul_flops_per_s_1thread": one,
        "matmul_flops_per_s": many,
        "copy_bytes_per_s": bw,
        "op_overhead_us": {"threads": _op_overhead_us(threads, share / 2), "one_thread": _op_overhead_us(1, share / 2)},
        "components": _components(share / 8),
        "method": "best of torch.mm 256^3 and 512^3 per dtype; best of 64 MiB copies (bytes read plus written); median of tiny "
                  "Linear(64, 64) calls on a 1x64 input; serialization components as simlat calibrate measures them",
        "notes": notes,
    }
    if device == "cuda":
        gpu = _gpu(seconds / 2)
        result.update(device="cuda", gpu=gpu, device_name=gpu["device_name"])
        result["host_name"] = environment.cpu_model() or "cpu"
    torch.set_num_threads(threads)
    result["elapsed_s"] = round(time.time() - t0, 2)
    return result
