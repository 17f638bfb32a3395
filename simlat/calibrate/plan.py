"""What one calibration run measures: tasks over (model, variant, batch sizes), in measuring order.

Default batch sizes are powers of two up to a per-model, per-device maximum. Fixed-shape
variants (compiled per shape, CUDA graphs) measure every other size (their buckets) plus the
largest. Tasks run the shareable variants (eager, TorchScript) of each model first, in one worker
process per model (task ``group``), then the isolated ones (torchao, torch.ao quantization,
onnxruntime: one process each), then the compiling ones (one process each), then per model the
overhead components and the repeats of its shareable variants (one further process per model and
repeat), then the repeats of the isolated ones (each re-measures a few sizes for the spread between
processes), so a time limit cuts the least important work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simlat.calibrate.adaptive import coarse
from simlat.calibrate.budget import Budget
from simlat.calibrate.models import ModelRef
from simlat.calibrate.variants import VARIANTS
from simlat.errors import SimlatError

MAX_BATCH = {
    ("cuda", "encoder_small"): 1024,
    ("cuda", None): 4096,
    ("cpu", "encoder_small"): 32,
    ("cpu", None): 512,
}


def default_batch_sizes(device: str, model: ModelRef) -> list[int]:
    """Powers of two from 1 to the model's maximum on ``device``."""
    key = (device, model.name if model.kind == "builtin" else None)
    top = MAX_BATCH.get(key, MAX_BATCH[(device, None)])
    out, b = [], 1
    while b <= top:
        out.append(b)
        b *= 2
    return out


MAX_BATCH_SIZE = 1 << 20
"""The largest batch calibrate measures (a million items of a 512-float model is already 2 GB)."""


def parse_batch_sizes(text: str | None) -> list[int] | None:
    """``"1,8,64"`` -> [1, 8, 64] (sorted, unique), or a SimlatError naming the bad value."""
    if not text:
        return None
    try:
        sizes = sorted({int(t) for t in text.replace(" ", ",").split(",") if t})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 1:
        raise SimlatError(f"--batch-sizes: {text!r} is invalid: give positive integers separated by commas, e.g. 1,8,64")
    if sizes[-1] > MAX_BATCH_SIZE:
        raise SimlatError(f"--batch-sizes: {sizes[-1]} is too large: at most {MAX_BATCH_SIZE:,} items per batch")
    return sizes


def buckets(sizes: list[int], step: int = 2) -> list[int]:
    """Every ``step``-th size, plus the largest: the shapes a fixed-shape variant is prepared for."""
    out = sizes[::step]
    if sizes[-1] not in out:
        out.append(sizes[-1])
    return out


def _spread(sizes: list[int], k: int) -> list[int]:
    """``k`` sizes spread over the list: the first, the last, then the middle one."""
    if k >= len(sizes):
        return list(sizes)
    if k <= 0:
        return []
    picks = [sizes[0], sizes[-1]][:k]
    if k >= 3:
        picks.append(sizes[len(sizes) // 2])
    return sorted(set(picks))


@dataclass
class Task:
    """One worker process's job."""

    kind: str  # env | variant | components
    device: str
    model: ModelRef | None = None
    variant: str | None = None
    batch_sizes: list[int] = field(default_factory=list)
    idle_sizes: list[int] = field(default_factory=list)
    repeat: int = 0  # 0: the primary process of a variant
    weight: float = 1.0
    group: str | None = None  # consecutive tasks of one group run in one worker process
    adaptive: bool = False  # batch_sizes is a grid the worker refines adaptively (simlat.calibrate.adaptive)

    @property
    def label(self) -> str:
        """``model/variant`` (with the repeat number)."""
        if self.kind == "env":
            return "device peaks"
        assert self.model is not None, "only the env task has no model"
        name = f"{self.model.name}/{self.variant or 'overheads'}"
        return name + (f" (repeat {self.repeat})" if self.repeat else "")


ADAPTIVE_HEAVY_REPEAT_WEIGHT = 0.5
"""Weight of a compiling variant's second process in an adaptive run: it re-measures three sizes
with torch.compile's on-disk caches warm. Measured 2026-12-05 (H100 and H200, adaptive runs): 1.5-7 s
each for compile, CUDA graphs and max-autotune, where a weight of half the primary's (1.5-2.5) had
held back 20-60 s each from the primaries still tuning."""


def repeat_weight(spec, adaptive: bool) -> float:
    """The time weight of a variant's repeat process (see :data:`ADAPTIVE_HEAVY_REPEAT_WEIGHT`)."""
    if not spec.heavy:
        return 0.3
    return ADAPTIVE_HEAVY_REPEAT_WEIGHT if adaptive else spec.weight / 2


def make_tasks(device: str, models: list[ModelRef], variants: list[str], sizes: list[int] | None, budget: Budget,
               *, overheads: bool = True) -> list[Task]:
    """All tasks of a run, in measuring order (see the module docstring)."""
    shared: list[Task] = []
    isolated: list[Task] = []
    shared_repeats: list[Task] = []
    repeats: list[Task] = []
    heavy_last = sorted(variants, key=lambda v: VARIANTS[v].heavy)
    for v in heavy_last:
        spec = VARIANTS[v]
        for m in models:
            base = sizes or default_batch_sizes(device, m)
            vs = buckets(base, spec.bucket_step) if spec.fixed_shape(device) and not sizes else list(base)
            adaptive = budget.adaptive and not spec.fixed_shape(device) and len(vs) > 2
            idle = _spread(vs, budget.idle_sizes)
            group = f"{m.name}/0" if spec.shares_process else None
            (shared if group else isolated).append(Task("variant", device, m, v, vs, idle, 0, spec.weight, group, adaptive))
            for r in range(1, budget.processes):
                # repeats re-measure sizes the primary measures for sure (an adaptive primary: its coarse pass)
                rs = _spread(coarse(vs, budget.coarse_step) if adaptive else vs, budget.repeat_sizes)
                if adaptive and len(rs) > 2:  # the primary's order (ends first): a compile traces its dynamic graph at the same size
                    rs = [rs[0], rs[-1], *rs[1:-1]]
                t = Task("variant", device, m, v, rs, [], r, repeat_weight(spec, budget.adaptive), f"{m.name}/{r}" if group else None)
                (shared_repeats if group else repeats).append(t)
    comps = []
    for m in models if overheads else []:
        base = sizes or default_batch_sizes(device, m)
        comps.append(Task("components", device, m, None, buckets(base), [], 0, 0.5, f"{m.name}/{max(budget.processes - 1, 1)}"))
    order = {m.name: i for i, m in enumerate(models)}

    def rank(t: Task) -> int:
        assert t.model is not None
        return order[t.model.name]

    shared.sort(key=rank)  # stable: variant order kept within a model
    tail = sorted(comps + shared_repeats, key=lambda t: (rank(t), t.repeat, t.kind == "variant"))
    return [Task("env", device, weight=0.3), *shared, *isolated, *tail, *repeats]
