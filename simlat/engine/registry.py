"""Name -> object registries for the engine's pluggable parts (paths, balancers)."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


def by_name(what: str, *items: T) -> dict[str, T]:
    """``{item.name: item}`` in the given order; a duplicate name is an error, never a silent overwrite."""
    out: dict[str, T] = {}
    for item in items:
        if item.name in out:
            raise ValueError(f"two {what} named {item.name!r}")
        out[item.name] = item
    return out
