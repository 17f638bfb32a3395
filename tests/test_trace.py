"""Trace replay: exact timestamps, scaling, looping, keys, the real Azure trace, and every bad-trace error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simlat.config.workload import Workload
from simlat.errors import SimlatError
from simlat.workload import generate, offered_rate_rps

REPO = Path(__file__).resolve().parents[1]
AZURE = REPO.parent / "shared" / "traces" / "azure_llm2023_conv.csv"

# irregular gaps with a burst, in seconds
TIMES = np.array([0.0, 0.5, 0.51, 0.52, 0.53, 2.0, 2.25, 4.0, 4.001, 7.5])


def wl(path: Path, **arr) -> Workload:
    return Workload.model_validate({"arrivals": {"kind": "trace", "path": str(path), **arr}})


def gen(w: Workload, n=None, duration_s=None):
    return generate(w, n=n, duration_s=duration_s, seed=np.random.SeedSequence(0))


def csv(tmp_path: Path, text: str, name="trace.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def numeric_trace(tmp_path) -> Path:
    p = tmp_path / "numeric.csv"
    pd.DataFrame({"timestamp": 1000.0 + TIMES, "user": [f"u{i % 3}" for i in range(len(TIMES))]}).to_csv(p, index=False)
    return p


# ---------------------------------------------------------------- replay


def test_replays_exactly_its_timestamps(numeric_trace):
    r = gen(wl(numeric_trace, unit="s", loop=False), n=len(TIMES))
    np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0, rtol=0, atol=1e-9)
    assert r.items.tolist() == [1] * len(TIMES)


def test_target_rate_scales_every_gap_by_one_factor(numeric_trace):
    own_rate = (len(TIMES) - 1) / TIMES[-1]
    target = 1000.0
    w = wl(numeric_trace, unit="s", target_rate_rps=target)
    assert offered_rate_rps(w) == target
    assert offered_rate_rps(wl(numeric_trace, unit="s")) == pytest.approx(own_rate)
    r = gen(w, n=len(TIMES))
    np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0 * own_rate / target, rtol=1e-12)
    # looped over many tiles the mean rate is the target (one mean gap joins the tiles)
    r = gen(w, n=len(TIMES) * 1000)
    assert (len(r) - 1) / (r.arrival_ms[-1] / 1000.0) == pytest.approx(target, rel=2e-3)
    r = gen(w, duration_s=50.0)
    assert len(r) / 50.0 == pytest.approx(target, rel=2e-3)
    assert r.arrival_ms[-1] < 50_000.0


def test_loop_tiles_the_trace(numeric_trace):
    r = gen(wl(numeric_trace, unit="s"), n=3 * len(TIMES) + 2)
    period = TIMES[-1] + TIMES[-1] / (len(TIMES) - 1)
    expected = np.concatenate([TIMES + i * period for i in range(4)])[: len(r)] * 1000.0
    np.testing.assert_allclose(r.arrival_ms, expected, rtol=1e-12)
    assert np.all(np.diff(r.arrival_ms) > 0)


def test_no_loop_stops_at_the_end_and_says_so(numeric_trace):
    w = wl(numeric_trace, unit="s", loop=False)
    with pytest.warns(UserWarning, match="fewer than the 25 requests"):
        r = gen(w, n=25)
    assert len(r) == len(TIMES)
    assert any("loop: true" in m for m in r.warnings)
    with pytest.warns(UserWarning, match="trace ends at 7.5 s"):
        r = gen(w, duration_s=100.0)
    assert len(r) == len(TIMES)
    r = gen(w, duration_s=2.1)
    assert len(r) == 6 and not r.warnings


def test_units_by_name_by_value_and_explicit(tmp_path):
    cases = {
        "t_ms": TIMES * 1000 + 5,
        "arrival (us)": TIMES * 1e6 + 17,
        "epoch": 1.7e9 + TIMES,  # epoch seconds
        "epoch_like": 1.7e12 + TIMES * 1000,  # epoch milliseconds, detected by magnitude
    }
    for col, values in cases.items():
        p = tmp_path / "u.csv"
        pd.DataFrame({col: values}).to_csv(p, index=False)
        r = gen(wl(p, column=col, loop=False), n=len(TIMES))
        np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0, atol=1e-3, err_msg=col)
    p = tmp_path / "x.csv"
    pd.DataFrame({"t": TIMES * 1e6}).to_csv(p, index=False)
    r = gen(wl(p, column="t", unit="us", loop=False), n=len(TIMES))
    np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0, atol=1e-6)
    # undetectable unit: read as seconds, and the run is told
    with pytest.warns(UserWarning, match="read as seconds"):
        r = gen(wl(p, column="t", loop=False), n=3)
    assert r.arrival_ms[1] == pytest.approx(0.5e6 * 1000)


def test_datetimes_with_seven_fractional_digits(tmp_path):
    base = pd.Timestamp("2023-11-16 18:15:46.6805900")
    stamps = [(base + pd.Timedelta(seconds=float(t))).strftime("%Y-%m-%d %H:%M:%S.%f") + "3" for t in TIMES]
    p = csv(tmp_path, "TIMESTAMP,ContextTokens\n" + "\n".join(f"{s},{i}" for i, s in enumerate(stamps)) + "\n")
    r = gen(wl(p, column="TIMESTAMP", loop=False), n=len(TIMES))
    np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0, atol=1e-6)


def test_parquet_numeric_and_timestamp_columns(tmp_path):
    p = tmp_path / "t.parquet"
    base = pd.Timestamp("2024-01-01T00:00:00Z")
    pd.DataFrame(
        {"ts": [base + pd.Timedelta(seconds=float(t)) for t in TIMES], "sec": TIMES + 3.0, "k": np.arange(len(TIMES)) * 7}
    ).to_parquet(p)
    for col in ["ts", "sec"]:
        r = gen(wl(p, column=col, loop=False), n=len(TIMES))
        np.testing.assert_allclose(r.arrival_ms, TIMES * 1000.0, atol=1e-6)
    w = Workload.model_validate(
        {"arrivals": {"kind": "trace", "path": str(p), "column": "sec", "key_column": "k"}, "keys": {"kind": "trace"}}
    )
    r = gen(w, n=len(TIMES) + 3)
    assert r.key.tolist() == [7 * i for i in range(len(TIMES))] + [0, 7, 14]


def test_string_keys_are_hashed_stably(numeric_trace):
    w = Workload.model_validate(
        {"arrivals": {"kind": "trace", "path": str(numeric_trace), "unit": "s", "key_column": "user"}, "keys": {"kind": "trace"}}
    )
    r = gen(w, n=2 * len(TIMES))
    assert r.key.dtype == np.int64
    users = [i % 3 for i in range(len(TIMES))] * 2
    for u in range(3):
        same = {int(k) for k, x in zip(r.key, users, strict=True) if x == u}
        assert len(same) == 1
    assert len(set(r.key.tolist())) == 3
    assert gen(w, n=5).key.tobytes() == r.key[:5].tobytes()


# ---------------------------------------------------------------- the real trace


@pytest.mark.skipif(not AZURE.exists(), reason=f"shared trace folder absent ({AZURE.parent}); it lives beside the repo")
def test_azure_trace_facts():
    w = wl(AZURE, column="TIMESTAMP", loop=False)
    with pytest.warns(UserWarning):
        r = gen(w, n=10**6)
    assert len(r) == 19_366
    assert r.arrival_ms[-1] / 1000.0 == pytest.approx(3501.7, abs=0.05)
    assert offered_rate_rps(w) == pytest.approx(5.53, abs=0.005)
    gaps = np.diff(r.arrival_ms)
    assert gaps.std() / gaps.mean() == pytest.approx(1.09, abs=0.005)
    t = r.arrival_ms / 1000.0
    per_second = np.bincount(t.astype(np.int64))
    assert per_second.max() / per_second.mean() == pytest.approx(2.89, abs=0.005)
    per_minute = np.bincount((t // 60).astype(np.int64))[:-1]  # full minutes
    assert (per_minute.min(), per_minute.max()) == (191, 507)
    # scaled to 5,000 req/s: the same burst shape (every gap times one factor), the asked mean rate
    scaled = gen(wl(AZURE, column="TIMESTAMP", target_rate_rps=5000.0), n=19_366 * 3)
    first = scaled.arrival_ms[:19_366]
    factor = offered_rate_rps(w) / 5000.0
    np.testing.assert_allclose(first, r.arrival_ms * factor, rtol=1e-9, atol=1e-9)
    # the burst shape survives: per-minute counts of the trace are per-(minute * factor) counts of the replay
    assert np.array_equal(np.bincount((first / 1000.0 // (60 * factor)).astype(np.int64))[:-1], per_minute)
    assert (len(scaled) - 1) / scaled.arrival_ms[-1] * 1000.0 == pytest.approx(5000.0, rel=1e-3)


# ---------------------------------------------------------------- bad traces


def error_of(w: Workload) -> str:
    with pytest.raises(SimlatError) as info:
        gen(w, n=10)
    return str(info.value)


def test_missing_file(tmp_path):
    msg = error_of(wl(tmp_path / "nope.csv"))
    assert "workload.arrivals.path" in msg and "nope.csv" in msg and "no such file" in msg


def test_missing_column_lists_the_available_ones(numeric_trace):
    msg = error_of(wl(numeric_trace, unit="s", column="TIMESTAMP"))
    assert "workload.arrivals.column" in msg and "'TIMESTAMP'" in msg
    assert "available columns: 'timestamp', 'user'" in msg
    msg = error_of(wl(numeric_trace, unit="s", key_column="uid"))
    assert "workload.arrivals.key_column" in msg and "'uid'" in msg


def test_non_numeric_timestamp(tmp_path):
    p = csv(tmp_path, "timestamp\n1.0\n2.0\nabc\n4.0\n")
    msg = error_of(wl(p))
    assert "'abc'" in msg and "row 3 of trace.csv (line 4)" in msg and "not a number" in msg


def test_unparseable_datetime(tmp_path):
    p = csv(tmp_path, "timestamp\n2024-01-01 00:00:00\n2024-01-01 00:00:01\n2024-13-45 99:00:00\n")
    msg = error_of(wl(p))
    assert "'2024-13-45 99:00:00'" in msg and "row 3" in msg and "not a datetime" in msg


def test_unsorted_timestamps(tmp_path):
    p = csv(tmp_path, "timestamp\n1.0\n2.0\n3.0\n2.5\n4.0\n")
    msg = error_of(wl(p))
    assert "time goes back at row 4 of trace.csv (line 5)" in msg and "2.5" in msg and "sorted" in msg


def test_empty_trace(tmp_path):
    msg = error_of(wl(csv(tmp_path, "timestamp\n")))
    assert "trace.csv" in msg and "empty" in msg and "no rows" in msg and "at least 2" in msg
    msg = error_of(wl(csv(tmp_path, "", name="zero.csv")))
    assert "empty" in msg


def test_one_row_trace(tmp_path):
    msg = error_of(wl(csv(tmp_path, "timestamp\n5.0\n")))
    assert "1 row" in msg and "at least 2" in msg


def test_constant_timestamps(tmp_path):
    msg = error_of(wl(csv(tmp_path, "timestamp\n5.0\n5.0\n5.0\n")))
    assert "equal" in msg


def test_datetime_unit_on_numbers(numeric_trace):
    msg = error_of(wl(numeric_trace, unit="datetime"))
    assert "workload.arrivals.unit" in msg and "'datetime'" in msg


@pytest.mark.parametrize(
    "text, needles",
    [
        ("timestamp\n1.0\n2.0\n1.5\n", ["time goes back at row 3 of bad.csv", "1.5 comes after 2.0", "workload.arrivals.column"]),
        ("timestamp\n1.0\nsoon\n3.0\n", ["'soon' at row 2 of bad.csv", "is not a number"]),
        ("timestamp\n", ["bad.csv", "empty", "at least 2 timestamps"]),
    ],
    ids=["unsorted", "non-numeric", "empty"],
)
def test_bad_trace_through_the_cli_exits_2_without_traceback(tmp_path, text, needles):
    """The loader resolves the relative trace path against the experiment file's folder."""
    csv(tmp_path, text, name="bad.csv")
    exp = {
        "name": "bad-trace",
        "workload": {"arrivals": {"kind": "trace", "path": "bad.csv"}},
        "service": {"kind": "deterministic", "ms": 1.0},
        "slo": {"latency_ms": 10.0},
        "run": {"requests": 100},
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    proc = subprocess.run(
        [sys.executable, "-m", "simlat.cli", "simulate", str(tmp_path / "exp.yaml"), "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO.parent,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_items_from_a_trace_column(tmp_path):
    p = csv(tmp_path, "t,tokens\n0.0,374\n0.5,0\n1.0,12.6\n")
    w = Workload.model_validate({"arrivals": {"kind": "trace", "path": str(p), "column": "t", "unit": "s", "items_column": "tokens"}})
    r = gen(w, n=5)
    assert r.items.dtype == np.int64 and r.items.tolist() == [374, 1, 13, 374, 1]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="items_column"):
        Workload.model_validate(
            {"arrivals": {"kind": "trace", "path": str(p), "items_column": "tokens"}, "items_per_request": 5}
        )
    bad = csv(tmp_path, "t,tokens\n0.0,3\n0.5,lots\n", name="bad.csv")
    with pytest.raises(SimlatError, match=r"items_column 'tokens': 'lots' at row 2"):
        gen(Workload.model_validate({"arrivals": {"kind": "trace", "path": str(bad), "column": "t", "unit": "s", "items_column": "tokens"}}), n=2)
    msg = error_of(Workload.model_validate({"arrivals": {"kind": "trace", "path": str(p), "column": "t", "items_column": "size"}}))
    assert "workload.arrivals.items_column: 'size'" in msg and "'tokens'" in msg


def test_empty_cell_is_named(tmp_path):
    msg = error_of(wl(csv(tmp_path, "timestamp,x\n1.0,a\n,b\n3.0,c\n"), unit="s"))
    assert "an empty cell at row 2" in msg
