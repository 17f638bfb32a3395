"""The one base class every config model extends."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _admits(annotation: Any, wanted: tuple[type, ...]) -> bool:
    """Whether a field annotation (possibly a union, ``Annotated`` or ``Literal``) has one of ``wanted``
    as a member at its top level."""
    if annotation in wanted:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _admits(typing.get_args(annotation)[0], wanted)
    if origin in (typing.Union, types.UnionType):
        return any(_admits(a, wanted) for a in typing.get_args(annotation))
    return False


class StrictModel(BaseModel):
    """Frozen, strict config model.

    ``extra="forbid"``: a misspelled key is an error, never silently dropped (a dropped key keeps a
    stale config "working"). ``frozen=True``: sweeps can hash and copy configs safely.
    ``allow_inf_nan=False``: an infinite rate or a NaN mean is an error, not a run that prints nan.
    A boolean where a number is expected (``replicas: true``) is an error, not 1.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field is not None:
                    if _admits(field.annotation, (int, float)) and not _admits(field.annotation, (bool,)):
                        raise ValueError(f"{name}: must be a number, not the boolean {str(value).lower()}")
        return data
