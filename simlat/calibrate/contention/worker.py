"""A contention measuring process: ``python -m simlat.calibrate.contention.worker --device cuda``.

It imports torch (and initialises CUDA) once, then takes JSON commands from stdin, one a line,
and answers each with one ``@@reply {json}`` line on stdout, so a parent keeps it up across many
sets (model builds and CUDA start-up cost seconds). Commands:

- ``env``: provenance of the device (:func:`simlat.calibrate.environment.describe`);
- ``load``: build one instance of a member under ``key`` (its own weights), place three input
  sets on the device and warm it up until its timings settle;
- ``run``: keep the loaded instances ``keys`` busy until ``start_ns`` (on the host's monotonic
  clock, shared by all processes), then run batches back-to-back for ``window_s``, each followed
  by a synchronize (as a server waits for a batch before answering), recording each batch's start
  and end; with ``streams`` each key runs in its own Python thread on its own CUDA stream. The
  records go to ``out`` (``.npz``, one ``(n, 2)`` array of ns per key, in order);
- ``quit``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback


class _Instance:
    """A loaded member: its prepared call and three input sets on the device."""

    def __init__(self, msg: dict, device: str):
        import torch

        from simlat.calibrate import timing
        from simlat.calibrate.models import LoadedModel, ModelRef
        from simlat.calibrate.variants import VARIANTS

        model = LoadedModel(ModelRef.from_json(msg["model"]))
        bs = int(msg["batch_size"])
        gen = torch.Generator().manual_seed(11 + int(msg.get("copy", 0)))
        example = model.make_inputs(bs, gen)
        self.prep = VARIANTS[msg["variant"]].prepare(model, device, example)
        self.sets = [self.prep.convert(model.make_inputs(bs, gen)) for _ in range(3)]
        self.sync = torch.cuda.synchronize if device == "cuda" else None
        self.first_call_ms = timing.first_call_ms(self.prep.call, self.sets[0], device)
        run = timing.timed_call(self.prep.call, "perf_counter", device)
        self.warmup = timing.warm_up(run, self.sets, max_s=float(msg.get("warmup_s", 2.0)))


def _loop(inst: _Instance, start_ns: int, end_ns: int, stream=None) -> list[tuple[int, int]]:
    """Batches back-to-back: busy (unrecorded) until ``start_ns``, recorded until ``end_ns``."""
    call, sets = inst.prep.call, inst.sets
    sync = stream.synchronize if stream is not None else inst.sync
    clock = time.monotonic_ns
    i = 0
    while clock() < start_ns:
        call(sets[i % 3])
        if sync is not None:
            sync()
        i += 1
    out: list[tuple[int, int]] = []
    while True:
        t0 = clock()
        if t0 >= end_ns:
            return out
        call(sets[i % 3])
        if sync is not None:
            sync()
        out.append((t0, clock()))
        i += 1


def _run(msg: dict, loaded: dict, device: str) -> dict:
    import numpy as np

    insts = [loaded[k] for k in msg["keys"]]
    start_ns = int(msg["start_ns"])
    end_ns = start_ns + int(float(msg["window_s"]) * 1e9)
    records: list[list[tuple[int, int]]]
    if not msg.get("streams"):
        if len(insts) != 1:
            raise ValueError("a run without streams takes one key")
        records = [_loop(insts[0], start_ns, end_ns)]
    else:
        import torch

        streams = [torch.cuda.Stream() for _ in insts]
        records = [[] for _ in insts]
        errors: list[str] = []
        torch.cuda.synchronize()

        def body(j: int) -> None:
            try:
                with torch.cuda.stream(streams[j]):
                    records[j] = _loop(insts[j], start_ns, end_ns, streams[j])
            except Exception as err:  # noqa: BLE001 - reported to the parent
                errors.append(f"{type(err).__name__}: {str(err)[:300]}")

        threads = [threading.Thread(target=body, args=(j,), daemon=True) for j in range(len(insts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])
    arrays = {f"r{j}": np.asarray(r, dtype=np.int64).reshape(-1, 2) for j, r in enumerate(records)}
    tmp = msg["out"] + ".tmp.npz"
    np.savez(tmp, allow_pickle=False, **arrays)
    os.replace(tmp, msg["out"])
    return {"ok": True, "n": [len(r) for r in records]}


def _env(device: str) -> dict:
    import torch

    from simlat.calibrate import environment

    if device == "cuda" and not torch.cuda.is_available():
        return {"ok": True, "cuda_available": False, "torch": torch.__version__}
    info = environment.describe(device)
    info.update(ok=True, cuda_available=torch.cuda.is_available(), threads=torch.get_num_threads())
    return info


def main() -> int:
    """Import torch, then answer commands until ``quit`` or the end of stdin."""
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    import torch

    if "--threads" in sys.argv:
        torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.init()
    loaded: dict[str, _Instance] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        cmd = msg.get("cmd")
        if cmd == "quit":
            break
        try:
            if cmd == "env":
                reply = _env(device)
            elif cmd == "load":
                if msg["key"] not in loaded:
                    loaded[msg["key"]] = _Instance(msg, device)
                inst = loaded[msg["key"]]
                reply = {"ok": True, "first_call_ms": inst.first_call_ms, **inst.warmup}
            elif cmd == "run":
                reply = _run(msg, loaded, device)
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        except Exception as err:  # noqa: BLE001 - reported to the parent, which records it
            print(traceback.format_exc(limit=4), file=sys.stderr, flush=True)
            reply = {"ok": False, "error": f"{type(err).__name__}: {str(err)[:400]}"}
        print("@@reply " + json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
