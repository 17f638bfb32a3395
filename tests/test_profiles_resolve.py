"""The profiles package's shared parts: the one path rule, the kind registry and the cached loader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from simlat.config import load_experiment
from simlat.errors import SimlatError
from simlat.profiles import (
    KINDS,
    ProfileKind,
    RedisProfile,
    ServiceProfile,
    detect_kind,
    load,
    register,
    resolve_path,
)
from simlat.profiles.redis import load_redis_profile

ROOT = Path(__file__).resolve().parents[1]
REDIS = ROOT / "calibration" / "redis-loopback-ci-cpu2.json"
SERVICE = ROOT / "calibration" / "ci-cpu2.json"


def test_the_one_path_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("a/b.json", ROOT / "experiments") == ROOT / "experiments" / "a" / "b.json"
    assert resolve_path("../calibration/x.json", ROOT / "experiments") == ROOT / "calibration" / "x.json"
    assert resolve_path("b.json") == tmp_path.resolve() / "b.json"
    assert resolve_path(SERVICE, tmp_path) == SERVICE


def test_shipped_files_load_as_their_kind():
    assert isinstance(load(SERVICE), ServiceProfile)
    assert isinstance(load(REDIS), RedisProfile)
    assert detect_kind(json.loads(REDIS.read_text())).name == "redis"


def test_experiment_paths_resolve_against_the_experiment_folder(tmp_path, monkeypatch):
    folder = tmp_path / "exp"
    folder.mkdir()
    text = (ROOT / "experiments" / "demo.yaml").read_text()
    rel = os.path.relpath(ROOT / "calibration" / "h100-cuda.json", folder)
    (folder / "demo.yaml").write_text(text.replace("../calibration/h100-cuda.json", rel))
    monkeypatch.chdir(tmp_path)  # not the experiment's folder, not the project root
    exp = load_experiment(folder / "demo.yaml")
    assert Path(exp.service.path) == ROOT / "calibration" / "h100-cuda.json"


def test_missing_file_names_field_and_resolved_path(tmp_path):
    with pytest.raises(SimlatError, match=r"cache.l2.lookup_ms.path: 'nope.json' is not a profile file \(no file at .*nope.json"):
        load_redis_profile("nope.json", "cache.l2.lookup_ms.path", base_dir=tmp_path)


def test_wrong_kind_and_unknown_tag_are_refused(tmp_path):
    with pytest.raises(SimlatError, match="is a redis profile, expected a service profile"):
        load(REDIS, "service")
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"kind": "simlat.teapot_profile"}))
    with pytest.raises(SimlatError, match="kind 'simlat.teapot_profile' is not a known profile kind"):
        load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(SimlatError, match="top level must be a JSON object"):
        load(bad)


def test_loader_caches_until_the_file_changes(tmp_path):
    p = tmp_path / "r.json"
    data = json.loads(REDIS.read_text())
    p.write_text(json.dumps(data))
    first = load(p)
    assert load(p) is first
    data["note"] = "edited"
    p.write_text(json.dumps(data))
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 1_000_000_000))
    again = load(p)
    assert isinstance(again, RedisProfile) and again.note == "edited"


def test_a_new_kind_plugs_in_and_duplicates_are_refused(tmp_path):
    from pydantic import BaseModel

    class Teapot(BaseModel):
        kind: str
        spout_ms: float

    kind = ProfileKind("teapot", frozenset({"simlat.teapot_profile"}), lambda data, source: Teapot.model_validate(data))
    register(kind)
    try:
        p = tmp_path / "t.json"
        p.write_text(json.dumps({"kind": "simlat.teapot_profile", "spout_ms": 1.5}))
        got = load(p, "teapot")
        assert isinstance(got, Teapot) and got.spout_ms == 1.5
        with pytest.raises(ValueError, match="already registered"):
            register(kind)
        with pytest.raises(ValueError, match="already used by kind 'teapot'"):
            register(ProfileKind("kettle", frozenset({"simlat.teapot_profile"}), kind.parse))
    finally:
        del KINDS["teapot"]


def test_the_serving_stack_profile_is_a_registered_kind(tmp_path):
    from simlat.profiles.resolve import KIND_MODULES

    assert "simlat.profiles.serving" in KIND_MODULES
    kind = detect_kind({"schema": "simlat.serving", "schema_version": 1, "kind": "serving"})
    assert kind.name == "serving" and "serving" in KINDS
    with pytest.raises(SimlatError, match="is a service profile, expected a serving profile"):
        load(SERVICE, "serving", field="frontend.path")
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"schema": "simlat.serving", "schema_version": 99, "kind": "serving"}))
    with pytest.raises(SimlatError, match="schema_version 99, newer than this simlat reads"):
        load(bad)
