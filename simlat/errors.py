"""User-facing errors: each names the field, the value and the rule. The CLI prints them and exits 2."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class SimlatError(Exception):
    """An error in the user's input or environment, shown without a traceback (exit code 2)."""

    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted path of an error location, without pydantic's union tags (``arrivals.poisson.rate``)."""
    parts: list[str] = []
    cur = data
    for item in loc:
        if isinstance(cur, dict) and isinstance(item, str) and item not in cur and cur.get("kind") == item:
            continue  # discriminated-union tag
        if isinstance(cur, dict) and isinstance(item, str) and item not in cur and "[" in item:
            continue  # union member name like 'int' or 'function-after[...]'
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
        try:
            cur = cur[item]
        except (KeyError, IndexError, TypeError):
            cur = None
    return "".join(parts) or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes an annotation can hold (through Optional, unions, Annotated, lists)."""
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def valid_keys(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The field names allowed where an unknown key ``loc`` was found, walking ``model``'s fields
    (a discriminated union's tag in ``loc`` picks its member); None when the walk is lost."""
    candidates = [model] if model is not None else []
    for item in loc[:-1]:
        if not candidates:
            return None
        if isinstance(item, int):
            continue
        tagged = [m for m in candidates if getattr(m.model_fields.get("kind"), "default", None) == item]
        if tagged:
            candidates = tagged
            continue
        nxt: list[type] = []
        for m in candidates:
            field = m.model_fields.get(item)
            if field is not None:
                nxt += _models_in(field.annotation)
        candidates = nxt
    if len(candidates) != 1:
        return None
    return list(candidates[0].model_fields)


def format_validation_error(err: ValidationError, data: Any, model: Any = None) -> list[str]:
    """One bullet per field: ``path: value -> rule``; an unknown key lists the valid ones when
    ``model`` (the validated class) is given."""
    lines = []
    seen = set()
    for e in err.errors(include_url=False):
        path = _field_path(tuple(e["loc"]), data)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            line = f"{path}: unknown key (not part of the schema; check its spelling)"
            keys = valid_keys(model, tuple(e["loc"]))
            if keys:
                line += f"; valid keys here: {', '.join(keys)}"
        elif e["type"] == "missing":
            line = f"{path}: required field is missing"
        else:
            line = f"{path}: {_short(e.get('input'))} is invalid: {msg}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def validate_as(model_cls, data: Any, message: str):
    """``model_cls.model_validate(data)``, or a :class:`SimlatError` with ``message`` and one bullet
    per invalid field."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as err:
        raise SimlatError(message, format_validation_error(err, data, model_cls)) from None
