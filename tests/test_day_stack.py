"""The serving stack in the exact day (simlat.autoscale.stack): with a fixed fleet, the engine's
frontend path bit for bit (the loop, the hand-off, the reply's wait for the loop, the network delay);
across segments the loop carries its queue; a changing fleet divides a profile's loop work by the
replicas ready at each arrival; the frontends it cannot run are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simlat.autoscale.arrivals import ArraySource
from simlat.autoscale.policy import Fixed
from simlat.autoscale.stack import Loop, check, day_stack, resolve
from simlat.autoscale.stream import run_stream
from simlat.config import parse_experiment
from simlat.config.autoscaling import NoAutoscaling
from simlat.engine import simulate
from simlat.engine.batching import BatchPolicy
from simlat.engine.frontend import _draws, fifo_departures
from simlat.engine.service import build_service
from simlat.engine.streams import Streams
from simlat.errors import SimlatError
from simlat.workload import Requests

ROOT = Path(__file__).resolve().parents[1]
SERVING = str(ROOT / "calibration" / "serving-h100-triton-mlp-bf16-b32w0.json")
EVENT_LOOP = {"kind": "event_loop", "ingress_ms": {"kind": "constant", "value": 0.45},
              "network_ms": {"kind": "lognormal", "median": 0.8, "sigma": 0.4},
              "handoff_ms": {"kind": "constant", "value": 0.1}, "item_ms": 0.01, "slowdown_base": 1.2,
              "slowdown_includes_loop_wait": True}


def _exp(frontend: dict, batching: dict, replicas: int = 3):
    return parse_experiment({
        "name": "stack_test",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 1000}},
        "fleet": {"replicas": replicas, "queue": "shared"},
        "batching": batching,
        "service": {"kind": "exponential", "mean_ms": 2.0},
        "overheads": {"network_rtt_ms": {"kind": "constant", "value": 0.5}},
        "frontend": frontend,
        "slo": {"percentile": 99, "latency_ms": 100},
        "run": {"seed": 5},
    })


def _poisson(rate_per_s: float, horizon_s: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1000.0 / rate_per_s, int(rate_per_s * horizon_s * 1.2)))
    return t[t < horizon_s * 1000.0]


@pytest.mark.parametrize("frontend", [{"kind": "profile", "path": SERVING}, EVENT_LOOP], ids=["profile", "event_loop"])
@pytest.mark.parametrize("batching", [{"kind": "none"},
                                      {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 0.5, "dispatch": "on_free"},
                                      {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 0.5, "dispatch": "on_close"}],
                         ids=["none", "on_free", "on_close"])
def test_fixed_fleet_is_the_engine_frontend_bit_for_bit(frontend, batching):
    """Same arrivals, service stream and network draws, segments of 250 ms (a request's ingress, batch
    and reply often straddle a boundary): the engine's latencies, dispatch and service times exactly."""
    exp = _exp(frontend, batching)
    arrival = _poisson(1100, 20, seed=3)  # replicas about 0.75 busy; the event loop about 0.5
    n = len(arrival)
    ref = simulate(exp, Requests(arrival_ms=arrival, items=np.ones(n, dtype=np.int64)),
                   seed=np.random.SeedSequence(11)).records
    eng_seed, fe_seed = np.random.SeedSequence(11).spawn(2)
    fe, _ = resolve(exp)
    rng = np.random.default_rng(fe_seed)  # the engine's frontend draws, in its order
    _draws(fe.ingress_ms, n, rng), _draws(fe.reply_ms, n, rng)
    net = _draws(fe.network_ms, n, rng)
    at = [0]

    def network(k):  # the engine's draws, in arrival order
        at[0] += k
        return net[at[0] - k:at[0]]

    stack = day_stack(exp, np.random.default_rng(0))
    stack = type(stack)(**{**stack.__dict__, "network": network})
    sampler = stack.service(build_service(exp.service).batch_sampler(Streams.spawn(eng_seed).service_rngs(1)[0]))
    run = run_stream(ArraySource(arrival), horizon_ms=20_000, step_ms=250, policy=Fixed(NoAutoscaling(), exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=sampler,
                     overhead=lambda k: np.full(k, 0.5), keep_records=True, stack=stack)
    got = run.records.columns()
    order = np.argsort(got["arrival_ms"], kind="stable")
    got = {k: v[order] for k, v in got.items()}
    assert run.unserved == 0 and np.array_equal(got["arrival_ms"], arrival)
    assert np.array_equal(got["dispatch_ms"], ref.dispatch_ms)
    assert np.array_equal(got["service_ms"], ref.service_ms)
    assert np.array_equal(got["replica"], ref.replica)
    assert np.array_equal(got["latency_ms"], ref.latency_ms)
    wait = ref.latency_ms - (ref.dispatch_ms + ref.service_ms - arrival) - net - 0.5
    assert wait.max() > 0.01  # the loop really delays requests (ingress and replies)


def test_loop_carries_across_segments():
    """The loop cut into segments gives the departures of one pass, bit for bit, and a reply released
    while the loop is busy starts when the ingress jobs released before it are done."""
    rng = np.random.default_rng(1)
    r = np.cumsum(rng.exponential(1.0, 5000))
    w = rng.exponential(0.9, 5000)
    _, whole = fifo_departures(r, w)
    loop = Loop()
    parts = [loop.run(r[i:i + 700], w[i:i + 700]) for i in range(0, 5000, 700)]
    assert np.array_equal(np.concatenate(parts), whole)
    loop = Loop()
    loop.run(r[:10], w[:10])
    t = np.array([r[4] + 1e-9, r[9] + 1e3])
    assert loop.reply_start(t)[0] == pytest.approx(max(whole[4], t[0]), abs=1e-9)
    assert loop.reply_start(t)[1] == pytest.approx(t[1], abs=1e-9)  # the loop is idle by then


def test_profile_loop_work_follows_the_ready_replicas():
    """A replica joining mid-run divides a profile's per-request loop work by the new count from its
    ready time: the mean loop wait drops once it is ready."""
    from simlat.autoscale.policy import Scheduled
    from simlat.config.autoscaling import Schedule

    exp = _exp({"kind": "profile", "path": SERVING}, {"kind": "none"}, replicas=1)
    stack = day_stack(exp, np.random.default_rng(0))
    stack = type(stack)(**{**stack.__dict__, "loop_ms": 0.8})  # a slow loop: about 0.8 busy with one replica
    arrival = _poisson(1000, 8, seed=4)
    sched = Schedule(max_replicas=4, replicas=[(0, 1), (4 / 3600, 4)])  # 4 from t = 4 s
    run = run_stream(ArraySource(arrival), horizon_ms=8000, step_ms=1000, policy=Scheduled(sched, exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=lambda k: 0.2,
                     delay_s=lambda k: np.zeros(k), keep_records=True, stack=stack)
    got = run.records.columns()
    # latency - (dispatch + service - arrival) - network: the reply's wait for the loop; the ingress
    # wait is in dispatch - arrival; with constant 0.2 ms service and 4 replicas the model never queues
    early = got["arrival_ms"] < 4000
    late = got["arrival_ms"] > 4500
    ingress = got["dispatch_ms"] - got["arrival_ms"]
    assert ingress[early].mean() > 1.0  # one loop at 0.8: queueing
    assert ingress[late].mean() < 0.3  # four loops: 0.2 per request, 0.2 busy


@pytest.mark.parametrize("field,value", [("batch_ms", {"kind": "constant", "value": 0.1}),
                                          ("ingress_ms", {"kind": "exponential", "mean": 0.1}),
                                          ("model_noise", {"kind": "lognormal", "median": 1.0, "sigma": 0.1}),
                                          ("slowdown_per_loop_utilization", 0.5),
                                          ("slowdown_includes_loop_wait", False)])
def test_unsupported_frontends_are_refused(field, value):
    with pytest.raises(SimlatError, match=f"frontend.{field}"):
        check(_exp({**EVENT_LOOP, field: value}, {"kind": "none"}))


@pytest.mark.parametrize("load", [0.3, 0.6, 0.85])
@pytest.mark.parametrize("frontend", [{"kind": "profile", "path": SERVING}, EVENT_LOOP], ids=["profile", "event_loop"])
def test_exact_day_with_stack_matches_the_engine_in_law(frontend, load):
    """The whole exact day (its own service and network draws, its own streams) against the engine's
    frontend path on the same arrivals, 4 fixed replicas, no batching: p50 within 3%, p99 within 10%.
    Measured (100k requests): p50 within 0.8%, p99 within 0.7% up to load 0.6 and 5.7% at 0.85
    (sampling noise; on 400k at 0.85: p50 1.4-1.8%, p99 2.3%). Leaving the network delay out moves p50
    by 13-51%, the event loop's ingress by 15-18%; the profile's loop (0.04 ms a request at 4 replicas)
    is within the noise here: the bit-for-bit test above checks it."""
    per = 2.0 * (1.2 if frontend["kind"] == "event_loop" else 1.0) + 0.1  # replica time per request (ms)
    rate = load * 4 * 1000.0 / per
    exp = _exp(frontend, {"kind": "none"}, replicas=4)
    exp = parse_experiment({**exp.model_dump(mode="json", exclude_none=True),
                            "workload": {"arrivals": {"kind": "poisson", "rate_rps": rate}}})
    from simlat.autoscale.stream import simulate_day_exact

    n = 100_000
    _, run = simulate_day_exact(exp, hours=n / rate / 3600.0, keep_records=True)
    got = run.records.columns()
    arr = np.sort(got["arrival_ms"])
    ref = simulate(exp, Requests(arrival_ms=arr, items=np.ones(len(arr), dtype=np.int64)),
                   seed=np.random.SeedSequence(9)).records.latency_ms
    for q, tol in ((50, 0.03), (99, 0.10)):
        a, b = np.percentile(got["latency_ms"], q), np.percentile(ref, q)
        assert abs(a / b - 1) < tol, (q, a, b)


def test_cli_exact_day_runs_the_stack_and_refuses_what_it_cannot(tmp_path):
    """The command: a measured stack runs (no warning that it is left out; latencies include the
    network delay); an event loop with batch work exits 2 naming the field, without a traceback."""
    from typer.testing import CliRunner

    from simlat.cli import app

    exp = tmp_path / "day.yaml"
    exp.write_text(
        "name: d\nworkload: {arrivals: {kind: poisson, rate_rps: 300}}\n"
        "fleet: {replicas: 2, queue: shared, autoscaling: {kind: target_utilization, target: 0.5, max_replicas: 6,"
        " cold_start_s: {kind: constant, value: 10}, window_s: 60, scrape_interval_s: 30}}\n"
        "service: {kind: exponential, mean_ms: 2}\nslo: {percentile: 99, latency_ms: 200}\n"
        f"frontend: {{kind: profile, path: {SERVING}}}\n"
    )
    out = tmp_path / "w.csv"
    res = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--hours", "0.05", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "frontend" not in res.output
    import pandas as pd

    bare = tmp_path / "bare.csv"
    res = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--hours", "0.05", "--out", str(bare),
                                   "--set", "frontend=null"])
    assert res.exit_code == 0, res.output
    with_stack, without = pd.read_csv(out)["p50_ms"], pd.read_csv(bare)["p50_ms"]
    assert (with_stack - without).min() > 1.0  # the profile's network delay: median about 1.5 ms
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--set",
                                   "frontend={kind: event_loop, batch_ms: {kind: constant, value: 0.1}}"])
    assert bad.exit_code == 2 and "frontend.batch_ms" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("load", [0.3, 0.6, 0.85])
def test_reply_work_off_the_loop_is_a_bounded_approximation(load):
    """Reply work (0.05 ms a request, 10% of this loop's work) delays the batch's own replies, one
    after another, but not the loop: against the engine, which puts it on the loop, on the same
    arrivals (no batching, 200k requests) measured p50 -0.5% / -1.2% / -3.1% and p99 +0.2% / +0.1% /
    -2.2% at loads 0.3 / 0.6 / 0.85 (optimistic; with 0.2 ms, 31% of the loop's work, -23% / -19% at
    0.85). Here with batches of up to 4 (replies in series): p50 and p99 within 5%."""
    per = 2.0 * 1.2 + 0.1
    rate = load * 4 * 1000.0 / per
    fe = {**EVENT_LOOP, "reply_ms": {"kind": "constant", "value": 0.05}}
    exp = _exp(fe, {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 0.5, "dispatch": "on_free"}, replicas=4)
    exp = parse_experiment({**exp.model_dump(mode="json", exclude_none=True),
                            "workload": {"arrivals": {"kind": "poisson", "rate_rps": rate}}})
    from simlat.autoscale.stream import check_supported, simulate_day_exact

    assert any("frontend.reply_ms" in w for w in check_supported(exp))
    n = 100_000
    _, run = simulate_day_exact(exp, hours=n / rate / 3600.0, keep_records=True)
    got = run.records.columns()
    arr = np.sort(got["arrival_ms"])
    ref = simulate(exp, Requests(arrival_ms=arr, items=np.ones(len(arr), dtype=np.int64)),
                   seed=np.random.SeedSequence(9)).records.latency_ms
    for q in (50, 99):
        a, b = np.percentile(got["latency_ms"], q), np.percentile(ref, q)
        assert abs(a / b - 1) < (0.03 if load < 0.8 else 0.08), (q, a, b)
    p50 = np.percentile(got["latency_ms"], 50) / np.percentile(ref, 50) - 1
    assert load < 0.8 or p50 < 0  # at high load the loop's missing reply work shows: optimistic


def test_reply_work_in_series_within_a_batch():
    """Bursts of 3 requests 20 ms apart (the loop never has two batches' replies at once, and no
    ingress work): the engine's latencies with reply work (0.05 ms each, in series within the batch),
    to rounding."""
    fe = {**EVENT_LOOP, "ingress_ms": {"kind": "constant", "value": 0.0}, "reply_ms": {"kind": "constant", "value": 0.05}}
    exp = _exp(fe, {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 0.5, "dispatch": "on_close"}, replicas=2)
    arrival = (np.arange(500)[:, None] * 20.0 + np.array([0.0, 0.1, 0.25])[None, :]).ravel() + 1.0
    n = len(arrival)
    ref = simulate(exp, Requests(arrival_ms=arrival, items=np.ones(n, dtype=np.int64)),
                   seed=np.random.SeedSequence(11)).records
    eng_seed, fe_seed = np.random.SeedSequence(11).spawn(2)
    rng = np.random.default_rng(fe_seed)
    block, _ = resolve(exp)
    _draws(block.ingress_ms, n, rng), _draws(block.reply_ms, n, rng)
    net = _draws(block.network_ms, n, rng)
    at = [0]

    def network(k):
        at[0] += k
        return net[at[0] - k:at[0]]

    stack = day_stack(exp, np.random.default_rng(0))
    stack = type(stack)(**{**stack.__dict__, "network": network, "reply": lambda k: np.full(k, 0.05)})
    sampler = stack.service(build_service(exp.service).batch_sampler(Streams.spawn(eng_seed).service_rngs(1)[0]))
    run = run_stream(ArraySource(arrival), horizon_ms=10_001, step_ms=250, policy=Fixed(NoAutoscaling(), exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=sampler,
                     overhead=lambda k: np.full(k, 0.5), keep_records=True, stack=stack)
    got = run.records.columns()
    order = np.argsort(got["arrival_ms"], kind="stable")
    lat = got["latency_ms"][order]
    assert np.array_equal(got["batch_size"][order], ref.batch_size) and ref.batch_size.max() == 3
    assert np.allclose(lat, ref.latency_ms, rtol=0, atol=1e-9)
    # the third reply of a batch leaves two replies after the first
    third = np.flatnonzero(np.arange(n) % 3 == 2)
    lag = (lat[third] + arrival[third] - net[third]) - (lat[third - 2] + arrival[third - 2] - net[third - 2])
    assert np.allclose(lag, 0.10, atol=1e-9)
