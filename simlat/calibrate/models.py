"""The models calibration measures: three built in (no download) and the user's own.

Built in:
- ``mlp_ranker``: 512 features -> 1024 -> 1024 -> 1 score (the classic feed-ranking MLP).
- ``dlrm_small``: 13 dense features through a bottom MLP, 8 embedding-bag tables (20,000 rows of
  64, 4 ids per bag), concatenated into a top MLP (recommendation style).
- ``encoder_small``: a 2-layer transformer encoder (d=256, 4 heads, FFN 1024) over ``seq_len``
  token ids, mean-pooled into a 256-d embedding.

User models (``NAME_OR_PATH``): a TorchScript file (.pt, .ts, .jit), a ``torch.export`` program
(.pt2), an ONNX file (.onnx; onnxruntime variants only) or ``package.module:factory`` returning an
``nn.Module``; each takes one float32 input of shape ``[batch, *input_shape]``.

Everything that needs torch is imported inside functions: the parent process only needs the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from simlat.errors import SimlatError

BUILTIN = {
    "mlp_ranker": "feed-ranking MLP 512 -> 1024 -> 1024 -> 1",
    "dlrm_small": "DLRM-style: bottom MLP 13->256->128->64, 8 EmbeddingBag(20000x64, 4 ids/bag), top MLP 576->512->256->1",
    "encoder_small": "transformer encoder, 2 layers, d=256, 4 heads, FFN 1024, seq_len tokens, mean-pooled",
}
"""Built-in model names and what they are."""

USER_SUFFIXES = {".pt": "torchscript", ".ts": "torchscript", ".jit": "torchscript", ".pt2": "export", ".onnx": "onnx"}


@dataclass(frozen=True)
class ModelRef:
    """What the user asked for, resolved without torch: a built-in name or a user model and its input shape."""

    name: str
    kind: str  # builtin | torchscript | export | onnx | factory
    source: str
    input_shape: tuple[int, ...] = ()
    seq_len: int = 64
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain dict for a worker's task file."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "seq_len": self.seq_len,
            "description": self.description,
        }

    @staticmethod
    def from_json(d: dict) -> ModelRef:
        """Inverse of :meth:`to_json`."""
        return ModelRef(d["name"], d["kind"], d["source"], tuple(d["input_shape"]), d["seq_len"], d["description"])


def parse_input_shape(text: str | None) -> tuple[int, ...]:
    """``"512"`` or ``"3x224x224"`` (per item, without the batch dimension)."""
    if text is None:
        return ()
    try:
        dims = tuple(int(t) for t in text.lower().replace(",", "x").split("x") if t.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise SimlatError(f"--input-shape: {text!r} is invalid: give positive integers per item, e.g. 512 or 3x224x224")
    return dims


def check_importable(module: str, spec: str) -> None:
    """The factory's top-level package must be importable by the measuring processes, which start
    in safe-path mode (:mod:`simlat.launch`): installed, or on PYTHONPATH, never just the current folder."""
    import importlib.machinery
    import os
    import sys

    top = module.split(".")[0]
    if top in sys.builtin_module_names:
        return
    cwd = os.path.realpath(os.getcwd())
    path = [p for p in sys.path if p and os.path.realpath(p) != cwd]
    if os.environ.get("PYTHONPATH"):
        path += [p for p in os.environ["PYTHONPATH"].split(os.pathsep) if p]
    if importlib.machinery.PathFinder.find_spec(top, path) is None:
        raise SimlatError(
            f"--model: {spec!r}: module {top!r} cannot be imported (not installed, and not on PYTHONPATH; "
            "the measuring processes do not import from the current folder)"
        )


def resolve_model(name_or_path: str, input_shape: str | None = None, seq_len: int = 64) -> ModelRef:
    """A :class:`ModelRef` for ``--model`` or a :class:`SimlatError` listing the built-in models."""
    if seq_len < 1:
        raise SimlatError(f"--seq-len: {seq_len} is invalid: it must be >= 1")
    if name_or_path in BUILTIN:
        return ModelRef(name_or_path, "builtin", name_or_path, (), seq_len, BUILTIN[name_or_path])
    p = Path(name_or_path)
    if p.suffix in USER_SUFFIXES:
        if not p.is_file():
            raise SimlatError(f"--model: {name_or_path!r} is not a file")
        shape = parse_input_shape(input_shape)
        if not shape:
            raise SimlatError(f"--input-shape is required for a model file ({name_or_path})")
        kind = USER_SUFFIXES[p.suffix]
        return ModelRef(p.stem, kind, str(p.resolve()), shape, seq_len, f"{kind} file {p.name}, input float32 [B, {'x'.join(map(str, shape))}]")
    if ":" in name_or_path and not p.exists():
        mod, _, fn = name_or_path.partition(":")
        if mod and fn.isidentifier() and all(part.isidentifier() for part in mod.split(".")):
            shape = parse_input_shape(input_shape)
            if not shape:
                raise SimlatError(f"--input-shape is required for a factory model ({name_or_path})")
            return ModelRef(fn, "factory", name_or_path, shape, seq_len, f"{name_or_path}(), input float32 [B, {'x'.join(map(str, shape))}]")
    raise SimlatError(
        f"--model: {name_or_path!r} is not a known model: use a built-in ({', '.join(BUILTIN)}),"
        " a TorchScript (.pt/.ts), torch.export (.pt2) or ONNX (.onnx) file, or package.module:factory"
    )


# ----------------------------------------------------------------------------------------------
# torch side (workers only)
# ----------------------------------------------------------------------------------------------


def _mlp(sizes: list[int], last_act: bool = False):
    from torch import nn

    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _builtin_module(name: str, seq_len: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class MLPRanker(nn.Module):
        """512 -> 1024 -> 1024 -> 1."""

        def __init__(self):
            super().__init__()
            self.net = _mlp([512, 1024, 1024, 1])

        def forward(self, x):
            return self.net(x)

    class DLRMSmall(nn.Module):
        """Bottom MLP on dense features, embedding bags on sparse ids, concatenated into a top MLP."""

        def __init__(self, dense: int = 13, tables: int = 8, rows: int = 20000, dim: int = 64):
            super().__init__()
            self.bottom = _mlp([dense, 256, 128, dim], last_act=True)
            self.emb = nn.ModuleList(nn.EmbeddingBag(rows, dim, mode="sum") for _ in range(tables))
            self.top = _mlp([dim * (tables + 1), 512, 256, 1])

        def forward(self, dense, sparse):
            x = self.bottom(dense)
            embs = [e(sparse[:, i, :]) for i, e in enumerate(self.emb)]
            return self.top(torch.cat([x, *embs], dim=1))

    class EncoderLayer(nn.Module):
        """Pre-norm attention (scaled_dot_product_attention) and GELU feed-forward."""

        def __init__(self, d: int, heads: int, ff: int):
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.ff1 = nn.Linear(d, ff)
            self.ff2 = nn.Linear(ff, d)

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, s, d)
            x = x + self.proj(a)
            return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))

    class EncoderSmall(nn.Module):
        """Token and position embeddings, 2 encoder layers, mean pooling."""

        def __init__(self, vocab: int = 8000, d: int = 256, heads: int = 4, ff: int = 1024, layers: int = 2, max_len: int = 4096):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.randn(max_len, d) * 0.02)
            self.layers = nn.ModuleList(EncoderLayer(d, heads, ff) for _ in range(layers))
            self.ln = nn.LayerNorm(d)

        def forward(self, ids):
            x = self.tok(ids) + self.pos[: ids.shape[1]]
            for layer in self.layers:
                x = layer(x)
            return self.ln(x).mean(dim=1)

    return {"mlp_ranker": MLPRanker, "dlrm_small": DLRMSmall, "encoder_small": EncoderSmall}[name]()


class LoadedModel:
    """A model ready to measure: the fp32 module (None for ONNX files), an input maker and its sizes."""

    def __init__(self, ref: ModelRef):
        import torch

        self.ref = ref
        self.onnx_path: str | None = None
        torch.manual_seed(0)
        if ref.kind == "builtin":
            self.module = _builtin_module(ref.name, ref.seq_len).eval()
        elif ref.kind == "torchscript":
            self.module = torch.jit.load(ref.source, map_location="cpu").eval()
        elif ref.kind == "export":
            self.module = torch.export.load(ref.source).module()
        elif ref.kind == "onnx":
            self.module = None
            self.onnx_path = ref.source
        elif ref.kind == "factory":
            import importlib

            mod, _, fn = ref.source.partition(":")
            self.module = getattr(importlib.import_module(mod), fn)().eval()
        else:
            raise SimlatError(f"model kind {ref.kind!r} is unknown")

    def make_inputs(self, batch: int, gen) -> tuple:
        """Random CPU inputs for a batch (float32 features, int64 ids), from torch generator ``gen``."""
        import torch

        name = self.ref.name if self.ref.kind == "builtin" else None
        if name == "mlp_ranker":
            return (torch.randn(batch, 512, generator=gen),)
        if name == "dlrm_small":
            return (torch.randn(batch, 13, generator=gen), torch.randint(0, 20000, (batch, 8, 4), generator=gen))
        if name == "encoder_small":
            return (torch.randint(0, 8000, (batch, self.ref.seq_len), generator=gen),)
        return (torch.randn(batch, *self.ref.input_shape, generator=gen),)

    def input_names(self) -> list[str]:
        """Per-item input descriptions for the profile."""
        name = self.ref.name if self.ref.kind == "builtin" else None
        if name == "mlp_ranker":
            return ["float32[512]"]
        if name == "dlrm_small":
            return ["float32[13] dense", "int64[8x4] sparse ids"]
        if name == "encoder_small":
            return [f"int64[{self.ref.seq_len}] token ids"]
        return [f"float32[{'x'.join(map(str, self.ref.input_shape))}]"]

    def dense_param_bytes(self, bytes_per_param: float) -> float:
        """Bytes of the weights a batch must read at least once, embedding tables excluded (rows are counted per lookup)."""
        from torch import nn

        if self.module is None:
            return 0.0
        emb = {id(p) for m in self.module.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for p in m.parameters()}
        n = sum(p.numel() for p in self.module.parameters() if id(p) not in emb)
        return n * bytes_per_param

    def lookup_bytes_per_item(self, bytes_per_elem: float) -> float:
        """Embedding rows gathered per item."""
        name = self.ref.name if self.ref.kind == "builtin" else None
        if name == "dlrm_small":
            return 8 * 4 * 64 * bytes_per_elem
        if name == "encoder_small":
            return self.ref.seq_len * 256 * bytes_per_elem
        return 0.0
