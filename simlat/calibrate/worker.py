"""One isolated measuring process: ``python -m simlat.calibrate.worker --device cpu|cuda``.

The process imports torch (and initialises CUDA) first, then reads JSON task lines from stdin, one
at a time until stdin closes, so a parent can start the next worker while the current one
measures, and can run several safe variants of one model in one process. Tasks:

- ``env``: provenance and the device's peaks;
- ``variant``: one model under one variant at a list of batch sizes (cold start, warm-up until
  steady, back-to-back samples, samples after an idle gap, output error against fp32 eager);
- ``components``: the overheads around one model (serialization, host/device copies).

It prints ``@@progress <label>`` after each batch size, writes its result as JSON to the task's
``out`` path and prints ``@@done``. A crash loses only the running task: the parent records it as
skipped (and gives a group's next task a fresh process).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

T_START = time.time()


def _progress(label: str) -> None:
    print(f"@@progress {label}", flush=True)


def _save(path: str, result: dict) -> None:
    """Write ``result`` atomically (a killed worker leaves its last complete result)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


def _as_array(out):
    """The first output as a float64 numpy array (tensor, tuple of tensors or list of arrays)."""
    import numpy as np
    import torch

    while isinstance(out, (list, tuple)):
        out = out[0]
    if isinstance(out, torch.Tensor):
        return out.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(out, dtype=np.float64)


def _error(prep, model, ref_inputs, ref) -> dict | None:
    import numpy as np

    if ref is None:
        return None
    out = _as_array(prep.call(prep.convert(ref_inputs)))
    if out.shape != ref.shape:
        return {"max_abs": float("inf"), "rel": float("inf")}
    diff = out - ref
    if not np.all(np.isfinite(out)):
        return {"max_abs": float("inf"), "rel": float("inf")}
    return {"max_abs": float(np.max(np.abs(diff))), "rel": float(np.linalg.norm(diff)) / max(float(np.linalg.norm(ref)), 1e-30)}


def run_variant(task: dict) -> dict:
    """Measure one model under one variant (see the module docstring)."""
    import numpy as np
    import torch

    from simlat.calibrate import roofline, timing
    from simlat.calibrate.models import LoadedModel, ModelRef
    from simlat.calibrate.variants import VARIANTS, Unsupported, set_tf32

    device, budget, deadline = task["device"], task["budget"], task["deadline"]
    spec = VARIANTS[task["variant"]]
    res: dict = {"status": "ok", "notes": [], "points": {}, "idle": {}, "timer": None}
    model = LoadedModel(ModelRef.from_json(task["model"]))
    sizes = task["batch_sizes"]
    refiner = None
    if task.get("adaptive"):
        from simlat.calibrate.adaptive import Refiner, coarse

        refiner = Refiner(sizes, step=budget["coarse_step"], tolerance=budget["tolerance"])
        first_pass = coarse(sizes, budget["coarse_step"])
        ref_bs = next((b for b in first_pass if b >= 8), first_pass[-1])
    else:
        ref_bs = next((b for b in sizes if b >= 8), sizes[-1])
    ref_inputs = model.make_inputs(ref_bs, torch.Generator().manual_seed(7))
    ref = None
    if model.module is not None:
        set_tf32(False)
        m = model.module.to(device)
        with torch.inference_mode():
            ref = _as_array(m(*[x.to(device) for x in ref_inputs]))
            two = model.make_inputs(2, torch.Generator().manual_seed(8))
            res["flops_per_item"] = roofline.count_flops(m, [x.to(device) for x in two]) / 2.0
        res["bytes_fixed"] = model.dense_param_bytes(spec.bytes_per_param)
        elem = 2.0 if spec.bytes_per_param < 4 else 4.0
        res["input_bytes_per_item"] = float(sum(x[0].numel() * x.element_size() for x in ref_inputs))
        res["output_bytes_per_item"] = float(ref[0].size * 4)
        res["bytes_per_item"] = model.lookup_bytes_per_item(elem) + res["input_bytes_per_item"] + res["output_bytes_per_item"]
    res["inputs"] = model.input_names()
    res["process_ready_ms"] = (time.time() - task["spawn_time"]) * 1e3 - task.get("waited_ms", 0.0)
    t0 = time.perf_counter()
    try:
        prep = spec.prepare(model, device, ref_inputs)
    except Unsupported as err:
        return {"status": "skipped", "reason": str(err)}
    res["setup_ms"] = (time.perf_counter() - t0) * 1e3
    res["timer"] = prep.timer
    res["notes"] += prep.notes
    gen = torch.Generator().manual_seed(11)
    idle_sizes = set(task["idle_sizes"])
    res["measuring_from"] = time.time()
    order = iter(sizes)
    i = 0
    while True:
        bs = refiner.next_size() if refiner is not None else next(order, None)
        if bs is None:
            break
        now = time.time()
        left = refiner.expected_left() if refiner is not None else len(sizes) - i
        if now > task["hard_deadline"]:
            unmeasured = refiner.unmeasured() if refiner is not None else sizes[i:]
            res["notes"].append(f"batch sizes {unmeasured} not measured: the variant's time budget was spent")
            break
        # pace: the time left to the soft deadline, shared by the sizes left (coverage before sample count)
        allowance = max((deadline - now) / left, 0.05)
        i += 1
        try:
            sets = [prep.convert(model.make_inputs(bs, gen)) for _ in range(3)]
            first = timing.first_call_ms(prep.call, sets[0], device)
            run = timing.timed_call(prep.call, prep.timer, device)
            wu = timing.warm_up(run, sets, max_s=min(budget["warmup_s"], 0.4 * allowance))
            point_s = min(task["point_s"], 0.4 * allowance)
            samples = timing.sample(run, sets, min_n=budget["min_samples"], max_n=budget["max_samples"], max_s=point_s,
                                    hard_s=max(1.5 * allowance, point_s), rel_ci=budget.get("rel_ci", 0.0))
            point = {"samples": samples.tolist(), "first_call_ms": first, "warmup_calls": wu["calls"], "steady": wu["steady"]}
            if samples.size < budget["min_samples"]:
                res["notes"].append(f"batch {bs}: {samples.size} samples (fewer than {budget['min_samples']}: time budget)")
            if bs in idle_sizes:
                n_idle = budget["idle_samples"] if budget["idle_samples"] * budget["idle_gap_s"] < 0.5 * allowance else 2
                res["idle"][str(bs)] = timing.sample_after_idle(run, sets, n=n_idle, gap_s=budget["idle_gap_s"]).tolist()
            if not wu["steady"]:
                res["notes"].append(f"batch {bs}: timings not steady after {wu['calls']} warm-up calls")
        except Exception as err:  # noqa: BLE001 - keep what was measured
            if not res["points"]:
                raise
            unmeasured = [b for b in sizes if str(b) not in res["points"]]
            res["notes"].append(f"batch sizes {unmeasured} not measured: batch {bs} failed: {type(err).__name__}: {str(err)[:300]}")
            break
        finally:
            _progress(str(bs))
        res["points"][str(bs)] = point
        del sets
        if refiner is not None:
            refiner.record(bs, float(np.median(samples)))
            res["adaptive"] = refiner.summary()
        _save(task["out"], res)
    if res["points"]:
        measured = [int(b) for b in res["points"]]
        if ref_bs in measured:
            res["error"] = _error(prep, model, ref_inputs, ref)
        else:
            res["notes"].append(f"output error not checked: reference batch {ref_bs} was not measured")
    return res


def run_env(task: dict) -> dict:
    """Provenance and peaks."""
    import torch

    from simlat.calibrate import environment, roofline

    if task["device"] == "cuda" and not torch.cuda.is_available():
        return {"cuda_available": False, "torch": torch.__version__}
    info = environment.describe(task["device"])
    info["cuda_available"] = torch.cuda.is_available()
    info["peaks"] = roofline.measure_peaks(task["device"], task.get("threads"))
    try:
        import onnxruntime as ort

        info["onnxruntime_providers"] = list(ort.get_available_providers())
    except Exception:  # noqa: BLE001 - absent or broken: the onnxruntime variant's own worker says why
        info["onnxruntime_providers"] = None
    return info


def run_components(task: dict) -> dict:
    """Overheads of one model."""
    from simlat.calibrate import overheads
    from simlat.calibrate.models import LoadedModel, ModelRef

    model = LoadedModel(ModelRef.from_json(task["model"]))
    samples, desc = overheads.measure(model, task["device"], task["batch_sizes"], task["budget"], task["hard_deadline"], lambda: _progress("components"))
    return {"status": "ok", "components": {k: {str(b): s for b, s in v.items()} for k, v in samples.items()}, "descriptions": desc}


TASKS = {"env": run_env, "variant": run_variant, "components": run_components}


def _prewarm_cuda() -> float:
    """One-time costs every variant task pays, paid before a task arrives (the parent starts cuda
    workers ahead of need, so this time is hidden): the cuBLAS handles of each dtype, the FLOP
    counter's first use (it imports much of torch's tracing machinery: ~5 s) and torch.compile's
    modules. Nothing measured depends on it: warm-up still runs per batch size. Returns the ms
    spent on what a serving process would not do (the FLOP counter, the compiler's import when the
    variant does not compile), which ``process_ready_ms`` leaves out."""
    import torch

    from simlat.calibrate import roofline

    try:
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            a = torch.ones(64, 64, device="cuda", dtype=dtype)
            (a @ a).sum().item()
        t0 = time.time()
        roofline.count_flops(torch.nn.Linear(8, 8), [torch.ones(2, 8)])
        import torch._inductor.compile_fx  # noqa: F401 - the compile variants' import
        return (time.time() - t0) * 1e3
    except Exception as err:  # noqa: BLE001 - the task itself reports what fails
        print(f"pre-warm failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 0.0


def main() -> int:
    """Preload torch, then read tasks from stdin one line at a time until it closes.

    For each task: run it, write the result file, print ``@@done``. A parent sends several tasks
    only for variants that cannot leave the process in a bad state (see ``plan.make_tasks``).
    """
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    import torch

    prewarm_ms = 0.0
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.init()
        prewarm_ms = _prewarm_cuda()
    import_ms = None
    while True:
        t_wait = time.time()
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # no (further) task for us
        task = json.loads(line)
        if import_ms is None:
            import_ms = (t_wait - task["spawn_time"]) * 1e3 - prewarm_ms
        # process_ready_ms = this process's start-up (torch import, CUDA init) + this task's model build
        task["waited_ms"] = (time.time() - task["spawn_time"]) * 1e3 - import_ms
        threads = task.get("threads")
        if threads:
            torch.set_num_threads(int(threads))
            os.environ["SIMLAT_THREADS"] = str(threads)
        try:
            result = TASKS[task["task"]](task)
        except Exception as err:  # noqa: BLE001 - recorded as the reason
            tb = traceback.format_exc(limit=4)
            print(tb, file=sys.stderr)
            result = {"status": "skipped", "reason": f"failed: {type(err).__name__}: {str(err)[:400]}"}
        if task.get("shared") and result.get("status") == "ok" and task["task"] == "variant":
            result.setdefault("notes", []).append(
                "measured in one worker process with the other shareable variants of this model, one after another "
                "(process_ready_ms: that process's start-up plus this variant's model build)")
        result["threads"] = torch.get_num_threads()
        _save(task["out"], result)
        print("@@done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
