"""Read an experiment YAML into an :class:`Experiment`, with errors that name field, value and rule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from simlat.config.experiment import Experiment
from simlat.errors import SimlatError, validate_as
from simlat.profiles.resolve import resolve_path

_PATH_FIELDS = {"path"}

MAX_NODES = 1_000_000
"""The most values (mappings, lists and scalars, aliases counted each time they are used) an
experiment file may expand to; ``SIMLAT_MAX_YAML_NODES`` raises it. A few nested aliases can
otherwise expand to billions of values (the "billion laughs")."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (the last would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first + 1}; a key may appear once per mapping)",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _max_nodes() -> int:
    raw = os.environ.get("SIMLAT_MAX_YAML_NODES", "")
    try:
        return int(raw) if raw else MAX_NODES
    except ValueError:
        raise SimlatError(f"SIMLAT_MAX_YAML_NODES: {raw[:40]!r} must be an integer") from None


def check_size(data: Any, source: str, limit: int | None = None) -> None:
    """Refuse a document that expands (through aliases) to more than ``limit`` values; stops counting
    at the limit, so the check itself is cheap."""
    limit = _max_nodes() if limit is None else limit
    count = 0
    stack = [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            raise SimlatError(
                f"{source}: expands to more than {limit:,} values (nested aliases?); refusing to load it. "
                "Set SIMLAT_MAX_YAML_NODES to raise the limit."
            )
        if isinstance(node, dict):
            stack.extend(node.values())
            count += len(node)
        elif isinstance(node, list):
            stack.extend(node)


def _resolve_paths(node: Any, base: Path) -> Any:
    """Make relative ``path`` fields absolute against the experiment file's folder (the one path rule
    of :func:`simlat.profiles.resolve.resolve_path`), so an experiment runs from any working directory."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _PATH_FIELDS and isinstance(v, str) and not Path(v).is_absolute():
                out[k] = str(resolve_path(v, base))
            else:
                out[k] = _resolve_paths(v, base)
        return out
    if isinstance(node, list):
        return [_resolve_paths(v, base) for v in node]
    return node


def parse_experiment(data: Any, base_dir: Path | None = None, source: str = "experiment") -> Experiment:
    """Validate an already-parsed mapping."""
    if not isinstance(data, dict):
        raise SimlatError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    if base_dir is not None:
        data = _resolve_paths(data, base_dir)
    exp = validate_as(Experiment, data, f"{source} is not a valid experiment:")
    if exp.device and exp.service.kind == "profile":
        from simlat.profiles.device import warn_device_mismatch  # reads the profile only for kind: profile

        warn_device_mismatch(exp.service, exp.device, source)
    return exp


def read_yaml(path: str | Path) -> Any:
    """Load a YAML file or raise a :class:`SimlatError` naming the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise SimlatError(f"{p}: no such file")
    if p.is_dir():
        raise SimlatError(f"{p}: is a directory, expected a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SimlatError(f"{p}: not a UTF-8 text file (byte {err.start}: {err.object[err.start:err.start + 1]!r})") from None
    except OSError as err:
        raise SimlatError(f"{p}: cannot be read: {err.strerror or err}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise SimlatError(f"{p}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SimlatError(f"{p}: invalid YAML{where}: {problem}") from None
    check_size(data, str(p))
    return data


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    p = Path(path)
    return parse_experiment(read_yaml(p), base_dir=p.resolve().parent, source=str(p))
