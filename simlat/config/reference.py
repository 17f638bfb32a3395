"""The experiment file's reference, generated from the pydantic models: ``simlat schema`` (JSON
Schema, for editors) and ``docs/schema.md`` (every block and field: type, default, unit, meaning,
allowed kinds). A test keeps the Markdown current: regenerate it with
``simlat schema --markdown > docs/schema.md``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from simlat.config import Experiment

UNITS = {"_ms": "ms", "_rps": "requests/s", "_s": "s", "_bytes": "bytes", "_fraction": "fraction 0-1"}


def json_schema() -> dict:
    """The JSON Schema of an experiment file."""
    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "simlat experiment"
    return schema


def _unit(name: str) -> str:
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return unit
    return ""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return name.lower()


def _type(node: dict) -> str:
    """A short type string with links to model sections."""
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        return f"[{name}](#{_anchor(name)})"
    if "discriminator" in node:
        kinds = sorted(node["discriminator"]["mapping"].items())
        return "one of kind: " + ", ".join(f"[`{k}`](#{_anchor(_ref_name(v))})" for k, v in kinds)
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [_type(n) for n in node[key]]
            return " or ".join(dict.fromkeys(p for p in parts if p))
    if "enum" in node:
        return " | ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    t = node.get("type")
    if t == "array":
        items = node.get("items")
        if isinstance(items, dict) and items:
            return f"list of {_type(items)}"
        if "prefixItems" in node:
            return "(" + ", ".join(_type(n) for n in node["prefixItems"]) + ")"
        return "list"
    if t == "object":
        add = node.get("additionalProperties")
        if isinstance(add, dict) and add:
            return f"mapping to {_type(add)}"
        return "mapping"
    if t == "null":
        return "null"
    return str(t or "any")


def _bounds(node: dict) -> str:
    out = []
    for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
                     ("minLength", "length >=")):
        if key in node:
            out.append(f"{sym} {node[key]}")
    for sub in node.get("anyOf", []):
        b = _bounds(sub)
        if b:
            out.append(b)
    return ", ".join(out)


def _default(prop: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in prop:
        return ""
    return f"`{json.dumps(prop['default'])}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _walk_refs(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            name = _ref_name(node["$ref"])
            if name not in found:
                found.append(name)
        for v in node.values():
            _walk_refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk_refs(v, found)


def _doc_meanings(description: str, fields) -> dict[str, str]:
    """Field meanings from a class docstring: lines (or bullets) that begin with a field's name,
    ``- ``grid``: the configurations ...`` or ````key_column`` gives request keys``."""
    out: dict[str, str] = {}
    name = None
    for line in description.splitlines():
        m = re.match(r"\s*(?:- )?``(\w+)``(.*)", line)
        if m and m.group(1) in fields and m.group(1) not in out:
            name = m.group(1)
            rest = m.group(2).strip()
            out[name] = rest[1:].strip() if rest.startswith(":") else f"{name} {rest}"
        elif name and line.startswith("  ") and line.strip():
            out[name] += " " + line.strip()
        else:
            name = None
    return out


def _table(model: dict) -> list[str]:
    props = model.get("properties", {})
    meanings = _doc_meanings(model.get("description", ""), props)
    if not props:
        return ["(no fields)"]
    required = set(model.get("required", []))
    lines = ["| field | type | default | unit | rule | meaning |", "|---|---|---|---|---|---|"]
    for name, prop in props.items():
        lines.append(
            f"| `{name}` | {_cell(_type(prop))} | {_cell(_default(prop, name in required))} | {_unit(name)} | "
            f"{_cell(_bounds(prop))} | {_cell(prop.get('description') or meanings.get(name, ''))} |"
        )
    return lines


def reference_markdown() -> str:
    """docs/schema.md: the Experiment block, then every model it uses, in order of first use."""
    schema = Experiment.model_json_schema()
    defs = schema.get("$defs", {})
    order: list[str] = []
    _walk_refs(schema.get("properties", {}), order)
    i = 0
    while i < len(order):
        _walk_refs(defs.get(order[i], {}), order)
        i += 1
    order += [n for n in defs if n not in order]
    out = [
        "# Experiment file reference",
        "",
        "Generated from the pydantic models by `simlat schema --markdown > docs/schema.md` (a test checks it is "
        "current); `simlat schema` prints the JSON Schema for editors. Every block is strict: an unknown key is an "
        "error. Units follow the field name: `_ms` milliseconds, `_rps` requests per second, `_s` seconds. "
        "A block chosen by `kind` lists its kinds; each kind is a section below.",
        "",
        "## Experiment",
        "",
        _cell(schema.get("description", "")),
        "",
        *_table(schema),
    ]
    for name in order:
        model = defs[name]
        kind = model.get("properties", {}).get("kind", {})
        kind_value = kind.get("const") or (kind.get("enum") or [None])[0] if kind else None
        title = f"{name} (`kind: {kind_value}`)" if kind_value else name
        out += ["", f'<a id="{_anchor(name)}"></a>', f"## {title}", ""]
        if model.get("description"):
            out += [model["description"].strip(), ""]
        out += _table(model)
    return "\n".join(out) + "\n"
