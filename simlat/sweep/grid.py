"""Grid expansion: one validated :class:`Configuration` per point of ``cases x grid``.

Each point is the base experiment with the swept dotted paths set, validated against the full
schema. A bad path or value raises a :class:`SimlatError` naming the grid entry, the value and the
rule that rejected it.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simlat.config import Experiment
from simlat.config.loader import _resolve_paths
from simlat.errors import SimlatError, format_validation_error
from simlat.profiles.resolve import resolve_path
from simlat.sweep.hashing import config_hash


@dataclass(frozen=True)
class Configuration:
    """One point of the sweep: its stable id, the swept values and the resolved experiment."""

    config_id: str
    params: dict[str, Any]
    experiment: Experiment
    label: str


def set_path(data: dict, path: str, value: Any) -> dict:
    """A deep copy of ``data`` with the dotted ``path`` set to ``value`` (missing or null parents become {})."""
    out = copy.deepcopy(data)
    *parents, leaf = path.split(".")
    node = out
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = copy.deepcopy(value)
    return out


def _resolve_value(path: str, value: Any, base_dir: Path | None) -> Any:
    """Relative file paths in swept values are relative to the experiment file, like the file's own."""
    if base_dir is None:
        return value
    if path.rsplit(".", 1)[-1] == "path" and isinstance(value, str) and not Path(value).is_absolute():
        return str(resolve_path(value, base_dir))
    return _resolve_paths(value, base_dir)


def short_value(value: Any) -> str:
    """A value as a table cell: files by stem, blocks by kind, whole floats as ints."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and ("/" in value or "\\" in value):
        value = Path(value).stem
    if isinstance(value, dict):
        value = value.get("kind", "{...}")
    return str(value)


def label_of(params: dict[str, Any]) -> str:
    """Short human name: ``max_batch_size=64 max_wait_ms=2 replicas=4``; a leaf name that two paths
    share keeps its parent (``fleet.gpus=2 ads.gpus=1``)."""
    leaves = [p.rsplit(".", 1)[-1] for p in params]
    names = [".".join(p.split(".")[-2:]) if leaves.count(leaf) > 1 else leaf for p, leaf in zip(params, leaves, strict=True)]
    return " ".join(f"{n}={short_value(v)}" for n, v in zip(names, params.values(), strict=True)) or "base"


def _validate(data: dict, where: str, value: Any) -> Experiment:
    try:
        return Experiment.model_validate(data)
    except ValidationError as err:
        raise SimlatError(
            f"{where}: value {value!r} gives an invalid experiment:", format_validation_error(err, data, Experiment)
        ) from None


def _check_entries(base: dict, experiment: Experiment, base_dir: Path | None) -> None:
    """Each grid value alone must give a valid experiment, so errors name exactly one entry."""
    sweep = experiment.sweep
    assert sweep is not None, "only a sweep has grid entries"
    for path, values in sweep.grid.items():
        for i, raw in enumerate(values):
            value = _resolve_value(path, raw, base_dir)
            data = set_path(base, path, value)
            if sweep.cases:  # a grid value may only make sense with a case's values
                data = _apply(data, sweep.cases[0], base_dir)
            _validate(data, f"sweep.grid.{path}[{i}]", raw)
    for i, case in enumerate(sweep.cases):
        _validate(_apply(base, case, base_dir), f"sweep.cases[{i}]", case)


def _apply(data: dict, assignment: dict[str, Any], base_dir: Path | None) -> dict:
    for path, value in assignment.items():
        data = set_path(data, path, _resolve_value(path, value, base_dir))
    return data


def _base(experiment: Experiment) -> dict:
    """The experiment as data for the grid to set paths in. With ``fleet.gpus`` (given or swept) the
    replica count follows ``gpus x instances_per_gpu``, so it is left out and recomputed at each point."""
    base = experiment.model_dump(mode="json", exclude={"sweep"})
    sweep = experiment.sweep
    swept = set(sweep.params) if sweep is not None else set()
    if experiment.fleet.gpus is not None or "fleet.gpus" in swept:
        base["fleet"].pop("replicas", None)
        if base["fleet"].get("gpus") is None:  # each grid entry is checked alone: give it a GPU count
            first = sweep.grid.get("fleet.gpus") or [sweep.cases[0]["fleet.gpus"]]  # type: ignore[union-attr]
            base["fleet"]["gpus"] = first[0]
    return base


def expand(experiment: Experiment, base_dir: Path | None = None) -> list[Configuration]:
    """All configurations of ``experiment.sweep`` (the base experiment alone when there is none).

    ``base_dir``: the experiment file's folder, against which relative paths in values resolve.
    """
    base = _base(experiment)
    sweep = experiment.sweep
    if sweep is None:
        exp = Experiment.model_validate(base)
        return [Configuration(config_hash(exp), {}, exp, "base")]
    _check_entries(base, experiment, base_dir)
    cases = sweep.cases or [{}]
    grid_paths = list(sweep.grid)
    configs: list[Configuration] = []
    seen: dict[str, int] = {}
    for case in cases:
        for combo in itertools.product(*(sweep.grid[p] for p in grid_paths)):
            assignment = {**case, **dict(zip(grid_paths, combo, strict=True))}
            data = _apply(base, assignment, base_dir)
            where = "sweep: combination " + ", ".join(f"{p}={v!r}" for p, v in assignment.items())
            exp = _validate(data, where, assignment)
            cid = config_hash(exp)
            if cid in seen:
                raise SimlatError(
                    f"{where}: gives the same configuration as combination #{seen[cid] + 1}",
                    ["each configuration of a sweep must differ (duplicate grid values?)"],
                )
            seen[cid] = len(configs)
            configs.append(Configuration(cid, assignment, exp, label_of(assignment)))
    return configs


def check_profiles(configs: list[Configuration]) -> None:
    """Refuse, before anything runs, configurations whose profile lacks the model, variant or
    components they ask for (a mistyped ``bf61`` in a grid). Each distinct problem is listed once
    with the swept values that lead to it."""
    import warnings

    from simlat.profiles.sampling import profile_curves

    problems: dict[str, list[str]] = {}
    seen: set[tuple] = set()
    for c in configs:
        svc = c.experiment.service
        if svc.kind != "profile":
            continue
        key = (str(svc.path), svc.model, svc.variant, svc.condition, tuple(svc.add_components or ()))
        if key in seen:
            continue
        seen.add(key)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                profile_curves(svc)
        except SimlatError as err:
            where = ", ".join(f"{p}={short_value(v)}" for p, v in c.params.items()) or "the base experiment"
            problems.setdefault(str(err), []).append(where)
    if problems:
        lines = [f"{msg} (with {'; '.join(wheres[:3])}{' ...' if len(wheres) > 3 else ''})" for msg, wheres in problems.items()]
        raise SimlatError(f"sweep: {len(problems)} problem(s) found before running; fix the grid:", lines)
