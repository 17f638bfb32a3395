"""The device's ceilings (peak matmul FLOP/s per dtype, copy bandwidth), measured once per run,
and each point's roofline floor: ``max(flops / peak, bytes / bandwidth)``.

FLOPs are counted by torch's FlopCounterMode on the fp32 model; bytes are the fewest a batch
must move: dense weights once, gathered embedding rows, inputs and outputs.
"""

from __future__ import annotations

import time


def _best_rate(fn, work: float, sync, reps: int, max_s: float) -> float:
    fn()
    sync()
    best = 0.0
    t_end = time.perf_counter() + max_s
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        dt = time.perf_counter() - t0
        best = max(best, work / dt)
        if time.perf_counter() > t_end:
            break
    return best


def measure_peaks(device: str, threads: int | None = None) -> dict:
    """Peak matmul FLOP/s (fp32, tf32 and bf16 on cuda; fp32 and bf16 on cpu) and copy bytes/s."""
    import torch

    from simlat.calibrate.variants import set_tf32

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    n = 8192 if device == "cuda" else 1024
    peaks: dict[str, float] = {}
    dtypes = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16} if device == "cuda" else {"fp32": torch.float32, "bf16": torch.bfloat16}
    gen = torch.Generator(device=device).manual_seed(0)
    for key, dt in dtypes.items():
        if device == "cuda":
            set_tf32(key == "tf32")
        try:
            a = torch.randn(n, n, device=device, generator=gen).to(dt)
            b = torch.randn(n, n, device=device, generator=gen).to(dt)
            peaks[key] = _best_rate(lambda a=a, b=b: torch.mm(a, b), 2.0 * n**3, sync, reps=10, max_s=3.0)
        except Exception:  # noqa: BLE001 - a dtype the CPU lacks is left out
            continue
    if device == "cuda":
        set_tf32(False)
    nbytes = (1 << 30) if device == "cuda" else (1 << 28)
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    bw = _best_rate(lambda: dst.copy_(src), 2.0 * nbytes, sync, reps=10, max_s=3.0)
    return {
        "matmul_flops_per_s": peaks,
        "copy_bytes_per_s": bw,
        "method": f"best of up to 10 {n}x{n}x{n} torch.mm per dtype (random data); best of up to 10 copies of"
        f" {nbytes >> 20} MiB counting bytes read plus written; {device}"
        + (f", {threads} threads" if threads else ""),
    }


def floor_ms(flops: float, nbytes: float, peak_flops: float | None, bandwidth: float | None) -> float | None:
    """The roofline floor in ms (None without the peaks)."""
    if not peak_flops or not bandwidth:
        return None
    return max(flops / peak_flops, nbytes / bandwidth) * 1e3


def count_flops(module, inputs) -> float:
    """FLOPs of one fp32 forward pass (torch's FlopCounterMode: matmuls, attention, convolutions)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        module(*inputs)
    return float(fc.get_total_flops())
