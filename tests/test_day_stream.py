"""The exact day engine (simlat.autoscale.stream): a fleet whose size changes at known times matches a
naive per-batch reference request by request; a fixed fleet gives the engine's batches bit for bit;
a removed replica finishes its batch; an overload's queue carries into the next windows; the
windowed percentiles and their intervals come from the histogram faithfully."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simlat.autoscale.arrivals import ArraySource, arrival_source
from simlat.autoscale.policy import Fixed, Scheduled
from simlat.autoscale.stream import run_stream, simulate_day_exact
from simlat.autoscale.windows import BIN_RATIO, hist_quantile, latency_bins
from simlat.cli import app
from simlat.config import parse_experiment
from simlat.config.autoscaling import NoAutoscaling, Schedule
from simlat.engine.batching import BatchPolicy
from simlat.engine.service import build_service
from simlat.engine.simulation import simulate
from simlat.engine.streams import Streams
from simlat.workload import Requests


def _exp(batching: dict, replicas: int = 3, arrivals: dict | None = None, autoscaling: dict | None = None,
         service: dict | None = None, overheads: dict | None = None):
    fleet = {"replicas": replicas, "queue": "shared"}
    if autoscaling is not None:
        fleet["autoscaling"] = autoscaling
    return parse_experiment({
        "name": "stream_test",
        "workload": {"arrivals": arrivals or {"kind": "poisson", "rate_rps": 100}},
        "fleet": fleet,
        "batching": batching,
        "service": service or {"kind": "exponential", "mean_ms": 20},
        "overheads": overheads or {},
        "slo": {"percentile": 99, "latency_ms": 100},
        "run": {"seed": 5},
    })


def _poisson(rate_per_s: float, horizon_s: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1000.0 / rate_per_s, int(rate_per_s * horizon_s * 1.2)))
    return t[t < horizon_s * 1000.0]


BATCHINGS = [
    {"kind": "none"},
    {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 5, "dispatch": "on_free"},
    {"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 5, "dispatch": "on_close"},
]


# -- (2) a fixed fleet: the engine's batches, bit for bit -----------------------------------------


@pytest.mark.parametrize("batching", BATCHINGS, ids=["none", "on_free", "on_close"])
def test_fixed_fleet_is_the_engine_bit_for_bit(batching):
    """Same arrivals, same service stream: the same dispatch, service and done times and latencies
    (overheads constant: the engine draws each overhead part for all requests at once, the stream
    engine segment by segment, so random overheads have the same law but not the same draws)."""
    exp = _exp(batching, replicas=3, overheads={"network_rtt_ms": {"kind": "constant", "value": 0.5}})
    arrival = _poisson(120, 60, seed=1)  # utilisation about 0.8 (3 replicas at 20 ms)
    seed = np.random.SeedSequence(11)
    ref = simulate(exp, Requests(arrival_ms=arrival, items=np.ones(len(arrival), dtype=np.int64)), seed=seed).records
    service = build_service(exp.service)
    sampler = service.batch_sampler(Streams.spawn(seed).service_rngs(1)[0])
    run = run_stream(ArraySource(arrival), horizon_ms=60_000, step_ms=1_000, policy=Fixed(NoAutoscaling(), exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=sampler,
                     overhead=lambda k: np.full(k, 0.5), keep_records=True)
    got = run.records.columns()
    assert run.unserved == 0 and len(got["arrival_ms"]) == len(arrival)
    assert np.array_equal(got["dispatch_ms"], ref.dispatch_ms)
    assert np.array_equal(got["service_ms"], ref.service_ms)
    assert np.array_equal(got["replica"], ref.replica)
    assert np.array_equal(got["latency_ms"], ref.latency_ms)
    assert len(run.decisions) >= 59  # the segments really cut the run (1 s each)


# -- (1) a fleet changing at known times: a naive reference ---------------------------------------


def _lifetimes(schedule: Schedule, step_ms: float, horizon_ms: float, cold_ms: float):
    """Each replica's (ready, removed) times under the schedule, by the rules of the module doc:
    decisions every step; new replicas ready after the cold start; removed: latest ready first."""
    ready, removed = [], []
    n0 = schedule.at_hour(0.0)
    ready += [0.0] * n0
    removed += [math.inf] * n0
    T = step_ms
    while T < horizon_ms * 3:  # the run goes on after the horizon until the queue is empty
        live = [r for r in range(len(ready)) if removed[r] == math.inf]
        want = schedule.at_hour(T / 3.6e6)
        if want > len(live):
            for _ in range(want - len(live)):
                ready.append(T + cold_ms)
                removed.append(math.inf)
        elif want < len(live):
            for r in sorted(live, key=lambda r: (ready[r], r))[want:]:
                removed[r] = T
        T += step_ms
    return ready, removed


def _naive(arrival, ready, removed, B, W, on_close, services, first_call):
    """Batch after batch: scan the replicas in (free-or-ready time, index) order and take the first
    that can dispatch the batch before its removal; a new replica's first batch takes >= first_call."""
    n = len(arrival)
    free = list(ready)
    used = [x == 0.0 for x in ready]  # the replicas of the start are warm
    out_d = np.zeros(n)
    out_s = np.zeros(n)
    out_r = np.zeros(n, dtype=np.int64)
    last = 0.0
    j = 0
    k = 0
    while j < n:
        members = [i for i in range(j, min(n, j + B))]
        close = min(arrival[j] + W, arrival[members[-1]] if len(members) == B else math.inf)
        for r in sorted(range(len(free)), key=lambda r: (free[r], r)):
            t = free[r] if on_close else max(free[r], last)
            d = max(t, close)
            if d < removed[r]:
                break
        cut = close if on_close else d
        size = sum(1 for i in members if arrival[i] <= cut)
        s = services[k]
        k += 1
        if not used[r]:
            used[r] = True
            s = max(s, first_call)
        out_d[j:j + size], out_s[j:j + size], out_r[j:j + size] = d, s, r
        free[r] = d + s
        last = d
        j += size
    return out_d, out_s, out_r


@pytest.mark.parametrize("batching", BATCHINGS, ids=["none", "on_free", "on_close"])
def test_scheduled_fleet_matches_a_naive_reference_request_by_request(batching):
    step_ms, horizon_ms, cold_ms, first_call = 6_000.0, 90_000.0, 4_000.0, 80.0
    # 2 replicas, 4 from 18 s, 1 from 36 s (overloaded: the queue grows), 3 from 60 s
    sched = Schedule(max_replicas=6, replicas=[(0, 2), (0.005, 4), (0.01, 1), (60 / 3600, 3)])
    exp = _exp(batching)
    arrival = _poisson(70, horizon_ms / 1000, seed=2)
    services = np.random.default_rng(3).exponential(25.0, len(arrival))
    it = iter(services.tolist())
    run = run_stream(ArraySource(arrival), horizon_ms=horizon_ms, step_ms=step_ms, policy=Scheduled(sched, exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=lambda items: next(it),
                     delay_s=lambda k: np.full(k, cold_ms / 1000), first_call=first_call, keep_records=True)
    got = run.records.columns()
    ready, removed = _lifetimes(sched, step_ms, horizon_ms, cold_ms)
    p = BatchPolicy.from_config(exp.batching)
    d, s, r = _naive(arrival, ready, removed, p.max_batch, p.max_wait_ms, p.on_close, services, first_call)
    assert len(got["arrival_ms"]) == len(arrival) > 5000
    assert np.array_equal(got["replica"], r)
    assert np.array_equal(got["dispatch_ms"], d)
    assert np.array_equal(got["service_ms"], s)
    assert np.array_equal(got["latency_ms"], d + s - arrival)
    assert np.array_equal(np.asarray(run.fleet.ready), np.asarray(ready[: len(run.fleet.ready)]))
    # nothing routed to a replica before it is ready, or at or after its removal
    fr, fx = np.asarray(run.fleet.ready), np.asarray(run.fleet.removed)
    assert np.all(got["dispatch_ms"] >= fr[got["replica"]]) and np.all(got["dispatch_ms"] < fx[got["replica"]])
    assert (s == first_call).sum() >= 1  # some new replica's first batch took the first call


# -- (3) drain -------------------------------------------------------------------------------------


def test_a_removed_replica_finishes_its_batch_and_is_billed_until_then():
    """Two replicas with 3 s batches, one removed at 10 s while serving: its batch ends after 10 s
    on it, it takes nothing after 10 s, and it is billed (draining) until the batch ends."""
    sched = Schedule(max_replicas=2, replicas=[(0, 2), (10 / 3600, 1)])
    exp = _exp({"kind": "none"}, service={"kind": "deterministic", "ms": 3000})
    arrival = np.arange(0.0, 30_000.0, 900.0)  # overloaded: both replicas always busy
    run = run_stream(ArraySource(arrival), horizon_ms=30_000, step_ms=1_000, policy=Scheduled(sched, exp),
                     batch=BatchPolicy.from_config(exp.batching), sampler=lambda items: 3000.0,
                     delay_s=lambda k: np.zeros(k), keep_records=True)
    got = run.records.columns()
    gone = int(np.argmax(np.asarray(run.fleet.removed) < math.inf))
    assert run.fleet.removed[gone] == 10_000.0
    mine = got["replica"] == gone
    last_start = got["dispatch_ms"][mine].max()
    assert last_start < 10_000.0 < last_start + 3000.0  # mid-batch at the removal, and it finished it
    assert run.fleet.done[gone] == last_start + 3000.0
    counts = run.fleet.counts_at(np.array([10_500.0, run.fleet.done[gone] + 1]))
    assert list(counts["draining"]) == [1, 0] and list(counts["ready"]) == [1, 1]
    billed = run.fleet.overlap(np.array([0.0, 30_000.0]), "billed")[0]
    assert billed == pytest.approx(30_000.0 + run.fleet.done[gone])


# -- (4) an overload's queue carries over ------------------------------------------------------------


def test_an_overloaded_minute_leaves_a_queue_the_next_minute_sees():
    """One replica, 10 ms per request: a minute at 125 req/s leaves about 25 x 60 = 1,500 requests
    (15 s of work) that drain at 100 - 50 = 50 req/s over the next minute at 50 req/s: its p99 is
    seconds (the quasi-static day, starting each window empty, would show milliseconds), and the
    third minute, drained, is back to milliseconds."""
    curve = {"kind": "rate_curve", "points": [[0, 125], [60, 125], [60, 50], [180, 50]]}
    exp = _exp({"kind": "none"}, replicas=1, arrivals=curve, service={"kind": "deterministic", "ms": 10},
               autoscaling={"kind": "none", "day_s": 180, "window_s": 60})
    res, run = simulate_day_exact(exp)
    w = res.windows
    assert 7000 < w["requests"][0] < 8000 and run.unserved == 0
    assert w["p99_ms"][0] > 5_000  # the queue builds within the overloaded minute
    assert 8_000 < w["p99_ms"][1] < 25_000  # ~15 s of backlog at the minute's start
    assert w["p99_ms"][2] < 100 and bool(w["meets_slo"][2]) and not bool(w["meets_slo"][1])
    # busy while the backlog drains (about 30 s), then at 50%: about (30 + 30 x 0.5) / 60 = 0.75
    assert w["utilization"][1] == pytest.approx(0.75, abs=0.05)
    assert res.summary.method == "exact" and res.summary.served_requests == int(w["requests"].sum())
    from simlat.autoscale import simulate_day

    quasi = simulate_day(exp).windows  # each window starts empty: the backlog is lost
    assert quasi["p99_ms"][1] < 100 and bool(quasi["meets_slo"][1])


# -- the histogram ---------------------------------------------------------------------------------


def test_windowed_quantiles_from_the_histogram_are_within_a_bin_and_the_interval_covers():
    rng = np.random.default_rng(4)
    lat = rng.lognormal(1.0, 0.8, 20_000)
    counts = np.bincount(latency_bins(lat), minlength=latency_bins(np.array([1e9]))[0] + 1)
    est, lo, hi = hist_quantile(counts, 0.99)
    exact = float(np.quantile(lat, 0.99))
    assert abs(est / exact - 1) <= BIN_RATIO - 1
    assert lo <= exact <= hi
    # the interval is the order statistics' binomial interval: about +-2 sd of the rank
    sd = math.sqrt(20_000 * 0.99 * 0.01)
    srt = np.sort(lat)
    assert lo <= srt[int(19_800 - 1.5 * sd)] and hi >= srt[int(19_800 + 1.5 * sd)]
    assert hist_quantile(np.zeros(10, dtype=np.int64), 0.99) is None


# -- arrivals ----------------------------------------------------------------------------------------


def test_arrivals_slice_by_slice_follow_the_rate_curve():
    """Counts per slice of a repeating rate curve are Poisson with the curve's integral as mean."""
    cfg = _exp({"kind": "none"}, arrivals={"kind": "rate_curve", "points": [[0, 1000], [10, 3000], [20, 1000]],
                                           "repeat": True}).workload.arrivals
    src = arrival_source(cfg, np.random.default_rng(8))
    parts = [src.take(t, t + 2_500.0) for t in np.arange(0.0, 40_000.0, 2_500.0)]
    t = np.concatenate(parts)
    assert np.all(np.diff(t) >= 0) and t[0] >= 0 and t[-1] < 40_000
    counts = np.array([np.count_nonzero((t >= a) & (t < a + 5000)) for a in np.arange(0, 40_000, 5000)])
    from simlat.workload.rate_curve import curve_of

    cum = curve_of(cfg).cumulative(np.arange(0, 45, 5.0))
    mean = np.diff(cum)
    assert np.all(np.abs(counts - mean) <= 4 * np.sqrt(mean))


# -- the command -----------------------------------------------------------------------------------


def test_cli_exact_day_writes_the_window_table(tmp_path):
    exp = tmp_path / "day.yaml"
    exp.write_text(
        "name: d\nworkload: {arrivals: {kind: poisson, rate_rps: 200}}\n"
        "fleet: {replicas: 2, queue: shared, autoscaling: {kind: target_utilization, target: 0.5, max_replicas: 6,"
        " cold_start_s: {kind: constant, value: 10}, window_s: 120, scrape_interval_s: 30}}\n"
        "service: {kind: exponential, mean_ms: 10}\nslo: {percentile: 99, latency_ms: 200}\n"
    )
    out = tmp_path / "w.csv"
    res = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--hours", "0.1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "exact: one event-level run" in res.output
    import pandas as pd

    w = pd.read_csv(out)
    for col in ("t_s", "offered_rps", "requests", "drops", "ready", "starting", "draining", "billed", "utilization",
                "p50_ms", "p99_ms", "p99_lo_ms", "p99_hi_ms", "meets_slo"):
        assert col in w.columns
    assert len(w) == 3 and w["requests"].sum() > 0.9 * 200 * 360
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "fast"])
    assert bad.exit_code == 2 and "--engine" in bad.output
    bad = CliRunner().invoke(app, ["day", str(exp), "--hours", "1"])
    assert bad.exit_code == 2 and "--hours" in bad.output
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--hours", "0.01"])  # 36 s < a window
    assert bad.exit_code == 2 and "--hours: 0.01 (36 s) is invalid: it must cover at least one window (120 s" in bad.output
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--window-s", "1"])
    assert bad.exit_code == 2 and "--window-s: 1 s gives 86400 windows" in bad.output
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact", "--set", "fleet.queue=per_replica"])
    assert bad.exit_code == 2 and "fleet.queue: 'per_replica'" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["day", str(exp), "--engine", "exact",
                                   "--set", "workload.arrivals={kind: gamma, rate_rps: 100, cv: 2}"])
    assert bad.exit_code == 2 and "workload.arrivals.kind: 'gamma'" in bad.output


AZURE = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "azure_llm2023_conv.csv"


@pytest.mark.skipif(not AZURE.exists(), reason=f"shared trace folder absent ({AZURE.parent}); it lives beside the repo")
def test_the_azure_trace_replays_as_a_day_scaled_slice_by_slice():
    """Slices of the scaled, tiled trace are the trace replay's arrivals (simlat.workload.trace), cut."""
    from simlat.config.workload import Trace
    from simlat.workload.trace import replay

    cfg = Trace(path=AZURE, column="TIMESTAMP", unit="datetime", target_rate_rps=5000)
    src = arrival_source(cfg, np.random.default_rng(0))
    got = np.concatenate([src.take(t, t + 1000.0) for t in np.arange(0.0, 20_000.0, 1000.0)])
    ref = replay(cfg, None, 20_000.0, np.random.default_rng(0)).arrival_ms
    assert np.array_equal(got, ref)
    assert abs(len(got) / 20 - 5000) < 0.1 * 5000  # 5,000 req/s over 20 s (about 5 tiles of the trace)


def test_a_batch_after_an_idle_gap_draws_from_the_profiles_after_idle_curve():
    """mlp_ranker bf16 on H100: about 0.1 ms back to back, about 0.55 ms after 250 ms idle."""
    exp = parse_experiment({
        "name": "idle", "workload": {"arrivals": {"kind": "poisson", "rate_rps": 5}},
        "fleet": {"replicas": 1, "queue": "shared", "autoscaling": {"kind": "none", "day_s": 240, "window_s": 60}},
        "service": {"kind": "profile", "path": str(Path(__file__).resolve().parents[1] / "calibration" / "h100-cuda.json"),
                    "model": "mlp_ranker", "variant": "bf16"},
        "slo": {"percentile": 99, "latency_ms": 10},
    })
    _, run = simulate_day_exact(exp, keep_records=True)
    rec = run.records.columns()
    d, s = rec["dispatch_ms"], rec["service_ms"]
    gap = d[1:] - (d[:-1] + s[:-1])
    after_idle = s[1:][gap >= 250.0]
    back_to_back = s[1:][gap < 250.0]
    assert len(after_idle) > 100 and len(back_to_back) > 300
    assert np.median(after_idle) > 0.5 and np.median(back_to_back) < 0.2


def test_the_vectorised_profile_draws_have_the_engines_distribution():
    """Per batch size, the exact day's profile draws and the engine's sampler agree in law
    (two-sample Kolmogorov-Smirnov at the 0.1% level, 20,000 draws each)."""
    from scipy.stats import ks_2samp

    from simlat.autoscale.stream import vector_profile_sampler
    from simlat.config.service import ProfileService
    from simlat.profiles.sampling import make_sampler, profile_curves

    svc = ProfileService(path=Path(__file__).resolve().parents[1] / "calibration" / "h100-cuda.json", model="mlp_ranker",
                         variant="bf16", add_components=["deserialize_raw", "h2d_pinned", "d2h"])
    curves = profile_curves(svc)
    fast = vector_profile_sampler(curves, np.random.default_rng(1))
    engine = make_sampler(curves, np.random.default_rng(2))
    for items in (500, 1500, 4000):
        a = np.array([fast(items) for _ in range(20_000)])
        b = np.array([engine(items) for _ in range(20_000)])
        assert ks_2samp(a, b).pvalue > 1e-3, items


def test_the_hpa_like_policy_closes_the_loop_on_the_simulated_utilisation():
    """100 -> 300 req/s at 120 s, 10 ms per request (100 req/s a replica), target 50%: the scrape at
    180 s sees the 2 replicas saturated and asks for 2 x 1.0 / 0.5 = 4; the minute's backlog (about
    6,000 requests) keeps those 4 saturated until the next scrape, which asks for 8; the fleet then
    runs below target (300 / 800) but the 300 s scale-down stabilisation keeps 8 to the end."""
    curve = {"kind": "rate_curve", "points": [[0, 100], [120, 100], [120, 300], [600, 300]]}
    exp = _exp({"kind": "none"}, replicas=2, arrivals=curve, service={"kind": "exponential", "mean_ms": 10},
               autoscaling={"kind": "target_utilization", "target": 0.5, "min_replicas": 1, "max_replicas": 10,
                            "cold_start_s": {"kind": "constant", "value": 10}, "scrape_interval_s": 60,
                            "scale_down_stabilization_s": 300, "day_s": 600, "window_s": 60})
    res, run = simulate_day_exact(exp)
    want = {t / 1000: n for t, n, _, _ in run.decisions}
    util = {t / 1000: u for t, _, _, u in run.decisions}
    assert want[60.0] == 2 and want[120.0] == 2 and util[120.0] == pytest.approx(0.5, abs=0.1)
    assert util[180.0] == pytest.approx(1.0, abs=0.02) and want[180.0] == 4
    assert util[240.0] == pytest.approx(1.0, abs=0.02) and want[240.0] == 8
    assert util[360.0] == pytest.approx(0.375, abs=0.05) and want[600.0] == 8
    w = res.windows
    assert list(w["ready"][:3]) == [2, 2, 2] and w["ready"].iloc[-1] == 8
    assert list(w["starting"][3:6]) == [2, 4, 0] and w["p99_ms"][2] > 1000  # the overloaded minute queues for seconds
    assert bool(w["meets_slo"].iloc[-1])


def test_the_window_table_is_the_per_request_records_windowed():
    """Each window's requests, p50 and p99 (within a bin) and within-SLO share are those of the
    requests that arrived in it, read off the run's per-request records."""
    curve = {"kind": "rate_curve", "points": [[0, 150], [90, 250], [180, 150]]}
    exp = _exp({"kind": "dynamic", "max_batch_size": 4, "max_wait_ms": 5}, replicas=2, arrivals=curve,
               overheads={"serialization_ms": {"kind": "gamma", "mean": 0.3, "cv": 0.5}},
               autoscaling={"kind": "none", "day_s": 180, "window_s": 30})
    res, run = simulate_day_exact(exp, keep_records=True)
    rec = run.records.columns()
    win = (rec["arrival_ms"] // 30_000).astype(int)
    for i, row in res.windows.iterrows():
        lat = rec["latency_ms"][win == i]
        assert row["requests"] == len(lat)
        for col, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            exact = float(np.quantile(lat, q, method="inverted_cdf"))
            assert abs(row[col] / exact - 1) <= BIN_RATIO - 1, (i, col)
        assert row["p99_lo_ms"] <= row["p99_ms"] <= row["p99_hi_ms"]
        assert row["within_slo_share"] == pytest.approx(np.mean(lat <= 100))
        assert row["utilization"] > 0.3


class _Recording(Fixed):
    """The fixed fleet, keeping every observation it is shown."""

    def __init__(self, cfg, experiment):
        super().__init__(cfg, experiment)
        self.seen: list = []

    def decide(self, t_s, spec, ready, obs):
        self.seen.append(obs)
        return super().decide(t_s, spec, ready, obs)


def test_the_observed_concurrency_counts_each_request_second_once():
    """Little's law over the steps: the concurrency the policy sees, integrated over the run, is the
    requests' total time in the system (end to end, overheads included, as the quasi-static day's
    rate x mean latency), even when requests wait across step boundaries."""
    exp = _exp({"kind": "none"}, replicas=1)
    arrival = _poisson(80, 10, seed=3)  # 1.6x what one replica at 20 ms serves: a queue across many steps
    sampler = build_service(exp.service).batch_sampler(Streams.spawn(np.random.SeedSequence(2)).service_rngs(1)[0])
    policy = _Recording(NoAutoscaling(), exp)
    run = run_stream(ArraySource(arrival), horizon_ms=10_000, step_ms=1_000, policy=policy,
                     batch=BatchPolicy.from_config(exp.batching), sampler=sampler, keep_records=True,
                     overhead=lambda k: np.full(k, 0.5))
    got = run.records.columns()
    assert run.unserved == 0
    in_system = float(got["latency_ms"].sum())
    assert in_system == pytest.approx(float((got["dispatch_ms"] + got["service_ms"] - got["arrival_ms"]).sum())
                                      + 0.5 * len(arrival))
    waiting = float((got["dispatch_ms"] - got["arrival_ms"]).sum())
    assert sum(o.concurrency for o in policy.seen) * 1_000 == pytest.approx(in_system, rel=1e-9)
    assert sum(o.queue_length for o in policy.seen) * 1_000 == pytest.approx(waiting, rel=1e-9)


def test_a_window_too_small_for_the_interval_has_open_bounds():
    """100 requests cannot bound a p99 from above at 95% (P(all 100 below it) = 0.99^100 = 0.37 > 2.5%):
    the upper bound is +inf, as the engine's intervals say it, not the largest latency seen; one request
    cannot bound a median from below: 0."""
    lat = np.linspace(1.0, 10.0, 100)
    counts = np.bincount(latency_bins(lat), minlength=latency_bins(np.array([1e9]))[0] + 1)
    est, lo, hi = hist_quantile(counts, 0.99)
    assert math.isinf(hi) and lo <= est <= 10.0 * BIN_RATIO
    one = np.bincount(latency_bins(np.array([5.0])), minlength=len(counts))
    est, lo, hi = hist_quantile(one, 0.5)
    assert lo == 0.0 and math.isinf(hi) and abs(est / 5.0 - 1) <= BIN_RATIO - 1


def test_the_kpa_decides_every_2_s_in_the_exact_day_and_panics_on_a_burst():
    """Knative's autoscaler ticks every 2 s; its 6-s panic window means nothing at one decision a minute.
    100 -> 1,000 req/s at 60 s, 10 ms per request: the panic estimate sees the burst within a tick or
    two, long before a minute has passed."""
    curve = {"kind": "rate_curve", "points": [[0, 100], [60, 100], [60, 1000], [120, 1000]]}
    exp = _exp({"kind": "none"}, replicas=2, arrivals=curve, service={"kind": "exponential", "mean_ms": 10},
               autoscaling={"kind": "target_concurrency", "target": 1, "min_replicas": 2, "max_replicas": 40,
                            "cold_start_s": {"kind": "constant", "value": 1}, "day_s": 120, "window_s": 60})
    _, run = simulate_day_exact(exp)
    t = np.array([d[0] for d in run.decisions[:60]])
    assert np.allclose(np.diff(t), 2000.0)
    asked = {d[0] / 1000: d[1] for d in run.decisions}
    assert max(n for s, n in asked.items() if 60 < s <= 66) >= 8  # scaled up within 6 s of the burst


@pytest.mark.parametrize("engine", ["exact", "quasi-static"])
def test_a_day_refuses_shared_gpus_and_colocated_models(engine):
    """The exact engine would run two instances on one GPU as two GPUs and drop the colocated model;
    both engines would bill instances as GPUs. Refused, naming the field, before anything runs."""
    root = Path(__file__).resolve().parents[1] / "experiments"
    for name, field in (("triton_shared_h100.yaml", "fleet.instances_per_gpu: 2"), ("feed_ads_shared.yaml", "colocated:")):
        short = ["--hours", "0.02"] if engine == "exact" else []
        bad = CliRunner().invoke(app, ["day", str(root / name), "--engine", engine, "--window-s", "60", *short])
        assert bad.exit_code == 2 and field in bad.output and "Traceback" not in bad.output, bad.output
