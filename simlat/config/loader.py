"""Read an experiment YAML into an :class:`Experiment`, with errors that name field, value and rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simlat.config.experiment import Experiment
from simlat.errors import SimlatError, validate_as
from simlat.profiles.resolve import resolve_path

_PATH_FIELDS = {"path"}


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
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SimlatError(f"{p}: invalid YAML{where}: {problem}") from None


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    p = Path(path)
    return parse_experiment(read_yaml(p), base_dir=p.resolve().parent, source=str(p))
