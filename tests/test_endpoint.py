"""Endpoints measured from outside: the campaign, the serving-profile fit, prediction intervals.

Real servers only: simlat's own server (KServe v2 route) on the CPU for the short live campaign, a
plain aiohttp server that answers errors for the error paths, and the H100 campaigns of
``validation/h100-2026-12-05`` (NVIDIA Triton and simlat's server, measured on the GPU host) for the
offline fit and the replayed validation table.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.cli import app
from simlat.endpoint import campaign as cp
from simlat.endpoint.command import service_config, serving_profile
from simlat.endpoint.probe import EndpointError, wait_ready
from simlat.endpoint.protocol import Target
from simlat.profiles.serving import read, write
from simlat.uncertainty import elasticity, interval

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "validation" / "h100-2026-12-05"


def _campaign(name: str) -> dict:
    return cp.load(CAMPAIGNS / f"{name}.npz")


# -- prediction intervals ------------------------------------------------------------------------


def test_interval_is_symmetric_in_log_and_probability_matches_its_ends():
    pi = interval(10.0, {"sim": 0.1, "run_to_run": 0.2}, level=0.9)
    assert math.isclose(pi.point / pi.low, pi.high / pi.point, rel_tol=1e-12)
    assert math.isclose(pi.sd_log, math.hypot(0.1, 0.2))
    assert math.isclose(pi.probability_below(pi.high), 0.95, abs_tol=1e-9)
    assert math.isclose(pi.probability_below(pi.low), 0.05, abs_tol=1e-9)
    assert pi.probability_below(pi.point) == pytest.approx(0.5)


def test_elasticity_matches_mm1_percentile_scaling():
    """The calibration part scales service-time spread by d log p99 / d log s; for M/M/1 at rho = 0.5
    it is 1 / (1 - rho) = 2 (p99 = ln(100) s / (1 - rho) with rho = lambda s). Checked on the engine."""
    from simlat.api import run
    from simlat.config import parse_experiment

    def p99(mean_ms: float) -> float:
        exp = parse_experiment({
            "name": "mm1", "workload": {"arrivals": {"kind": "poisson", "rate_rps": 500}},
            "batching": {"kind": "none"}, "service": {"kind": "exponential", "mean_ms": mean_ms},
            "slo": {"latency_ms": 100}, "run": {"requests": 400_000, "seed": 3}})
        return run(exp).summary.p99_ms

    step = 0.02
    measured = (math.log(p99(1.0 * math.exp(step))) - math.log(p99(1.0 * math.exp(-step)))) / (2 * step)
    assert elasticity(0.5) == pytest.approx(2.0)
    assert measured == pytest.approx(2.0, rel=0.15)


# -- the H100 campaigns, offline ----------------------------------------------------------------


@pytest.mark.skipif(not CAMPAIGNS.is_dir(), reason="validation/h100-2026-12-05 is not in this checkout")
def test_serving_profile_from_the_triton_campaign_round_trips_and_keeps_the_capacity(tmp_path):
    data = _campaign("triton_mlp_fp32_b8w2")
    assert data["declared"]["server"] == "triton" and data["complete"]
    prof = serving_profile(data, base=ROOT)
    path = tmp_path / "serving.json"
    write(prof, path)
    back = read(path)
    assert back.stack == prof.stack
    assert back.capacity_rps == pytest.approx(data["capacity_rps"])
    # every run-to-run row comes from repeated probes at one load
    assert all(r.repeats >= 2 for r in back.uncertainty.run_to_run)
    from simlat.endpoint.fit import Predictor
    from simlat.endpoint.validation import predicted_capacity

    d = data["declared"]
    pred = Predictor(service_config(d["model_profile"], ROOT), d["max_batch"], d["max_wait_ms"])
    cap = predicted_capacity(pred, back.params, back.capacity_rps, back.measured["no_queue_p50_ms"])
    assert abs(cap / back.capacity_rps - 1) <= 0.10


@pytest.mark.skipif(not CAMPAIGNS.is_dir(), reason="validation/h100-2026-12-05 is not in this checkout")
def test_replayed_validation_reports_coverage_and_never_fits_on_levels():
    from simlat.endpoint.validation import summary, validate_campaign

    data = _campaign("triton_mlp_fp32_b8w2")
    d = data["declared"]
    service = service_config(d["model_profile"], ROOT)
    rows, facts = validate_campaign(data, service, max_batch=d["max_batch"], max_wait_ms=d["max_wait_ms"],
                                    profile_only=False)
    s = summary(rows)
    assert s["levels"] == 12 and 0.0 <= s["coverage"] <= 1.0
    for r in rows:
        assert r.pi_low < r.point_p99 < r.pi_high
    # the fit never sees the levels: removing them changes nothing in it
    no_levels = {**data, "levels": []}
    from simlat.endpoint.fit import fit

    f2 = fit(no_levels, service, max_batch=d["max_batch"], max_wait_ms=d["max_wait_ms"])
    assert f2["params"].to_json() == facts["params"]


def test_validate_replay_command_prints_the_table():
    if not CAMPAIGNS.is_dir():
        pytest.skip("validation/h100-2026-12-05 is not in this checkout")
    res = CliRunner().invoke(app, ["validate", "--replay", str(CAMPAIGNS / "simlat_mlp_fp32_b8w2.npz")])
    assert res.exit_code == 0, res.output
    assert "90% prediction interval" in res.output and "coverage" in res.output


# -- plans name what they are based on -----------------------------------------------------------


def test_summary_with_serving_profile_has_a_prediction_interval_and_without_says_so():
    from simlat.api import run
    from simlat.config import load_experiment

    exp = load_experiment(ROOT / "experiments" / "demo.yaml")
    with_stack = run(exp, requests=20_000).summary
    assert with_stack.prediction_basis.startswith("serving profile")
    lo, hi = with_stack.prediction_interval_ms
    assert lo < with_stack.slo_estimate_ms < hi
    assert set(with_stack.prediction_parts) == {"sim", "calibration", "run_to_run", "fit"}
    bare = run(exp.model_copy(update={"frontend": None}), requests=20_000).summary
    assert bare.prediction_interval_ms is None and bare.prediction_basis == "model profile only"
    assert any("50-96%" in w for w in bare.warnings)


# -- error paths: real HTTP servers ----------------------------------------------------------------


def _serve(handler) -> tuple[str, callable]:
    """A tiny real aiohttp server on loopback in a thread; returns its URL and a stop function."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    app_ = web.Application()
    app_.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app_)
    started = threading.Event()
    box = {}

    def main():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = site._server.sockets[0].getsockname()[1]
        started.set()
        loop.run_forever()

    t = threading.Thread(target=main, daemon=True)
    t.start()
    started.wait(10)

    def stop():
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)

    return f"http://127.0.0.1:{box['port']}", stop


def test_unreachable_endpoint_is_a_clear_error_fast():
    t = Target(url="http://127.0.0.1:9", protocol="kserve_v2", model="m")
    with pytest.raises(EndpointError, match="not reachable"):
        wait_ready(t, timeout_s=1.0)


def test_wrong_protocol_names_the_answer(tmp_path):
    from aiohttp import web

    async def handler(request):
        if request.path == "/v2/health/ready":
            return web.Response(text="")
        return web.Response(status=404, text='{"error":"unknown model"}')

    url, stop = _serve(handler)
    try:
        res = CliRunner().invoke(app, ["calibrate", "--endpoint", url, "--model-name", "nosuch", "--out",
                                       str(tmp_path / "s.json"), "--start-rps", "20", "--probe-s", "1"])
    finally:
        stop()
    assert res.exit_code == 2
    assert "HTTP 404" in res.output and "--protocol" in res.output and "Traceback" not in res.output


def test_bad_endpoint_flags_exit_2(tmp_path):
    r = CliRunner().invoke(app, ["calibrate", "--endpoint", "localhost:8000", "--out", str(tmp_path / "s.json")])
    assert r.exit_code == 2 and "--endpoint" in r.output
    r = CliRunner().invoke(app, ["calibrate", "--endpoint", "http://127.0.0.1:9", "--input", "float16:4",
                                 "--out", str(tmp_path / "s.json")])
    assert r.exit_code == 2 and "--input" in r.output
    r = CliRunner().invoke(app, ["validate", "--replay", str(tmp_path / "missing.npz")])
    assert r.exit_code == 2 and "no such campaign" in r.output


def test_a_server_that_fails_mid_campaign_keeps_the_probes(tmp_path):
    """Every request fails after the low-rate probe: the campaign stops with a clear error and the
    probes already measured are saved (``complete: false``)."""
    from aiohttp import web

    count = {"n": 0}

    async def handler(request):
        if request.path == "/v2/health/ready":
            return web.Response(text="")
        await request.read()
        count["n"] += 1
        if count["n"] > 150:
            return web.Response(status=500, text='{"error":"backend crashed"}')
        return web.Response(text='{"outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[0.5]}]}',
                            content_type="application/json")

    url, stop = _serve(handler)
    out = tmp_path / "s.json"
    try:
        res = CliRunner().invoke(app, ["calibrate", "--endpoint", url, "--model-name", "m", "--input", "float32:8",
                                       "--out", str(out), "--start-rps", "200", "--probe-s", "1", "--repeats", "1"])
    finally:
        stop()
    assert res.exit_code == 2, res.output
    assert "HTTP 500" in res.output and "Traceback" not in res.output
    saved = cp.load(out.with_suffix(".campaign.npz"))
    assert saved["complete"] is False and saved["probes"][0]["kind"] == "low"


# -- a live campaign against simlat's own server (CPU) -------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_live_campaign_against_simlat_server_on_cpu(tmp_path):
    """The whole path: a real server restarted per repeat, open-loop probes from a separate process,
    the capacity search, the fit and a serving profile an experiment can use."""
    pytest.importorskip("torch")
    from machine_load import OtherLoad

    from simlat.endpoint.command import measure, server_factory

    factory = server_factory("simlat", model="mlp_ranker", variant="fp32", device="cpu", max_batch=8, max_wait_ms=0.0)
    declared = {"server": "simlat", "model": "mlp_ranker", "variant": "fp32", "device": "cpu", "max_batch": 8,
                "max_wait_ms": 0.0, "model_profile": {"path": str(ROOT / "calibration" / "ci-cpu2.json"),
                                                      "model": "mlp_ranker", "variant": "fp32"}}
    failure = None
    with OtherLoad() as load:
        try:
            data = measure(target=None, factory=factory, declared=declared, out=tmp_path / "c.npz", probe_s=2.0,
                           start_rps=100, max_probes=10, repeats=2, max_lag_ms=50.0, procs=1, log=lambda m: None)
        except EndpointError as err:  # judged below: a loaded machine skips, a quiet one fails
            failure = err
    if load.reason():
        pytest.skip(f"machine too loaded for a timing test: {load.reason()}")
    if failure is not None:
        raise failure
    assert data["complete"] and len(data["probes"]) >= 4
    assert any(p["kind"] == "low" and p["stable"] for p in data["probes"])
    if not data["capacity_found"]:
        pytest.skip("the capacity search did not bracket the limit on this machine (it says so; see warnings)")
    prof = serving_profile(data, base=ROOT)
    assert prof.capacity_rps > 0 and prof.stack["delay_ms"]
    assert os.path.exists(tmp_path / "c.npz")


@pytest.mark.skipif(not os.environ.get("SIMLAT_TRITONSERVER") or not shutil.which("python3"),
                    reason="set SIMLAT_TRITONSERVER to a tritonserver binary (e.g. from the nvidia-pytriton wheel)")
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_live_campaign_against_triton(tmp_path):
    from simlat.endpoint.command import measure, server_factory

    factory = server_factory("triton", model="mlp_ranker", variant="fp32", device="cpu", max_batch=8,
                             max_wait_ms=0.0, tritonserver=os.environ["SIMLAT_TRITONSERVER"], workdir=tmp_path)
    declared = {"server": "triton", "model": "mlp_ranker", "variant": "fp32", "device": "cpu", "max_batch": 8,
                "max_wait_ms": 0.0, "model_profile": None}
    data = measure(target=None, factory=factory, declared=declared, out=tmp_path / "c.npz", probe_s=2.0,
                   start_rps=40, max_probes=6, repeats=2, max_lag_ms=50.0, procs=1, log=lambda m: None)
    assert data["probes"][0]["kind"] == "low" and np.isfinite(data["probes"][0]["p50_ms"])


def test_latency_parts_sum_to_latency_with_a_serving_stack():
    """Every part of the latency has a column, and they add up (with the event-loop frontend of
    python_server_h100 and with a measured serving profile)."""
    from simlat.api import run
    from simlat.config import load_experiment
    from simlat.metrics import DECOMPOSITION

    for name in ("python_server_h100", "demo"):
        exp = load_experiment(ROOT / "experiments" / f"{name}.yaml")
        rec = run(exp, requests=5_000, keep_records=True).records[0].records
        done = ~rec.dropped
        parts = sum(getattr(rec, c)[done] for c in DECOMPOSITION)
        assert np.allclose(parts, rec.latency_ms[done], atol=1e-9), name
        if name == "demo":  # the measured stack holds the replica for the whole reply: never negative
            assert np.all(rec.reply_ms[done] >= -1e-12)


# -- a real replica's cold start ---------------------------------------------------------------------


def test_cold_start_summary_counts_slow_first_requests():
    from simlat.endpoint.coldstart import summarize_run

    steady = np.full(200, 1.0)
    steady[-2:] = 2.0  # steady p99 ~ 2 ms
    first = np.full(200, 1.0)
    first[:3] = [50.0, 9.0, 5.0]  # three slower than 2 x steady p99
    first[7] = np.nan  # a failed request
    s = summarize_run(12.5, first, steady)
    assert s["ready_s"] == 12.5
    assert s["first"]["first_ms"] == 50.0 and s["first"]["slow"] == 3 and s["first"]["last_slow_index"] == 3
    assert s["first"]["failed"] == 1 and s["first"]["max_ms"] == 50.0
    assert s["steady"]["p50_ms"] == 1.0


def test_cold_start_of_simlat_server_on_cpu(tmp_path):
    """Start a real server, time it to its first answer, then its first requests against steady state."""
    import json

    out = tmp_path / "cs.json"
    r = CliRunner().invoke(app, ["validate", "--server", "simlat", "--model", "mlp_ranker", "--device", "cpu",
                                 "--cold-start", "fp32", "--first", "60", "--cold-rate", "100", "--repeats", "1",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["schema"] == "simlat.coldstart" and data["declared"]["server"] == "simlat"
    (row,) = data["results"]
    assert row["variant"] == "fp32" and 0.2 < row["ready_s"] < 120
    assert row["first"]["n"] == len(row["first_latency_ms"]) > 20 and row["first"]["failed"] == 0
    assert 0 < row["steady"]["p50_ms"] < 1000


def test_cold_start_and_instances_flags_are_checked(tmp_path):
    r = CliRunner().invoke(app, ["validate", "--server", "simlat", "--model", "mlp_ranker", "--cold-start", "fp32",
                                 "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "JSON" in r.output
    r = CliRunner().invoke(app, ["validate", "--server", "simlat", "--model", "mlp_ranker", "--measure-only", "--max-batch",
                                 "1", "--max-wait-ms", "0", "--instances", "2", "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "--instances" in r.output and "triton" in r.output


# -- shared GPUs: measured campaigns predicted from an experiment, nothing fitted on them -------------

SHARED = ROOT / "validation" / "h100-shared-2026-12-05"


def test_two_triton_instances_on_one_h100_predicted_from_the_experiment_alone():
    """The 2-instance Triton campaign, predicted from the one-instance serving profile, the model
    profile and the contention profile: every usable probe gets a row, the capacity is close, and one
    instance (the counterfactual) has about half of it."""
    import simlat
    from simlat.endpoint.fit import usable
    from simlat.endpoint.transfer import MIN_REQUESTS, predict_campaign, summarize

    data = cp.load(SHARED / "triton_mlp_bf16_b32w0_i2.npz")
    assert data["declared"]["instances"] == 2
    rows, facts = predict_campaign(data, simlat.load(ROOT / "experiments" / "triton_shared_h100.yaml"), requests=8000)
    want = [p for p in [*data["probes"], *data["levels"]] if usable(p, MIN_REQUESTS)]
    assert len(rows) == len(want) >= 10
    assert [r.offered_rps for r in rows] == [p["offered_rps"] for p in want]
    assert abs(facts["predicted_capacity_rps"] / facts["measured_capacity_rps"] - 1) < 0.15
    assert 0.35 < facts["one_instance_capacity_rps"] / facts["predicted_capacity_rps"] < 0.65
    s = summarize(rows)
    assert s["points"] == len(rows) and 0 <= s["covered"] <= len(rows)


def test_predict_with_needs_replay(tmp_path):
    r = CliRunner().invoke(app, ["validate", "--predict-with", str(ROOT / "experiments" / "triton_shared_h100.yaml"),
                                 "--server", "simlat", "--model", "mlp_ranker", "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "--replay" in r.output
