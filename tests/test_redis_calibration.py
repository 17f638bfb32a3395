"""Redis calibration against a real redis-server (the ``redis_url`` fixture), and the profiles it
writes: schema, provenance, cleanup, and the L2 lookups drawn from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simlat.config.cache import Cache
from simlat.engine.cache import apply_cache
from simlat.errors import SimlatError
from simlat.profiles.redis import load_redis_profile
from simlat.workload import Requests

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "calibration").glob("redis-*.json"))


@pytest.fixture(scope="module")
def measured(redis_url, tmp_path_factory):
    """One small calibration run (module-wide: a few seconds)."""
    from simlat.calibrate.redis import calibrate_redis

    out = tmp_path_factory.mktemp("redis") / "profile.json"
    profile = calibrate_redis(redis_url, out, value_bytes=300, n=3_000, rounds=3, keys=200, progress=False, note="test")
    return out, profile


@pytest.mark.redis
def test_calibration_writes_a_valid_profile_with_provenance(measured, redis_url):
    out, profile = measured
    again = load_redis_profile(out)
    assert again == profile
    assert profile.value_bytes == 300
    assert profile.server["loopback"] is True
    assert profile.server["redis_version"]
    assert profile.client["library"] == "redis-py"
    tp = profile.throughput  # GETs/s under concurrency: the L2's capacity in simulations
    assert tp is not None and tp.ops_per_s > 1000 and tp.clients >= 2
    assert profile.method["rounds"] == 3 and len(profile.get.round_p50_ms) == 3
    for op in (profile.get, profile.set):
        assert op.n == 3_000
        q = np.array(op.quantile_ms)
        assert np.all(np.diff(q) >= 0) and op.quantile_p[0] == 0 and op.quantile_p[-1] == 1
        assert q[0] == op.min_ms and q[-1] == op.max_ms
        assert 0 < op.min_ms <= op.p50_ms <= op.p99_ms <= op.max_ms
        assert op.median_ci_ms[0] <= op.p50_ms <= op.median_ci_ms[1]
        assert op.p50_ms < 50  # a loopback round trip, not a timeout
    assert sorted(profile.mget) == [10, 100] and all(m.n == 300 for m in profile.mget.values())
    assert profile.get.p50_ms < profile.mget[100].p50_ms  # 100 values of 300 B take longer than one
    assert profile.per_key_ms() > 0


@pytest.mark.redis
def test_calibration_leaves_nothing_on_the_server(measured, redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.keys("simlat:calibrate:*") == []


@pytest.mark.redis
def test_calibration_measures_the_value_size(redis_url, tmp_path):
    """Large values take measurably longer to GET than small ones on the same server."""
    from simlat.calibrate.redis import calibrate_redis

    small = calibrate_redis(
        redis_url, tmp_path / "s.json", value_bytes=16, n=2_000, rounds=2, keys=50, mget_sizes=(), progress=False
    )
    assert small.mget == {} and small.per_key_ms() == 0
    large = calibrate_redis(
        redis_url, tmp_path / "l.json", value_bytes=1 << 20, n=60, rounds=2, keys=2,
        warmup_block=20, max_warmup=100, mget_sizes=(), progress=False,
    )
    assert large.get.p50_ms > 1.5 * small.get.p50_ms  # 1 MiB vs 16 B: a copy of 1 MiB each way dominates


def test_unreachable_server_is_a_clear_error(tmp_path):
    import socket

    from simlat.calibrate.redis import calibrate_redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(SimlatError, match=f"cannot reach Redis at redis://127.0.0.1:{port}"):
        calibrate_redis(f"redis://127.0.0.1:{port}", tmp_path / "x.json", progress=False, timeout_s=1.0)
    assert not (tmp_path / "x.json").exists()


def test_bad_arguments_name_the_parameter(tmp_path):
    from simlat.calibrate.redis import calibrate_redis

    with pytest.raises(SimlatError, match="value_bytes: 0 must be >= 1"):
        calibrate_redis("redis://127.0.0.1:1", tmp_path / "x.json", value_bytes=0)
    with pytest.raises(SimlatError, match=r"mget_sizes: 5000 must be between 2 and keys \(1000\)"):
        calibrate_redis("redis://127.0.0.1:1", tmp_path / "x.json", mget_sizes=(5000,))


def test_password_is_not_written(redis_url):
    from simlat.calibrate.redis import redact

    assert redact("redis://user:secret@host:6380/0") == "redis://user:***@host:6380/0"
    assert redact(redis_url) == redis_url


@pytest.mark.redis
def test_l2_lookups_are_drawn_from_the_measured_get_distribution(measured):
    out, profile = measured
    cfg = Cache.model_validate({"l2": {"capacity": 1, "lookup_ms": {"kind": "redis_profile", "path": str(out)}}})
    n = 40_000
    req = Requests(arrival_ms=np.arange(n, dtype=float), items=np.ones(n, dtype=np.int64), key=np.arange(n))
    got = apply_cache(cfg, req, np.random.default_rng(3)).cache_ms  # all misses: every request asks L2
    p = np.array(profile.get.quantile_p)
    q = np.array(profile.get.quantile_ms)
    for level in (0.1, 0.5, 0.9, 0.99):
        # the sample's quantile falls inside the sketch's quantiles of a binomial 4-sigma band
        band = 4 * np.sqrt(level * (1 - level) / n)
        lo, hi = np.interp([max(0, level - band), min(1, level + band)], p, q)
        assert lo <= np.quantile(got, level) <= hi


@pytest.mark.redis
def test_unsupported_profile_version_is_refused(measured, tmp_path):
    out, _ = measured
    data = json.loads(out.read_text())
    data["version"] = 99
    bad = tmp_path / "v99.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SimlatError, match="version: 99 is not supported"):
        load_redis_profile(bad)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_profiles_are_valid(path):
    profile = load_redis_profile(path)
    assert profile.get.n >= 10_000 and profile.set.n >= 10_000
    assert profile.mget and all(m.n >= 1_000 for m in profile.mget.values())
    assert profile.note


def test_a_profile_is_shipped():
    assert (ROOT / "calibration" / "redis-loopback-ci-cpu2.json").is_file()


@pytest.mark.redis
def test_calibrate_command_measures_redis(redis_url, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "cli.json"
    cmd = [sys.executable, "-m", "simlat.cli", "calibrate", "--cache", redis_url, "--out", str(out),
           "--value-bytes", "64", "--note", "from the test", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GET p50" in done.stdout and f"profile written to {out}" in done.stdout
    profile = load_redis_profile(out)
    assert profile.value_bytes == 64 and profile.note == "from the test" and profile.get.n == 20_000
    bad = subprocess.run([*cmd[:5], "redis://127.0.0.1:1", *cmd[6:]], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot reach Redis" in bad.stderr and "Traceback" not in bad.stderr
