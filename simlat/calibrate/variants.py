"""Ways of running a model: precisions, quantization, TorchScript, torch.compile, ONNX Runtime.

``VARIANTS`` maps each name to a :class:`VariantSpec` (what it is, where it runs, whether it runs
fixed shapes) and a ``prepare`` function that turns the fp32 model into a callable. Preparing
imports torch, so it runs only inside a worker process; a variant that cannot run raises
:class:`Unsupported` (recorded as skipped with the reason), any other failure is recorded too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from simlat.errors import SimlatError


class Unsupported(Exception):
    """The variant cannot run here (missing package, device feature, model kind); the message says why."""


@dataclass
class Prepared:
    """A variant ready to time: ``call(inputs)`` runs one batch, ``convert(cpu_inputs)`` places its inputs."""

    call: Callable
    convert: Callable
    timer: str  # "cuda_events" or "perf_counter"
    notes: list[str]


@dataclass(frozen=True)
class VariantSpec:
    """A variant: its devices, description, fixed-shape behaviour, roofline peak key and weight bytes."""

    name: str
    devices: tuple[str, ...]
    description: str
    prepare: Callable
    fixed_shape_on: tuple[str, ...] = ()
    peak: str = "fp32"
    bytes_per_param: float = 4.0
    heavy: bool = False  # compiles: give it more of the time budget
    bucket_step: int = 2  # fixed-shape variants measure every bucket_step-th default batch size (and the largest)
    isolate: bool = False  # may crash or leave the process in a bad state: always its own worker process
    weight: float = 1.0  # its primary process's share of a time-limited run, relative to a plain variant

    @property
    def shares_process(self) -> bool:
        """Whether it may run in one worker process with the other shareable variants of its model."""
        return not (self.isolate or self.heavy)

    def fixed_shape(self, device: str) -> bool:
        """Whether the variant runs only the shapes it was prepared for on ``device``."""
        return device in self.fixed_shape_on


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _cast_inputs(device: str, dtype=None):

    def convert(inputs):
        out = []
        for x in inputs:
            x = x.to(device)
            if dtype is not None and x.is_floating_point():
                x = x.to(dtype)
            out.append(x)
        return tuple(out)

    return convert


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls on or off, through the fp32_precision API where torch has it (never mixing the two APIs)."""
    import torch

    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(conv, "fp32_precision"):
            conv.fp32_precision = "tf32" if enabled else "ieee"
    else:
        matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def _timer(device: str) -> str:
    return "cuda_events" if device == "cuda" else "perf_counter"


def _need_module(model):
    if model.module is None:
        raise Unsupported("an ONNX file runs only under onnxruntime")


def _eager(model, device: str, dtype=None):
    _need_module(model)
    return _run_module(model.module, device, dtype)


def _run_module(module, device: str, dtype=None):
    import torch

    m = module.to(device)
    if dtype is not None:
        m = m.to(dtype)

    def call(inputs):
        with torch.inference_mode():
            return m(*inputs)

    return Prepared(call, _cast_inputs(device, dtype), _timer(device), [])


# ----------------------------------------------------------------------------------------------
# prepare functions: (model: LoadedModel, device, example_inputs) -> Prepared
# ----------------------------------------------------------------------------------------------


def prep_fp32(model, device, example):
    """fp32 eager, TF32 off."""
    set_tf32(False)
    return _eager(model, device)


def prep_tf32(model, device, example):
    """fp32 weights, TF32 tensor-core matmuls."""
    set_tf32(True)
    return _eager(model, device)


def prep_bf16(model, device, example):
    """Weights and activations in bfloat16."""
    import torch

    if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise Unsupported("this CPU has no native bf16 support (oneDNN reports none)")
    return _eager(model, device, torch.bfloat16)


def prep_fp16(model, device, example):
    """Weights and activations in float16."""
    import torch

    return _eager(model, device, torch.float16)


def prep_int8_dynamic(model, device, example):
    """torch.ao dynamic quantization of Linear layers to int8 (weights int8, activations quantized per batch)."""
    import warnings

    import torch

    _need_module(model)
    if isinstance(model.module, torch.jit.ScriptModule):
        raise Unsupported("a TorchScript module hides its layers from quantize_dynamic (nothing would be quantized); "
                          "give the model as a Python module or package.module:factory")
    if not any(isinstance(m, torch.nn.Linear) for m in model.module.modules()):
        raise Unsupported("the model has no torch.nn.Linear layer: dynamic int8 quantization would change nothing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError as err:
            raise Unsupported(f"torch.ao.quantization.quantize_dynamic is gone in torch {torch.__version__}") from err
        q = quantize_dynamic(model.module, {torch.nn.Linear}, dtype=torch.qint8)
    p = _run_module(q, device)
    p.notes.append("torch.ao.quantization is deprecated upstream (torchao is its successor)")
    return p


def prep_int8_static(model, device, example):
    """torch.ao FX static quantization, x86 backend, calibrated on 8 random batches (embeddings stay fp32)."""
    import warnings

    import torch

    _need_module(model)
    if "x86" not in torch.backends.quantized.supported_engines:
        raise Unsupported(f"no x86 quantized engine (engines: {torch.backends.quantized.supported_engines})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from torch.ao.quantization import get_default_qconfig_mapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        except ImportError as err:
            raise Unsupported(f"torch.ao FX quantization is gone in torch {torch.__version__}; torchao's PT2E flow is its successor") from err
        torch.backends.quantized.engine = "x86"
        qmap = get_default_qconfig_mapping("x86")
        qmap = qmap.set_object_type(torch.nn.EmbeddingBag, None).set_object_type(torch.nn.Embedding, None)
        prepared = prepare_fx(model.module, qmap, example)
        gen = torch.Generator().manual_seed(1)
        with torch.inference_mode():
            for _ in range(8):
                prepared(*model.make_inputs(example[0].shape[0], gen))
        q = convert_fx(prepared)
    p = _run_module(q, device)
    p.notes.append("torch.ao.quantization is deprecated upstream (torchao is its successor)")
    return p


def _torchao(model, device, kind: str):
    _need_module(model)
    try:
        import torchao
        from torchao.quantization import quantize_
    except Exception as err:  # noqa: BLE001 - any import failure means unavailable
        raise Unsupported(f"torchao is not installed or failed to import ({type(err).__name__}: {err})") from err
    import torch

    m = model.module.to(device).to(torch.bfloat16)
    try:
        if kind == "int8":
            from torchao.quantization import Int8WeightOnlyConfig as cfg
        else:
            from torchao.quantization import Float8WeightOnlyConfig as cfg
    except ImportError as err:
        raise Unsupported(f"torchao {torchao.__version__} has no {kind} weight-only config") from err
    quantize_(m, cfg())
    p = _run_module(m, device, torch.bfloat16)
    p.notes.append(f"torchao {torchao.__version__}, activations bf16")
    return p


def prep_ao_int8_weight_only(model, device, example):
    """torchao weight-only int8 (bf16 activations)."""
    return _torchao(model, device, "int8")


def prep_ao_fp8_weight_only(model, device, example):
    """torchao weight-only float8 (bf16 activations)."""
    return _torchao(model, device, "fp8")


def prep_torchscript(model, device, example):
    """torch.jit.trace + freeze + optimize_for_inference."""
    import warnings

    import torch

    _need_module(model)
    m = model.module.to(device)
    ex = _cast_inputs(device)(example)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = m if isinstance(m, torch.jit.ScriptModule) else torch.jit.trace(m, ex, check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def call(inputs):
        with torch.no_grad():
            return frozen(*inputs)

    return Prepared(call, _cast_inputs(device), _timer(device), ["torch.jit is deprecated upstream"])


def _compile(model, device, mode: str | None, dynamic):
    import torch

    _need_module(model)
    for key in ("recompile_limit", "cache_size_limit"):  # one compile per batch size must not hit the limit
        if hasattr(torch._dynamo.config, key):
            setattr(torch._dynamo.config, key, 64)
    set_tf32(False)
    m = model.module.to(device)
    compiled = torch.compile(m, mode=mode, dynamic=dynamic)
    mark = mode == "reduce-overhead"

    def call(inputs):
        with torch.inference_mode():
            if mark:
                torch.compiler.cudagraph_mark_step_begin()
            return compiled(*inputs)

    notes = ["dynamic=None: the first batch size compiles static, the second recompiles with a dynamic batch"
             " dimension that the later sizes share; first_call_ms of each point holds its compile or recording"]
    return Prepared(call, _cast_inputs(device), _timer(device), notes)


def prep_compile(model, device, example):
    """torch.compile default mode (fp32), automatic dynamic shapes (what a user gets by default)."""
    return _compile(model, device, None, None)


def prep_compile_max_autotune(model, device, example):
    """torch.compile mode max-autotune-no-cudagraphs (fp32), automatic dynamic shapes."""
    return _compile(model, device, "max-autotune-no-cudagraphs", None)


def prep_compile_cudagraphs(model, device, example):
    """torch.compile mode reduce-overhead (fp32): a CUDA graph recorded per batch size."""
    return _compile(model, device, "reduce-overhead", None)


def _export_onnx(model, example) -> str:
    import warnings

    import torch

    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="simlat-")
    os.close(fd)
    names = [f"x{i}" for i in range(len(example))]
    m = model.module.to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(m, example, path, dynamo=False, input_names=names, output_names=["y"],
                              dynamic_axes={n: {0: "batch"} for n in [*names, "y"]})
        except Exception:  # noqa: BLE001 - fall back to the dynamo exporter
            batch = torch.export.Dim("batch", min=1, max=65536)
            prog = torch.onnx.export(m, example, dynamo=True, dynamic_shapes=tuple({0: batch} for _ in example))
            assert prog is not None  # the dynamo exporter returns the program
            prog.save(path)
    return path


def prep_onnxruntime(model, device, example):
    """Exported to ONNX (batch dimension dynamic) and run by ONNX Runtime (CPU or CUDA provider)."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    want = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if want not in providers:
        raise Unsupported(f"onnxruntime {ort.__version__} has no {want} (providers: {', '.join(providers)})")
    path = model.onnx_path or _export_onnx(model, example)
    so = ort.SessionOptions()
    threads = int(os.environ.get("SIMLAT_THREADS", "0"))
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=[want])
    names = [i.name for i in sess.get_inputs()]

    def convert(inputs):
        return {n: x.numpy() for n, x in zip(names, inputs, strict=True)}

    def call(feed):
        return sess.run(None, feed)

    notes = [f"onnxruntime {ort.__version__}, {want}"]
    if device == "cuda":
        notes.append("timed with perf_counter: host inputs in, host outputs out (copies included)")
    return Prepared(call, convert, "perf_counter", notes)


_ALL = ("cpu", "cuda")
VARIANTS: dict[str, VariantSpec] = {
    v.name: v
    for v in [
        VariantSpec("fp32", _ALL, "eager fp32 (TF32 off)", prep_fp32),
        VariantSpec("tf32", ("cuda",), "eager fp32 weights, TF32 matmuls", prep_tf32, peak="tf32"),
        VariantSpec("bf16", _ALL, "eager bfloat16", prep_bf16, peak="bf16", bytes_per_param=2),
        VariantSpec("fp16", ("cuda",), "eager float16", prep_fp16, peak="bf16", bytes_per_param=2),
        VariantSpec("int8_dynamic", ("cpu",), "torch.ao dynamic int8 quantization of Linear", prep_int8_dynamic, bytes_per_param=1, isolate=True),
        VariantSpec("int8_static", ("cpu",), "torch.ao FX static int8 quantization (x86 backend)", prep_int8_static, bytes_per_param=1, isolate=True),
        VariantSpec("ao_int8_weight_only", ("cuda",), "torchao weight-only int8, bf16 activations", prep_ao_int8_weight_only, peak="bf16", bytes_per_param=1, isolate=True),
        VariantSpec("ao_fp8_weight_only", ("cuda",), "torchao weight-only float8, bf16 activations", prep_ao_fp8_weight_only, peak="bf16", bytes_per_param=1, isolate=True),
        VariantSpec("torchscript", _ALL, "torch.jit.trace + freeze + optimize_for_inference (fp32)", prep_torchscript),
        VariantSpec("compile", _ALL, "torch.compile default (fp32), automatic dynamic shapes", prep_compile, heavy=True, weight=3.0),
        VariantSpec("compile_max_autotune", ("cuda",), "torch.compile max-autotune-no-cudagraphs (fp32), automatic dynamic shapes", prep_compile_max_autotune, heavy=True, weight=5.0),
        VariantSpec("compile_cudagraphs", ("cuda",), "torch.compile reduce-overhead (fp32): a CUDA graph per batch size (pad to the recorded sizes)", prep_compile_cudagraphs, fixed_shape_on=("cuda",), heavy=True, bucket_step=1, weight=3.0),
        VariantSpec("onnxruntime", _ALL, "ONNX export + ONNX Runtime (fp32)", prep_onnxruntime, isolate=True),
    ]
}

DEFAULT_ORDER = {
    "cuda": ["fp32", "tf32", "bf16", "fp16", "torchscript", "onnxruntime", "ao_int8_weight_only", "ao_fp8_weight_only",
             "compile_cudagraphs", "compile", "compile_max_autotune"],
    "cpu": ["fp32", "bf16", "int8_dynamic", "int8_static", "torchscript", "onnxruntime", "compile"],
}
"""Default variants per device, in the order they are measured (cheap first, compiles last)."""


def select_variants(device: str, names: list[str] | None) -> list[str]:
    """The variants to measure on ``device``: the defaults, or ``names`` checked against the valid ones."""
    valid = DEFAULT_ORDER[device]
    if not names:
        return list(valid)
    out = []
    for n in names:
        if n not in VARIANTS:
            raise SimlatError(f"--variants: {n!r} is not a variant; valid on {device}: {', '.join(valid)}")
        if device not in VARIANTS[n].devices:
            raise SimlatError(f"--variants: {n!r} does not run on {device}; valid on {device}: {', '.join(valid)}")
        if n not in out:
            out.append(n)
    return out
