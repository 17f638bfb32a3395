"""Overheads around the model, measured as their own components, per batch of ``items`` rows.

Serialization of the model's inputs as a request payload: JSON (lists of numbers), msgpack (the
same lists, binary) and raw little-endian arrays (bytes, no parsing), each encoded from numpy
arrays and decoded back into numpy arrays, timed with perf_counter on one thread. On cuda:
host-to-device copy of the inputs from pageable and from pinned memory, and device-to-host
copy of the outputs, timed with CUDA events.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from simlat.calibrate import timing

SERIALIZATION = ("json", "msgpack", "raw")


def _codecs(fmt: str) -> tuple[Callable, Callable]:
    """(encode(arrays) -> bytes, decode(bytes) -> arrays) for one wire format."""
    if fmt == "json":

        def enc(arrays):
            return json.dumps([[a.dtype.str, a.tolist()] for a in arrays]).encode()

        def dec(payload):
            return [np.asarray(v, dtype=np.dtype(dt)) for dt, v in json.loads(payload)]

        return enc, dec
    if fmt == "msgpack":
        import msgpack

        def enc(arrays):
            return msgpack.packb([[a.dtype.str, a.tolist()] for a in arrays], use_bin_type=True)

        def dec(payload):
            return [np.asarray(v, dtype=np.dtype(dt)) for dt, v in msgpack.unpackb(payload, raw=False)]

        return enc, dec
    if fmt == "raw":
        import msgpack

        def enc(arrays):
            return msgpack.packb([[a.dtype.str, list(a.shape), np.ascontiguousarray(a).tobytes()] for a in arrays], use_bin_type=True)

        def dec(payload):
            return [np.frombuffer(b, dtype=np.dtype(dt)).reshape(shape) for dt, shape, b in msgpack.unpackb(payload, raw=False)]

        return enc, dec
    raise ValueError(fmt)


def _wall(fn: Callable[[], object]) -> Callable[[object], float]:
    import time

    def run(_inputs) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return run


def measure(model, device: str, sizes: list[int], budget: dict, deadline: float, progress: Callable[[], None]) -> tuple[dict, dict]:
    """``({component: {batch: samples}}, {component: description})`` for ``model`` at ``sizes``."""
    import time

    import torch

    gen = torch.Generator().manual_seed(3)
    out: dict[str, dict[int, list[float]]] = {}
    desc: dict[str, str] = {}
    kw = {"min_n": 3, "max_n": budget["max_samples"], "max_s": budget["component_point_s"]}
    for bs in sizes:
        if time.time() > deadline:
            break
        arrays = [x.numpy() for x in model.make_inputs(bs, gen)]
        for fmt in SERIALIZATION:
            enc, dec = _codecs(fmt)
            payload = enc(arrays)
            assert all(np.array_equal(a, b) for a, b in zip(arrays, dec(payload), strict=True))
            for direction, fn in (("serialize", lambda enc=enc, a=arrays: enc(a)), ("deserialize", lambda dec=dec, p=payload: dec(p))):
                name = f"{direction}_{fmt}"
                out.setdefault(name, {})[bs] = timing.sample(_wall(fn), [None], **kw).tolist()
                desc.setdefault(name, f"{direction} the inputs as {fmt} (perf_counter, 1 thread); {len(payload) / bs:.0f} bytes per item")
        if device == "cuda":
            _copies(model, bs, gen, out, desc, kw)
        progress()
    return out, desc


def _copies(model, bs: int, gen, out: dict, desc: dict, kw: dict) -> None:
    import torch

    host = list(model.make_inputs(bs, gen))
    pinned = [x.pin_memory() for x in host]
    nbytes = sum(x.numel() * x.element_size() for x in host)
    with torch.inference_mode():
        y = model.module.to("cuda")(*[x.to("cuda") for x in host]) if model.module is not None else None

    def h2d(src, non_blocking):
        return lambda: [x.to("cuda", non_blocking=non_blocking) for x in src]

    cases = [("h2d_pageable", h2d(host, False), f"inputs host->device from pageable memory; {nbytes / bs:.0f} bytes per item"),
             ("h2d_pinned", h2d(pinned, True), f"inputs host->device from pinned memory; {nbytes / bs:.0f} bytes per item")]
    if y is not None:
        cases.append(("d2h", lambda: y.to("cpu"), f"outputs device->host to pageable memory; {y.numel() * y.element_size() / bs:.0f} bytes per item"))
    for name, fn, text in cases:
        run = timing.timed_call(lambda _x, fn=fn: fn(), "cuda_events", "cuda")
        timing.warm_up(run, [None], max_s=0.2)
        out.setdefault(name, {})[bs] = timing.sample(run, [None], **kw).tolist()
        desc.setdefault(name, text + " (CUDA events)")
