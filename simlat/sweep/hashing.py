"""Stable content hashes of configurations, for ids and the per-configuration result cache.

The hash covers the whole resolved experiment (minus its name, description and sweep block) and
the bytes of every file it references (profiles, traces), so re-calibrating a profile or editing
any field recomputes exactly the configurations it changes, wherever the project is checked out.

:func:`code_fingerprint` hashes the source of the code a cached result depends on
(:data:`FINGERPRINTED`: the engine, workloads, profiles (with the serving profile and its fitted
stack), config, metrics and the sweep's evaluation and rate search); the result cache's key includes it, so an edited engine never serves results
computed by the old one (an edit anywhere in those files, even a comment, recomputes: safe, not
minimal).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from simlat.config import Experiment

_IGNORED = {"name", "description", "sweep"}

PACKAGE = Path(__file__).resolve().parents[1]
"""The simlat package folder."""

FINGERPRINTED = (
    "engine",
    "workload",
    "profiles",
    "config",
    "metrics.py",
    "dists.py",
    "api.py",
    "errors.py",
    "sweep/evaluate.py",
    "sweep/search.py",
    "sweep/rate.py",
    "endpoint/fit.py",
)
"""Source files and folders (relative to the package) whose code decides a cached sweep result."""


@functools.lru_cache(maxsize=4)
def code_fingerprint(package: Path = PACKAGE) -> str:
    """sha256 (16 hex digits) over the relative path and bytes of every ``.py`` file in
    :data:`FINGERPRINTED` under ``package``, in sorted order (computed once per process)."""
    files: list[Path] = []
    for entry in FINGERPRINTED:
        p = package / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.is_file() else []
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(package).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str | Path) -> str | None:
    """sha256 of a file's bytes, or None if it does not exist."""
    p = Path(path)
    if not p.is_file():
        return None
    st = p.stat()
    return _file_digest(str(p.resolve()), st.st_mtime_ns, st.st_size)


def _portable(node: Any) -> Any:
    """Replace each ``path`` value by the file's name and content digest."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "path" and isinstance(v, str):
                out[k] = {"name": Path(v).name, "sha256": file_digest(v)}
            else:
                out[k] = _portable(v)
        return out
    if isinstance(node, list):
        return [_portable(v) for v in node]
    return node


def digest(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-able object (keys sorted)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def config_hash(experiment: Experiment) -> str:
    """The configuration's stable id."""
    data = experiment.model_dump(mode="json", exclude=_IGNORED)
    if data.get("colocated", "") is None:
        del data["colocated"]
    fleet = data.get("fleet", {})
    # absent (or at their defaults): the ids of configurations without them stay as they were
    for name, default in (("autoscaling", None), ("gpus", None), ("instances_per_gpu", 1), ("contention", None)):
        if name in fleet and fleet[name] == default:
            del fleet[name]
    return digest(_portable(data))
