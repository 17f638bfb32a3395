"""User-facing errors: each names the field, the value and the rule. The CLI prints them and exits 2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic is imported lazily: the measuring processes on a GPU host lack it
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


def _is_union_member(item: Any, cur: Any) -> bool:
    """Whether a location item is pydantic's name for a union member rather than a key of the input."""
    if not isinstance(item, str) or (isinstance(cur, dict) and item in cur):
        return False
    if isinstance(cur, dict) and cur.get("kind") == item:
        return True  # discriminated-union tag
    return "[" in item or "-" in item or item[:1].isupper() or item in ("int", "float", "str", "bool", "list", "dict", "none")


def _walk(loc: tuple[Any, ...], data: Any) -> tuple[str, int | None, Any]:
    """Dotted path of an error location without pydantic's union member names, the index of the
    first union member name in ``loc`` (None if none) and the input found at the path."""
    parts: list[str] = []
    cur = data
    member_at = None
    for i, item in enumerate(loc):
        if _is_union_member(item, cur):
            if member_at is None and not (isinstance(cur, dict) and cur.get("kind") == item):
                member_at = i
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
        try:
            cur = cur[item]
        except (KeyError, IndexError, TypeError):
            cur = None
    return "".join(parts) or "(top level)", member_at, cur


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted path of an error location, without pydantic's union tags (``arrivals.poisson.rate``)."""
    return _walk(loc, data)[0]


def excerpt(text: str, most: int = 40) -> str:
    """A short, escaped quotation of untrusted text (a file's content, a user's string): its repr,
    cut to ``most`` characters, so no control character or long line reaches the terminal."""
    text = str(text)
    cut = text[:most]
    return repr(cut) + ("..." if len(text) > most else "")


def _short(value: Any) -> str:
    """A value as quoted in a message: its repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_ERRORS = {
    "model_type", "dict_type", "model_attributes_type", "int_type", "int_parsing", "float_type", "float_parsing",
    "string_type", "bool_type", "bool_parsing", "list_type", "tuple_type", "literal_error", "none_required",
    "is_instance_of", "path_type", "int_from_float", "union_tag_not_found", "union_tag_invalid",
}

_TYPE_WORDS = {"constrained-int": "a positive integer", "int": "an integer", "constrained-float": "a number",
               "float": "a number", "str": "a string", "none": "null", "bool": "true or false",
               "literal": "one of the listed words"}


def _member_word(name: str) -> str:
    if name.startswith("tagged-union") or name[:1].isupper():
        return "a mapping with a kind"
    for key, word in _TYPE_WORDS.items():
        if name.startswith(key):
            return word
    return name.split("[", 1)[0]


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation admits (through Annotated, unions, Optional)."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _kinds_at(root: Any, loc: tuple[Any, ...]) -> list[str]:
    """The ``kind`` values allowed at ``loc`` under the model class ``root`` (empty if none is found)."""
    import typing

    from pydantic import BaseModel

    current = [root]
    for item in loc:
        nxt = []
        for t in (u for c in current for u in _unwrap(c)):
            origin = typing.get_origin(t)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(item, str) and item in t.model_fields:
                nxt.append(t.model_fields[item].annotation)
            elif isinstance(item, int) and origin in (list, tuple) and typing.get_args(t):
                nxt.append(typing.get_args(t)[0])
            elif isinstance(item, str) and origin is dict and typing.get_args(t):
                nxt.append(typing.get_args(t)[1])
        current = nxt
    kinds = []
    for t in (u for c in current for u in _unwrap(c)):
        if isinstance(t, type) and issubclass(t, BaseModel) and "kind" in t.model_fields:
            for k in typing.get_args(t.model_fields["kind"].annotation):
                if isinstance(k, str) and k not in kinds:
                    kinds.append(k)
    return kinds


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


def format_validation_error(err: ValidationError, data: Any, root: Any = None) -> list[str]:
    """One bullet per field: ``path: value -> rule``.

    Errors from the members of a union (``PositiveInt | distribution``) are merged: a member whose
    type matched explains the failure; when none matched, the line lists what the field accepts.
    ``root`` (the model class validated) lets a missing ``kind`` list the valid kinds.
    """
    raw = err.errors(include_url=False)
    groups: dict[tuple, list[dict]] = {}
    for e in raw:
        path, member_at, _ = _walk(tuple(e["loc"]), data)
        key = tuple(e["loc"][:member_at]) if member_at is not None else ("__single__", id(e))
        groups.setdefault(key, []).append(e)
    chosen: list[dict] = []
    for key, errs in groups.items():
        if key[:1] == ("__single__",):
            chosen.extend(errs)
            continue
        meaningful = [e for e in errs if e["type"] not in _TYPE_ERRORS]
        if meaningful:
            chosen.extend(meaningful)
            continue
        members = []
        for e in errs:
            _, member_at, _ = _walk(tuple(e["loc"]), data)
            word = _member_word(str(e["loc"][member_at]))
            if word not in members:
                members.append(word)
        merged = dict(errs[0])
        merged["loc"] = key
        merged["type"] = "union_mismatch"
        merged["msg"] = "expected " + " or ".join(members)
        chosen.append(merged)
    lines = []
    seen = set()
    for e in chosen:
        loc = tuple(e["loc"])
        path, _, at = _walk(loc, data)
        msg = e["msg"].removeprefix("Value error, ")
        value = e.get("input")
        if e["type"] == "union_mismatch":
            value = at
        if e["type"] == "value_error" and isinstance(value, dict) and ": must be a number, not the boolean" in msg:
            name = msg.split(":", 1)[0]
            path = f"{path}.{name}" if path != "(top level)" else name
            value, msg = value.get(name), msg.split(": ", 1)[1]
        if e["type"] == "extra_forbidden":
            line = f"{path}: unknown key (not part of the schema; check its spelling)"
            keys = valid_keys(root, tuple(e["loc"]))
            if keys:
                line += f"; valid keys here: {', '.join(keys)}"
        elif e["type"] == "missing":
            line = f"{path}: required field is missing"
        elif e["type"] == "union_tag_not_found":
            kinds = _kinds_at(root, loc) if root is not None else []
            listed = f" (one of: {', '.join(kinds)})" if kinds else ""
            line = f"{path}.kind: required field is missing{listed}"
        else:
            line = f"{path}: {_short(value)} is invalid: {msg}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def validate_as(model_cls, data: Any, message: str):
    """``model_cls.model_validate(data)``, or a :class:`SimlatError` with ``message`` and one bullet
    per invalid field."""
    from pydantic import ValidationError

    try:
        return model_cls.model_validate(data)
    except ValidationError as err:
        raise SimlatError(message, format_validation_error(err, data, model_cls)) from None
