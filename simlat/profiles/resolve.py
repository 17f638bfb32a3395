"""Where a profile file is, and reading it once: one path rule, one cached loader, one kind registry.

The path rule
    A relative profile path resolves against the folder of the file that names it: the experiment
    file's folder (:func:`simlat.config.load_experiment` and the sweep grid apply this when they read
    the file). A path given without a naming file (a config built in Python, a command-line argument)
    resolves against the working directory. Nothing else is searched: the same text always means the
    same file.

Kinds
    Each profile kind (the service profile of ``simlat calibrate``, the Redis profile of
    ``simlat calibrate --cache``, the serving-stack profile of ``simlat calibrate --endpoint``, the GPU contention profile of
    ``simlat calibrate --contention``) is
    one :class:`ProfileKind` entry in :data:`KINDS`, registered with :func:`register` by the module
    that defines it (listed in :data:`KIND_MODULES`). A file names its
    kind by a top-level ``kind`` (or ``format``, or ``schema``) string equal to one of the kind's ``tags``; files
    written before kinds existed are recognised by the kind's ``legacy`` predicate (the service
    profile: a ``schema_version`` and no tag). Each kind's ``parse`` validates and versions its own
    schema.

Loading
    :func:`load` reads, validates and caches a profile per (resolved path, modification time, size),
    so a file re-written during a session is re-read and an unchanged one is parsed once. Profile
    models are frozen, so the cached object is safe to share.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from simlat.errors import SimlatError


def resolve_path(path: str | Path, base_dir: str | Path | None = None) -> Path:
    """The one rule: absolute as given; relative against ``base_dir`` (the folder of the file that
    names the path), or against the working directory without one. The file need not exist; the
    result is absolute and normalised."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (Path(base_dir) if base_dir is not None else Path.cwd()) / p
    return p.resolve()


@dataclass(frozen=True)
class ProfileKind:
    """One kind of profile file.

    ``name``: the registry key (``service``, ``redis``). ``tags``: values of a file's top-level
    ``kind`` or ``format`` that select this kind. ``parse(data, source)``: validate a parsed JSON
    object (refusing unknown versions) and return the model. ``legacy``: recognises untagged files
    of this kind written before tags existed.
    """

    name: str
    tags: frozenset[str]
    parse: Callable[[Any, str], BaseModel]
    legacy: Callable[[dict[str, Any]], bool] | None = None


KINDS: dict[str, ProfileKind] = {}
"""Registered profile kinds by name (see :func:`register`)."""

KIND_MODULES = (
    "simlat.profiles.schema",
    "simlat.profiles.redis",
    "simlat.profiles.serving",
    "simlat.profiles.contention",
)
"""The modules that register the built-in kinds (the service, Redis, serving-stack and GPU contention profiles),
imported on the first detection so that any profile file loads whichever module is imported."""


def _import_kinds() -> None:
    import importlib

    for name in KIND_MODULES:
        importlib.import_module(name)


def register(kind: ProfileKind) -> ProfileKind:
    """Add a kind; a name or tag that is already taken is an error, never silently replaced."""
    if kind.name in KINDS:
        raise ValueError(f"profile kind {kind.name!r} is already registered")
    taken = {t: k.name for k in KINDS.values() for t in k.tags}
    for tag in kind.tags:
        if tag in taken:
            raise ValueError(f"profile tag {tag!r} of kind {kind.name!r} is already used by kind {taken[tag]!r}")
    KINDS[kind.name] = kind
    return kind


def _known() -> str:
    return ", ".join(sorted(t for k in KINDS.values() for t in k.tags)) or "(none)"


def detect_kind(data: Any, source: str = "profile") -> ProfileKind:
    """The registered kind a parsed file belongs to, from its ``kind``/``format`` tag or legacy shape."""
    if not isinstance(data, dict):
        raise SimlatError(f"{source}: not a simlat profile (the top level must be a JSON object)")
    _import_kinds()
    for key in ("kind", "format", "schema"):
        tag = data.get(key)
        if isinstance(tag, str):
            for k in KINDS.values():
                if tag in k.tags:
                    return k
            raise SimlatError(f"{source}: {key} {tag!r} is not a known profile kind (known: {_known()})")
    for k in KINDS.values():
        if k.legacy is not None and k.legacy(data):
            return k
    raise SimlatError(f"{source}: not a simlat profile: no 'kind', 'format' or 'schema' naming one of {_known()}")


def parse(data: Any, kind: str | None = None, source: str = "profile") -> BaseModel:
    """Validate a parsed profile as ``kind`` (a registered name), or as the kind the data names."""
    found = detect_kind(data, source)
    if kind is not None and found.name != kind:
        raise SimlatError(f"{source}: is a {found.name} profile, expected a {kind} profile")
    return found.parse(data, source)


def read_json(path: Path) -> Any:
    """The parsed JSON of a file, or a :class:`SimlatError` naming the file and the problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SimlatError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError:
        raise SimlatError(f"{path}: not a UTF-8 JSON profile file") from None
    except OSError as err:
        raise SimlatError(f"{path}: cannot be read: {err.strerror or err}") from None
    except RecursionError:
        raise SimlatError(f"{path}: invalid JSON: nested too deeply") from None


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int, size: int, kind: str | None) -> BaseModel:
    return parse(read_json(path), kind, str(path))


def load(path: str | Path, kind: str | None = None, *, base_dir: str | Path | None = None, field: str = "path") -> BaseModel:
    """Read and validate the profile at ``path`` (resolved by :func:`resolve_path`), cached per file
    and modification time. ``kind`` requires a kind; ``field`` names the config field in errors."""
    p = resolve_path(path, base_dir)
    if not p.is_file():
        where = "" if str(p) == str(path) else f" (no file at {p}: a relative path resolves against the experiment file's folder)"
        raise SimlatError(f"{field}: {str(path)!r} is not a profile file{where}")
    st = p.stat()
    return _load(p, st.st_mtime_ns, st.st_size, kind)
