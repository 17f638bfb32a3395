"""Stable content hashes of configurations, for ids and the per-configuration result cache.

The hash covers the whole resolved experiment (minus its name, description and sweep block) and
the bytes of every file it references (profiles, traces), so re-calibrating a profile or editing
any field recomputes exactly the configurations it changes, wherever the project is checked out.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from simlat.config import Experiment

_IGNORED = {"name", "description", "sweep"}


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
    return digest(_portable(data))
