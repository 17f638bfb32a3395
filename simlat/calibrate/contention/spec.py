"""What a contention run measures: members (model/variant@batch), the sets that run at once, the modes."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from simlat.calibrate.models import BUILTIN
from simlat.calibrate.variants import DEFAULT_ORDER, VARIANTS
from simlat.errors import SimlatError

MODES = ("processes", "mps", "streams")
"""processes: k processes, each its own CUDA context (time slicing); mps: the same under CUDA MPS;
streams: one process, k CUDA streams driven by k Python threads."""

MAX_INSTANCES = 8


@dataclass(frozen=True)
class Member:
    """One model instance of a set: a built-in model under a variant at a batch size."""

    model: str
    variant: str
    batch_size: int

    @property
    def label(self) -> str:
        """``mlp_ranker/bf16@32``: the SPEC syntax."""
        return f"{self.model}/{self.variant}@{self.batch_size}"

    def to_json(self) -> dict:
        """The member as the contention profile writes it."""
        return {"model": self.model, "variant": self.variant, "batch_size": self.batch_size}


@dataclass(frozen=True)
class MeasureSet:
    """Members that run at once (k = len(members))."""

    members: tuple[Member, ...]

    @property
    def k(self) -> int:
        """How many instances run at once."""
        return len(self.members)

    @property
    def label(self) -> str:
        """``mlp_ranker/bf16@32 x3`` for k copies of one member, ``a + b`` for a mixed set."""
        if len(set(self.members)) == 1:
            return f"{self.members[0].label} x{self.k}"
        return " + ".join(m.label for m in self.members)


def parse_member(text: str, device: str) -> Member:
    """``model/variant@batch`` checked against the built-in models and the device's variants."""
    part = text.strip()
    rule = "give model/variant@batch, e.g. mlp_ranker/bf16@32"
    name, slash, rest = part.partition("/")
    variant, at, batch = rest.partition("@")
    if not slash or not at or not name or not variant or not batch:
        raise SimlatError(f"--contention: {part!r} is invalid: {rule}")
    if name not in BUILTIN:
        raise SimlatError(f"--contention: {part!r}: model {name!r} is not a built-in model; valid: {', '.join(BUILTIN)}")
    valid = DEFAULT_ORDER[device]
    if variant not in VARIANTS or device not in VARIANTS[variant].devices:
        raise SimlatError(f"--contention: {part!r}: variant {variant!r} does not run on {device}; valid: {', '.join(valid)}")
    try:
        size = int(batch)
    except ValueError:
        size = 0
    if size < 1:
        raise SimlatError(f"--contention: {part!r}: batch size {batch!r} is invalid: it must be an integer >= 1")
    return Member(name, variant, size)


def parse_spec(text: str, device: str) -> list[Member]:
    """A comma-separated list of members (each given once)."""
    parts = [t for t in text.split(",") if t.strip()]
    if not parts:
        raise SimlatError(f"--contention: {text!r} is invalid: give model/variant@batch entries, e.g. mlp_ranker/bf16@32")
    out: list[Member] = []
    for p in parts:
        m = parse_member(p, device)
        if m in out:
            raise SimlatError(f"--contention: {m.label!r} is given twice")
        out.append(m)
    return out


def parse_instances(text: str) -> list[int]:
    """``1,2,3,4``: how many copies of each member run at once (1 is always measured: it is the alone time)."""
    out = []
    for t in (x.strip() for x in text.split(",")):
        if not t:
            continue
        try:
            k = int(t)
        except ValueError:
            k = 0
        if not 1 <= k <= MAX_INSTANCES:
            raise SimlatError(f"--instances: {t!r} is invalid: each count must be an integer from 1 to {MAX_INSTANCES}")
        if k not in out:
            out.append(k)
    if not out:
        raise SimlatError(f"--instances: {text!r} is invalid: give counts such as 1,2,3,4")
    return sorted(set(out) | {1})


def parse_modes(text: str) -> list[str]:
    """Comma-separated modes, in the order given."""
    out = []
    for t in (x.strip() for x in text.split(",")):
        if not t:
            continue
        if t not in MODES:
            raise SimlatError(f"--modes: {t!r} is not a mode; valid: {', '.join(MODES)}")
        if t not in out:
            out.append(t)
    if not out:
        raise SimlatError(f"--modes: {text!r} is invalid: give one or more of {', '.join(MODES)}")
    return out


def make_sets(members: list[Member], instances: list[int], pairs: bool) -> list[MeasureSet]:
    """k copies of each member for each k in ``instances``, then (``pairs``) every mixed pair."""
    sets = [MeasureSet((m,) * k) for m in members for k in instances]
    if pairs:
        if len(members) < 2:
            raise SimlatError("--pairs: needs at least two entries in --contention")
        sets += [MeasureSet((a, b)) for a, b in combinations(members, 2)]
    return sets
