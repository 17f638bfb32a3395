"""The model the validation server serves: built, placed on its device, warmed, and profiled.

The models are the calibration's built-in ones (:mod:`simlat.calibrate.models`) prepared by the
calibration's own variant code (fp32 eager by default; bf16, compile_cudagraphs and every other
variant of :mod:`simlat.calibrate.variants`), so the server runs exactly what the profiles measured. Single-input models only: ``mlp_ranker``
(512 float32 features) and ``encoder_small`` (64 int64 token ids).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SEQ_LEN = 64
"""Tokens per request for ``encoder_small`` (the calibration default)."""

INPUTS = {"mlp_ranker": ((512,), np.float32), "encoder_small": ((SEQ_LEN,), np.int64)}
"""Per-request input shape and dtype of the models the validation server can serve."""


@dataclass
class HostedModel:
    """A warmed model on its device with a thread-safe ``run(batch) -> scores`` call."""

    name: str
    device: str
    input_shape: tuple[int, ...]
    input_dtype: type
    prepared: object  # simlat.calibrate.variants.Prepared
    variant: str = "fp32"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Score one batch (numpy in, numpy out); synchronous, so its wall time is the batch's time."""
        import torch

        with torch.inference_mode():
            y = self.prepared.call(self.prepared.convert((torch.from_numpy(batch),)))
            return y.float().cpu().numpy().reshape(len(batch), -1)[:, 0]  # one score per request

    def example(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """A random input batch of ``n`` requests."""
        rng = rng or np.random.default_rng(0)
        if self.input_dtype == np.int64:
            return rng.integers(0, 8000, size=(n, *self.input_shape), dtype=np.int64)
        return rng.standard_normal((n, *self.input_shape), dtype=np.float32)

    def warm(self, max_batch: int, min_s: float = 1.0, max_s: float = 20.0) -> int:
        """Run every batch size until the batch-1 time is steady (two windows agree within 10%).

        Returns the number of calls made.
        """
        calls = 0
        t_end = time.perf_counter() + max_s
        t_min = time.perf_counter() + min_s
        prev = None
        while time.perf_counter() < t_end:
            for b in range(1, max_batch + 1):
                self.run(self.example(b))
                calls += 1
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                self.run(self.example(1))
                ts.append(time.perf_counter() - t0)
                calls += 1
            med = float(np.median(ts))
            if prev is not None and abs(med - prev) <= 0.1 * prev and time.perf_counter() >= t_min:
                break
            prev = med
        return calls

    def profile(self, max_batch: int, reps: int = 30, idle_gap_s: float = 0.05, idle_reps: int = 5) -> dict:
        """Back-to-back and after-idle-gap batch times (ms) per batch size, measured in this process."""
        steady: dict[int, list[float]] = {}
        idle: dict[int, list[float]] = {}
        xs = {b: self.example(b) for b in range(1, max_batch + 1)}
        for b in range(1, max_batch + 1):
            self.run(xs[b])
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                self.run(xs[b])
                ts.append((time.perf_counter() - t0) * 1e3)
            steady[b] = ts
        for b in sorted({1, max(1, max_batch // 2), max_batch}):
            ts = []
            for _ in range(idle_reps):
                time.sleep(idle_gap_s)
                t0 = time.perf_counter()
                self.run(xs[b])
                ts.append((time.perf_counter() - t0) * 1e3)
            idle[b] = ts
        return {"steady_ms": steady, "idle_ms": idle, "idle_gap_s": idle_gap_s}


def host_model(name: str, device: str = "cpu", threads: int | None = 1, variant: str = "fp32") -> HostedModel:
    """Build ``name`` in ``variant`` (fp32 eager by default) on ``device`` in inference mode."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from simlat.calibrate.models import LoadedModel, resolve_model

    if name not in INPUTS:
        raise ValueError(f"model: {name!r} cannot be served by the validation server (valid: {', '.join(INPUTS)})")
    from simlat.calibrate.variants import VARIANTS

    if variant not in VARIANTS:
        raise ValueError(f"variant: {variant!r} is unknown (valid: {', '.join(VARIANTS)})")
    loaded = LoadedModel(resolve_model(name, seq_len=SEQ_LEN))
    example = loaded.make_inputs(1, torch.Generator().manual_seed(0))
    prepared = VARIANTS[variant].prepare(loaded, device, example)
    shape, dtype = INPUTS[name]
    return HostedModel(name=name, device=device, input_shape=shape, input_dtype=dtype, prepared=prepared,
                       variant=variant)
