"""The experiment reference: docs/schema.md is generated from the models and kept current;
``simlat schema`` prints a JSON Schema editors can use."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from simlat.cli import app
from simlat.config.reference import reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_schema_md_is_current():
    current = (ROOT / "docs/schema.md").read_text()
    assert current == reference_markdown(), "docs/schema.md is stale: run `simlat schema --markdown > docs/schema.md`"


def test_reference_lists_every_block_and_the_kinds():
    md = reference_markdown()
    for needle in ("## Sweep", "## RateSearch", "`min_requests`", "`cases`", "## ProfileService (`kind: profile`)",
                   "[`poisson`](#poisson)", "`items_column`", "ignored (with a warning) when queue is shared"):
        assert needle in md, needle


def test_cli_schema_is_json_schema_covering_the_shipped_experiments():
    out = CliRunner().invoke(app, ["schema"])
    assert out.exit_code == 0
    schema = json.loads(out.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/") and "$defs" in schema
    for path in (ROOT / "experiments").glob("*.yaml"):
        assert set(yaml.safe_load(path.read_text())) <= set(schema["properties"]), path.name


def test_an_unknown_key_lists_the_valid_keys_there():
    import pytest

    from simlat.config import parse_experiment
    from simlat.errors import SimlatError

    data = {
        "name": "x",
        "workload": {"arrivals": {"kind": "trace", "path": "t.csv", "size_column": "n"}},
        "service": {"kind": "deterministic", "ms": 1},
        "fleet": {"replica": 2},
        "slo": {"latency_ms": 10},
    }
    with pytest.raises(SimlatError) as info:
        parse_experiment(data)
    text = str(info.value)
    assert "workload.arrivals.size_column: unknown key" in text and "valid keys here: kind, path, column" in text
    assert "items_column" in text
    assert "fleet.replica: unknown key (not part of the schema; check its spelling); valid keys here: replicas, balancer, queue" in text
