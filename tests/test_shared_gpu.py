"""Several model instances on one GPU: the contention profile reader, the slowdown model and the
``shared_gpu`` engine path (exact piecewise-constant progress rates), against the event path and
against processor-sharing theory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlat.config.loader import parse_experiment
from simlat.engine import simulate
from simlat.engine.contention import SlowdownModel
from simlat.engine.service import build_service
from simlat.engine.shared_gpu import SharedGpuEngine, _Horizon, device_set
from simlat.engine.spec import DeviceSpec, EngineSpec
from simlat.engine.streams import Streams
from simlat.errors import SimlatError
from simlat.profiles.contention import parse, read
from simlat.workload import generate

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "tests" / "data" / "contention-synthetic.json"
"""Invented slowdowns (test data only, not a measurement)."""


def _profile(tmp_path: Path, slow_of_k: dict[int, float], model=("toy", "v"), batch=8) -> Path:
    """A contention profile with one model at ``k`` instances: slowdown ``slow_of_k[k]``."""
    t = {"p50": 1.0, "p90": 1.0, "p99": 1.0, "mean": 1.0, "n": 10}
    ms = [{"mode": "processes", "members": [{"model": model[0], "variant": model[1], "batch_size": batch}] * k,
           "alone_ms": [t] * k, "together_ms": [t] * k, "slowdown": [s] * k} for k, s in slow_of_k.items()]
    p = tmp_path / "contention.json"
    p.write_text(json.dumps({"schema": "simlat.contention", "schema_version": 1, "measurements": ms}))
    return p


def _experiment(contention: Path | None, *, gpus=2, ipg=1, rate=2000.0, service=None, batch=8, **fleet):
    fl = {"gpus": gpus, "instances_per_gpu": ipg, "queue": "shared", **fleet}
    if contention is not None:
        fl["contention"] = {"path": str(contention), "model": "toy", "variant": "v"}
    return parse_experiment({
        "name": "t",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": rate}},
        "fleet": fl,
        "batching": {"kind": "dynamic", "max_batch_size": batch, "max_wait_ms": 0.5},
        "service": service or {"kind": "lognormal", "median_ms": 1.0, "sigma": 0.4},
        "slo": {"latency_ms": 30},
    })


def _requests(exp, n=20_000, seed=1):
    return generate(exp.workload, n=n, duration_s=None, seed=np.random.SeedSequence(seed))


# -- the profile reader ------------------------------------------------------------------------
def test_the_synthetic_profile_reads_and_says_it_is_synthetic():
    p = read(str(SYNTHETIC))
    assert p.modes() == ["processes"]
    assert "SYNTHETIC" in " ".join(p.provenance["notes"])


def test_a_profile_with_a_missing_per_member_entry_is_refused():
    data = json.loads(SYNTHETIC.read_text())
    data["measurements"][0]["slowdown"] = [1.5]
    with pytest.raises(SimlatError, match="slowdown has 1 entries for 2 members"):
        parse(data, "x.json")


def test_a_newer_schema_version_is_refused():
    data = json.loads(SYNTHETIC.read_text())
    data["schema_version"] = 2
    with pytest.raises(SimlatError, match="newer than this simlat reads"):
        parse(data, "x.json")


# -- the slowdown model ------------------------------------------------------------------------
def test_slowdown_measured_interpolated_extrapolated_and_additive():
    m = SlowdownModel(read(str(SYNTHETIC)), "processes")
    mlp, dlrm = ("mlp_ranker", "bf16"), ("dlrm_small", "fp32")
    assert m.slowdown((mlp, 32), ()) == 1.0
    assert m.slowdown((mlp, 32), ((mlp, 32),)) == pytest.approx(1.6)
    assert m.slowdown((mlp, 1024), ((mlp, 1024), (mlp, 1024))) == pytest.approx(2.8)
    # halfway in log batch size between 32 and 1024
    mid = int(round(np.exp((np.log(32) + np.log(1024)) / 2)))
    x = (np.log(mid) - np.log(32)) / (np.log(1024) - np.log(32))
    assert m.slowdown((mlp, mid), ((mlp, mid),)) == pytest.approx(1.6 + x * 0.3, rel=1e-9)
    assert not m.warnings
    # k = 4, measured up to 3: linear through k = 2 and 3
    assert m.slowdown((mlp, 32), ((mlp, 32),) * 3) == pytest.approx(2.3 + 0.7)
    assert any("extrapolated" in w for w in m.warnings)
    # a mix never measured as a whole: 1 + sum of the pairs' excess
    s = m.slowdown((mlp, 256), tuple(sorted(((dlrm, 256), (mlp, 256)))))
    assert s == pytest.approx(1 + (1.4 - 1) + (1.6 + (np.log(256) - np.log(32)) / np.log(32) * 0.3 - 1))
    assert any("additive" in w for w in m.warnings)


def test_a_missing_pair_is_refused_before_the_run():
    m = SlowdownModel(read(str(SYNTHETIC)), "processes")
    with pytest.raises(SimlatError, match="no 'processes' measurement of mlp_ranker/bf16 beside other/v"):
        m.check([[("mlp_ranker", "bf16"), ("other", "v")]])
    with pytest.raises(SimlatError, match="has no measurements in the contention profile"):
        SlowdownModel(read(str(SYNTHETIC)), "mps")


# -- the engine path ---------------------------------------------------------------------------
def _records_equal(a, b):
    for name in ("dispatch_ms", "done_ms", "service_ms", "replica", "batch_id", "batch_size", "latency_ms"):
        np.testing.assert_array_equal(getattr(a.records, name), getattr(b.records, name), err_msg=name)


@pytest.mark.parametrize("batching", [{"queue": "shared"}, {"queue": "per_replica", "balancer": "join_shortest_queue"}])
def test_one_instance_per_gpu_gives_the_event_paths_records(batching):
    exp = _experiment(None, gpus=4, ipg=1, rate=3000, **batching)
    req = _requests(exp)
    seed = np.random.SeedSequence(5)
    a = simulate(exp, req, seed=seed, path="event")
    b = simulate(exp, req, seed=seed, path="shared_gpu")
    _records_equal(a, b)
    np.testing.assert_array_equal(a.busy_ms, b.busy_ms)


def test_the_comparison_with_the_event_path_can_fail(tmp_path):
    """Two instances per GPU with a slowdown of 2 change the records: the equality above is not vacuous."""
    prof = _profile(tmp_path, {2: 2.0})
    exp = _experiment(prof, gpus=2, ipg=2, rate=3000)
    one = _experiment(None, gpus=4, ipg=1, rate=3000)
    req = _requests(exp)
    seed = np.random.SeedSequence(5)
    with pytest.raises(AssertionError):
        _records_equal(simulate(one, req, seed=seed, path="event"), simulate(exp, req, seed=seed))


def test_other_paths_refuse_shared_gpus(tmp_path):
    exp = _experiment(_profile(tmp_path, {2: 2.0}), gpus=2, ipg=2)
    with pytest.raises(SimlatError, match="does not model GPUs shared"):
        simulate(exp, _requests(exp, n=500), seed=np.random.SeedSequence(1), path="event")


def test_work_is_conserved_on_every_gpu(tmp_path):
    """The alone time of every batch equals the progress its GPU made: the integral over time of
    the sum of the running batches' rates 1/s (the rescaling loses and invents no work)."""
    prof = _profile(tmp_path, {2: 1.7, 3: 2.3, 4: 3.1})
    exp = _experiment(prof, gpus=2, ipg=4, rate=6000, service={"kind": "lognormal", "median_ms": 1.0, "sigma": 0.6})
    spec = EngineSpec.from_experiment(exp)
    req = _requests(exp, n=5000)
    devices, device_of, key = device_set(spec, trace=True)
    import simpy

    eng = SharedGpuEngine(spec, req, build_service(exp.service), Streams.spawn(np.random.SeedSequence(3)),
                          env=simpy.Environment(), horizon=_Horizon(), devices=devices, device_of=device_of, key=key)
    eng.run()
    seg = np.array(devices.segments)
    bat = np.array(devices.batches)
    assert len(bat) > 500 and set(np.unique(seg[:, 3])) > {1.0}  # batches did overlap
    for d in range(2):
        progress = float(np.sum((seg[seg[:, 0] == d, 2] - seg[seg[:, 0] == d, 1]) * seg[seg[:, 0] == d, 3]))
        alone = float(bat[bat[:, 0] == d, 1].sum())
        assert progress == pytest.approx(alone, rel=1e-9)
    # and no batch ran faster than alone
    assert np.all(bat[:, 3] - bat[:, 2] >= bat[:, 1] * (1 - 1e-12))


def test_time_slicing_is_processor_sharing_mm1(tmp_path):
    """With s(k) = k (pure time slicing) and exponential service, k instances on one GPU serve at
    total rate mu whenever any is busy: the number in system is that of an M/M/1 queue, so the mean
    latency is 1 / (mu - lambda) (Little), checked within a batch-means confidence interval."""
    prof = _profile(tmp_path, {2: 2.0, 3: 3.0, 4: 4.0}, batch=1)
    exp = _experiment(prof, gpus=1, ipg=4, rate=700.0, service={"kind": "exponential", "mean_ms": 1.0}, batch=1)
    res = simulate(exp, _requests(exp, n=120_000, seed=2), seed=np.random.SeedSequence(9))
    lat = res.records.latency_ms[10_000:]
    expected = 1.0 / (1.0 - 0.7)  # ms
    means = lat[: len(lat) // 20 * 20].reshape(20, -1).mean(axis=1)
    half = 2.09 * means.std(ddof=1) / np.sqrt(20)  # t(0.975, 19)
    assert abs(means.mean() - expected) < half + 0.01 * expected, (means.mean(), half)
    # the instances overlap: with four of them, a latency often exceeds the alone service time
    assert np.mean(res.records.service_ms > 1.0) > 0.4


def test_time_slicing_without_sharing_is_not_mm1(tmp_path):
    """The same load on four GPUs of one instance each (M/M/4) has a much lower mean: the check
    above can tell the two apart."""
    exp = _experiment(None, gpus=4, ipg=1, rate=700.0, service={"kind": "exponential", "mean_ms": 1.0}, batch=1)
    lat = simulate(exp, _requests(exp, n=40_000, seed=2), seed=np.random.SeedSequence(9)).records.latency_ms
    assert np.mean(lat[4000:]) < 0.6 * (1.0 / (1.0 - 0.7))


# -- the fleet's layout, the sweep and the cost ------------------------------------------------
def test_gpus_fix_the_replica_count(tmp_path):
    exp = _experiment(_profile(tmp_path, {2: 2.0}), gpus=3, ipg=2)
    assert exp.fleet.replicas == 6 and exp.fleet.n_gpus == 3
    assert EngineSpec.from_experiment(exp).devices == DeviceSpec(3, 2, ("toy", "v"), exp.fleet.contention.path)


@pytest.mark.parametrize(
    ("fleet", "message"),
    [
        ({"gpus": 2, "replicas": 3}, r"replicas: 3 must equal gpus x instances_per_gpu \(2 x 1 = 2\)"),
        ({"replicas": 3, "instances_per_gpu": 2, "contention": {"path": "c.json"}}, "must be a multiple of instances_per_gpu"),
        ({"gpus": 2, "instances_per_gpu": 2}, "contention: required when instances_per_gpu is 2"),
    ],
)
def test_bad_layouts_are_refused_with_field_and_rule(fleet, message):
    data = {"name": "t", "workload": {"arrivals": {"kind": "poisson", "rate_rps": 10}}, "fleet": fleet,
            "service": {"kind": "deterministic", "ms": 1.0}, "slo": {"latency_ms": 5}}
    with pytest.raises(SimlatError) as err:
        parse_experiment(data)
    assert any(__import__("re").search(message, line) for line in [str(err.value), *err.value.details]), err.value


def test_a_missing_contention_file_is_a_clear_error(tmp_path):
    exp = _experiment(tmp_path / "absent.json", gpus=1, ipg=2)
    with pytest.raises(SimlatError, match="not found: no contention profile there"):
        simulate(exp, _requests(exp, n=200), seed=np.random.SeedSequence(1))


def test_cost_counts_gpus_not_instances(tmp_path):
    from simlat.config.sweep import Sweep
    from simlat.sweep.cost import cost_per_hour

    exp = _experiment(_profile(tmp_path, {2: 2.0}), gpus=3, ipg=4)
    sweep = Sweep(cost_per_replica_hour=2.0)
    assert exp.fleet.replicas == 12
    assert cost_per_hour(exp, sweep) == pytest.approx(3 * 2.0)


def test_instances_per_gpu_and_gpus_are_sweep_dimensions(tmp_path):
    from simlat.sweep.grid import expand

    exp = _experiment(_profile(tmp_path, {2: 2.0, 3: 2.6}), gpus=2, ipg=1)
    exp = exp.model_copy(update={"sweep": __import__("simlat.config.sweep", fromlist=["Sweep"]).Sweep(
        grid={"fleet.gpus": [1, 2], "fleet.instances_per_gpu": [1, 2, 3]})})
    configs = expand(exp)
    got = sorted((c.experiment.fleet.n_gpus, c.experiment.fleet.instances_per_gpu, c.experiment.fleet.replicas)
                 for c in configs)
    assert got == sorted((g, i, g * i) for g in (1, 2) for i in (1, 2, 3))


def test_sharing_a_gpu_costs_latency_and_capacity(tmp_path):
    """Two instances on one GPU with slowdown 1.6 serve more than one instance alone (1.25x the
    capacity) but each batch takes longer: the engine's capacity estimate says the same."""
    prof = _profile(tmp_path, {2: 1.6})
    one = _experiment(None, gpus=1, ipg=1, rate=500, service={"kind": "deterministic", "ms": 2.0}, batch=4)
    two = _experiment(prof, gpus=1, ipg=2, rate=500, service={"kind": "deterministic", "ms": 2.0}, batch=4)
    req = _requests(one, n=5000)
    a = simulate(one, req, seed=np.random.SeedSequence(1))
    b = simulate(two, req, seed=np.random.SeedSequence(1))
    assert b.capacity_rps == pytest.approx(a.capacity_rps * 2 / 1.6)
    assert np.nanmax(b.records.service_ms) == pytest.approx(2.0 * 1.6)
    assert np.nanmin(b.records.service_ms) == pytest.approx(2.0)


# -- several models on one set of GPUs ---------------------------------------------------------
def _colocated(placement="shared", *, gpus=2, ipg=1, ads_ipg=1, ads_gpus=None, feed_rate=1500.0, ads_rate=3000.0):
    tenant = {
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": ads_rate}},
        "service": {"kind": "lognormal", "median_ms": 0.4, "sigma": 0.3},
        "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 0.2},
        "slo": {"latency_ms": 10},
        "instances_per_gpu": ads_ipg,
        "contention_model": "dlrm_small", "contention_variant": "fp32",
    }
    if ads_gpus is not None:
        tenant["gpus"] = ads_gpus
    return parse_experiment({
        "name": "pair",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": feed_rate}},
        "fleet": {"gpus": gpus, "instances_per_gpu": ipg,
                  "contention": {"path": str(SYNTHETIC), "model": "mlp_ranker", "variant": "bf16"}},
        "batching": {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 0.5},
        "service": {"kind": "lognormal", "median_ms": 1.0, "sigma": 0.3},
        "slo": {"latency_ms": 30},
        "run": {"requests": 20_000, "seed": 3},
        "colocated": {"placement": placement, "tenants": {"ads": tenant}},
    })


def test_separate_gpus_give_each_model_its_results_alone():
    """Placed separately, the feed model's records are those of the feed experiment run alone, and
    the ads model's are those of its own experiment with the same draws: nothing is shared."""
    from simlat.config.experiment import tenant_experiment
    from simlat.engine.colocated import _child

    exp = _colocated("separate", gpus=2, ads_gpus=2)
    req = _requests(exp, n=8000)
    seed = np.random.SeedSequence(4)
    both = simulate(exp, req, seed=seed)
    alone = simulate(exp.model_copy(update={"colocated": None}), req, seed=seed, path="event")
    _records_equal(both, alone)
    ads = tenant_experiment(exp, "ads")
    ads_req = generate(ads.workload, n=None, duration_s=float(req.arrival_ms[-1]) / 1000, seed=_child(seed, 1000))
    _records_equal(both.tenants["ads"], simulate(ads, ads_req, seed=_child(seed, 2000), path="event"))


def test_shared_gpus_slow_both_models_down():
    seed = np.random.SeedSequence(4)
    sep, shared = _colocated("separate", gpus=2, ads_gpus=2), _colocated("shared", gpus=2)
    req = _requests(sep, n=8000)
    a, b = simulate(sep, req, seed=seed), simulate(shared, req, seed=seed)
    for x, y in ((a, b), (a.tenants["ads"], b.tenants["ads"])):
        assert np.nanmean(y.records.service_ms) > 1.05 * np.nanmean(x.records.service_ms)
    assert np.any(np.abs(b.records.service_ms - a.records.service_ms) > 1e-9)


def test_each_model_gets_its_own_summary_and_verdict():
    from simlat.api import run

    exp = _colocated("shared", gpus=2, ipg=2, ads_ipg=2)
    s = run(exp, requests=6000).summary
    assert set(s.tenants) == {"ads"}
    ads = s.tenants["ads"]
    assert ads.slo_latency_ms == 10 and s.slo_latency_ms == 30
    assert ads.p99_ci_ms is not None and ads.p99_ci_ms[0] <= ads.p99_ms <= ads.p99_ci_ms[1]
    assert ads.throughput_rps == pytest.approx(3000, rel=0.1)


def test_colocated_cost_counts_every_gpu_once():
    from simlat.config.sweep import Sweep
    from simlat.sweep.cost import cost_per_hour

    sweep = Sweep(cost_per_replica_hour=1.0)
    assert cost_per_hour(_colocated("shared", gpus=3, ipg=2, ads_ipg=2), sweep) == 3.0
    assert cost_per_hour(_colocated("separate", gpus=3, ads_gpus=2), sweep) == 5.0


def test_separate_placement_needs_the_tenants_gpus():
    with pytest.raises(SimlatError, match=r"tenants.ads.gpus: required with placement: separate"):
        _colocated("separate")


def test_the_shipped_feed_and_ads_experiment_runs_on_synthetic_contention():
    """experiments/feed_ads_shared.yaml end to end (a reduced grid) with the synthetic contention
    profile in place of the measured one, which tests/test_experiments.py uses once it exists."""
    from simlat.config import load_experiment
    from simlat.sweep.runner import run_sweep

    path = ROOT / "experiments" / "feed_ads_shared.yaml"
    exp = load_experiment(path)
    assert exp.fleet.contention.path.endswith("calibration/h100-contention.json")
    fleet = exp.fleet.model_copy(update={"contention": exp.fleet.contention.model_copy(update={"path": str(SYNTHETIC)})})
    sweep = exp.sweep.model_copy(update={"grid": {"fleet.gpus": [1], "fleet.instances_per_gpu": [1, 2]},
                                         "min_requests": 4000, "max_requests": 4000})
    exp = exp.model_copy(update={"fleet": fleet, "sweep": sweep})
    res = run_sweep(exp, base_dir=path.parent, cache_dir=None, workers=1, details=False)
    pts = res.points
    assert len(pts) == 4
    assert list(pts["gpus"]) == [1, 1, 2, 2]  # shared: one GPU; separate: one more for the ads model
    assert list(pts["cost_per_hour"]) == [3.5, 3.5, 7.0, 7.0]
    assert {"ads_p99_ms", "ads_p99_lo_ms", "ads_p99_hi_ms", "ads_meets_slo"} <= set(pts.columns)
    chosen = pts[pts["reason"] == "chosen"]
    assert chosen.empty or bool(chosen["ads_meets_slo"].iloc[0])  # a chosen point meets both SLOs
    assert not (pts["meets_slo"] & ~pts["ads_meets_slo"]).any()  # meeting means both models meet
    from simlat.sweep.table import sweep_table

    table = sweep_table(res)
    assert {"gpus", "ads_p50_ms", "ads_p99_ms", "ads_meets_slo"} <= set(table.columns)
    # separate GPUs: the ads model's numbers do not depend on the feed model's instances
    sep = pts[pts["colocated.placement"] == "separate"]
    assert sep["ads_p99_ms"].nunique() == 1


def test_a_point_that_fails_only_for_a_colocated_model_says_so():
    import pandas as pd

    from simlat.sweep.explain import reason

    row = pd.Series({"config_id": "x", "note": "", "stable": True, "meets_slo": False, "slo_hi_ms": 5.0,
                     "drop_rate": 0.0, "slo_met_probability": 1.0, "ads_meets_slo": False, "ads_p99_hi_ms": 41.25})
    text = reason(row, chosen=None, percentile=99, slo_ms=30, confidence=0.95, min_headroom=0)
    assert text == "ads misses its own SLO (p99 upper bound 41.2 ms)"


def _run_traced(exp, n, seed):
    import simpy

    spec = EngineSpec.from_experiment(exp)
    devices, device_of, key = device_set(spec, trace=True)
    eng = SharedGpuEngine(spec, _requests(exp, n=n, seed=seed), build_service(exp.service),
                          Streams.spawn(np.random.SeedSequence(seed)), env=simpy.Environment(), horizon=_Horizon(),
                          devices=devices, device_of=device_of, key=key)
    eng.run()
    return np.array(devices.segments).reshape(-1, 4), np.array(devices.batches).reshape(-1, 4)


@settings(max_examples=12, deadline=None)
@given(
    ipg=st.integers(2, 4),
    excess=st.lists(st.floats(0.0, 1.5), min_size=3, max_size=3),
    load=st.floats(0.3, 1.2),
    sigma=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_property_work_is_conserved_and_no_batch_runs_faster_than_alone(ipg, excess, load, sigma, seed):
    """For any slowdowns (s(k) non-decreasing in k), load and service spread: on every GPU, the work
    drawn (alone times of its batches) equals the progress made (the integral of the running
    batches' rates 1/s), and every batch takes at least its alone time."""
    import tempfile

    slow = {k: 1.0 + sum(excess[: k - 1]) for k in range(2, ipg + 1)}
    with tempfile.TemporaryDirectory() as d:
        prof = _profile(Path(d), slow)
        exp = _experiment(prof, gpus=2, ipg=ipg, rate=2000.0 * load * ipg,
                          service={"kind": "lognormal", "median_ms": 1.0, "sigma": sigma})
        seg, bat = _run_traced(exp, 1500, seed)
    for dev in range(2):
        s = seg[seg[:, 0] == dev]
        alone = float(bat[bat[:, 0] == dev, 1].sum())
        assert float(np.sum((s[:, 2] - s[:, 1]) * s[:, 3])) == pytest.approx(alone, rel=1e-9)
    assert np.all(bat[:, 3] - bat[:, 2] >= bat[:, 1] * (1 - 1e-9))


def test_configuration_ids_of_experiments_without_shared_gpus_are_unchanged():
    """Ids (and so cached results) of existing experiments stay those from before these fields
    existed: the defaults are left out of the hash; a non-default value changes it."""
    from simlat.api import override
    from simlat.config import load_experiment
    from simlat.sweep.hashing import _IGNORED, _portable, config_hash, digest

    exp = load_experiment(ROOT / "experiments" / "demo.yaml")
    before = exp.model_dump(mode="json", exclude=_IGNORED)  # as the id was computed before these fields existed
    del before["colocated"]
    for name in ("autoscaling", "gpus", "instances_per_gpu", "contention"):
        del before["fleet"][name]
    assert config_hash(exp) == digest(_portable(before))
    assert config_hash(override(exp, {"fleet.gpus": exp.fleet.replicas})) != config_hash(exp)


def test_time_slicing_with_many_instances_is_mg1_ps_insensitive_to_the_service_spread(tmp_path):
    """With s(k) = k and enough instances that all jobs are nearly always in service (8, at load 0.5
    P(more than 8 in system) ~ 0.5^9), the GPU is an M/G/1 processor-sharing queue: mean latency
    E[S] / (1 - rho) whatever the service distribution (lognormal, CV^2 = 1.72 here, where FCFS
    would give 1.18x more). Batch-means interval; one GPU of 8 instances is also exactly as fast as
    one instance alone (the capacity estimate)."""
    prof = _profile(tmp_path, {k: float(k) for k in range(2, 9)}, batch=1)
    sigma, median = 1.0, 1.0
    mean_s = median * np.exp(sigma**2 / 2)
    rate = 0.5 / mean_s * 1000.0
    svc = {"kind": "lognormal", "median_ms": median, "sigma": sigma}
    exp = _experiment(prof, gpus=1, ipg=8, rate=rate, service=svc, batch=1)
    res = simulate(exp, _requests(exp, n=150_000, seed=5), seed=np.random.SeedSequence(6))
    lat = res.records.latency_ms[15_000:]
    means = lat[: len(lat) // 20 * 20].reshape(20, -1).mean(axis=1)
    half = 2.09 * means.std(ddof=1) / np.sqrt(20)
    expected = mean_s / (1 - 0.5)
    assert abs(means.mean() - expected) < half + 0.01 * expected, (means.mean(), expected, half)
    one = _experiment(None, gpus=1, ipg=1, rate=rate, service=svc, batch=1)
    alone = simulate(one, _requests(one, n=200, seed=5), seed=np.random.SeedSequence(6))
    assert res.capacity_rps == pytest.approx(alone.capacity_rps)


def test_an_unmeasured_instance_count_below_the_largest_is_interpolated_from_k_1(tmp_path):
    """Measured at k = 3 and 4 only: k = 2 lies between k = 1 (s = 1) and k = 3, not on the line
    through 3 and 4 (which would give 2.0 - 1.5 = 0.5, clamped to 1: no contention at all)."""
    m = SlowdownModel(read(str(_profile(tmp_path, {3: 2.0, 4: 3.5}))), "processes")
    toy = ("toy", "v")
    assert m.slowdown((toy, 8), ((toy, 8),)) == pytest.approx(1.5)
    assert any("interpolated" in w for w in m.warnings)
    assert m.slowdown((toy, 8), ((toy, 8),) * 4) == pytest.approx(5.0)  # k = 5: beyond, through 3 and 4


def test_a_model_beside_itself_in_a_mix_needs_no_measured_pair_when_other_counts_exist(tmp_path):
    """The additive model's (a, a) pair comes from a's own instance curve when k = 2 was not measured,
    as check() promises, instead of failing in the middle of the run."""
    t = {"p50": 1.0, "p90": 1.0, "p99": 1.0, "mean": 1.0, "n": 10}

    def meas(members, slow):
        return {"mode": "processes", "members": [{"model": a, "variant": "v", "batch_size": 8} for a in members],
                "alone_ms": [t] * len(members), "together_ms": [t] * len(members), "slowdown": slow}

    p = tmp_path / "c.json"
    p.write_text(json.dumps({"schema": "simlat.contention", "schema_version": 1, "measurements": [
        meas(["a"] * 3, [2.0] * 3), meas(["a", "b"], [1.4, 1.2]), meas(["b", "b"], [1.3, 1.3])]}))
    m = SlowdownModel(read(str(p)), "processes")
    a, b = ("a", "v"), ("b", "v")
    m.check([[a, a, b]])
    assert m.slowdown((a, 8), tuple(sorted(((a, 8), (b, 8))))) == pytest.approx(1 + 0.5 + 0.4)
