"""Profile schema, load/save, refusals, device check, and the ``kind: profile`` service model.

Unit tests on synthetic profiles with known distributions; statistical checks use tolerances
from the Kolmogorov-Smirnov critical value for the sample size.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from simlat.calibrate.stats import median_ci, summarize
from simlat.config.service import ProfileService
from simlat.engine.service import build_profile_service
from simlat.errors import SimlatError
from simlat.profiles import (
    SCHEMA_VERSION,
    Curve,
    ProfileDeviceWarning,
    default_quantile_levels,
    load_profile,
    parse_profile,
    save_profile,
)

ROOT = Path(__file__).resolve().parents[1]
LEVELS = default_quantile_levels()


def _uniform_dist(a: float, b: float) -> dict:
    """A Dist whose quantile function is exactly that of Uniform(a, b)."""
    q = [a + (b - a) * u for u in LEVELS]
    return {
        "n": 1000,
        "mean_ms": (a + b) / 2,
        "quantiles_ms": q,
        "median_ci_ms": [(a + b) / 2 - 0.01, (a + b) / 2 + 0.01],
        "median_ci_half_width_ms": 0.01,
    }


def synthetic_profile(device_name: str = "NVIDIA H100 80GB HBM3") -> dict:
    """Model 'toy': variant 'eager' U(1,2) at batch 1 and U(3,6) at batch 3; 'graphs' fixed-shape."""
    pts = [{"batch_size": 1, "dist": _uniform_dist(1, 2)}, {"batch_size": 3, "dist": _uniform_dist(3, 6)}]
    return {
        "schema_version": SCHEMA_VERSION,
        "provenance": {
            "device": "cuda",
            "device_name": device_name,
            "date": "2026-11-24T00:00:00Z",
            "simlat_version": "0.1.0",
            "command": "synthetic",
        },
        "quantile_levels": LEVELS,
        "models": [
            {
                "name": "toy",
                "variants": [
                    {"name": "eager", "status": "ok", "steady": pts, "idle": [{"batch_size": 3, "dist": _uniform_dist(10, 12)}]},
                    {"name": "graphs", "status": "ok", "fixed_shape": True, "steady": pts},
                    {"name": "broken", "status": "skipped", "reason": "needs torchao"},
                ],
                "components": [{"name": "deserialize_json", "points": [{"batch_size": 1, "dist": _uniform_dist(0.5, 0.5)}, {"batch_size": 3, "dist": _uniform_dist(1.5, 1.5)}]}],
            }
        ],
    }


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    p = tmp_path / "toy.json"
    p.write_text(json.dumps(synthetic_profile()))
    return p


def _svc(path: Path, variant: str = "eager", **kw):
    return build_profile_service(ProfileService(path=path, model="toy", variant=variant, **kw))


def test_round_trip(tmp_path: Path, profile_file: Path):
    prof = load_profile(profile_file)
    out = save_profile(prof, tmp_path / "again.json")
    again = load_profile(out)
    assert again == prof
    assert again.model("toy").variants[0].steady[1].dist.quantiles_ms[-1] == 6.0


def test_shipped_profiles_validate():
    files = sorted((ROOT / "calibration").glob("*.json"))
    files = [f for f in files if "models" in json.loads(f.read_text())]  # service profiles (not the cache's)
    for f in files:
        prof = load_profile(f)
        assert prof.models, f
        for m in prof.models:
            for v in m.variants:
                if v.status == "ok":
                    svc = build_profile_service(ProfileService(path=f, model=m.name, variant=v.name))
                    draw = svc.batch_sampler(np.random.default_rng(0))
                    assert draw(1) > 0


def test_future_version_refused(tmp_path: Path):
    d = synthetic_profile()
    d["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "future.json"
    p.write_text(json.dumps(d))
    with pytest.raises(SimlatError, match=r"schema_version 2 is newer than this simlat reads.*upgrade simlat"):
        load_profile(p)


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.pop("schema_version"), "schema_version is missing"),
        (lambda d: d.update(schema_version="1"), "schema_version '1' is invalid"),
        (lambda d: d.update(schema_version=0), "schema_version 0 is unknown"),
        (lambda d: d["models"][0].update(colour="red"), r"models\[0\]\.colour: unknown key"),
        (lambda d: d["models"][0]["variants"][0]["steady"][0]["dist"]["quantiles_ms"].pop(), "104 quantiles, expected 105"),
        (lambda d: d["models"][0]["variants"][0]["steady"][0]["dist"]["quantiles_ms"].reverse(), "non-decreasing"),
        (lambda d: d["models"][0]["variants"][2].pop("reason"), "skipped but gives no reason"),
    ],
)
def test_bad_profiles_refused(tmp_path: Path, mutate, pattern):
    d = synthetic_profile()
    mutate(d)
    with pytest.raises(SimlatError, match=pattern):
        parse_profile(d, source="bad.json")


def test_not_json(tmp_path: Path):
    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(SimlatError, match="invalid JSON at line 1"):
        load_profile(p)


def test_interpolated_quantile_function(profile_file: Path):
    """Between U(1,2) at batch 1 and U(3,6) at batch 3, batch 2 is U(2,4): not the bimodal mixture."""
    svc = _svc(profile_file)
    draw = svc.batch_sampler(np.random.default_rng(1))
    n = 20000
    x = np.array([draw(2) for _ in range(n)])
    # KS distance to U(2, 4); critical value at alpha=0.001 is 1.95/sqrt(n)
    xs = np.sort(x)
    cdf = np.clip((xs - 2.0) / 2.0, 0, 1)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / np.sqrt(n)
    assert svc.mean_ms(2) == pytest.approx(3.0, abs=1e-3)
    assert svc.mean_ms(1) == pytest.approx(1.5, abs=1e-3)
    # exactly at a measured size: that size's distribution
    y = np.array([draw(3) for _ in range(5000)])
    assert 3.0 <= y.min() and y.max() <= 6.0
    assert abs(np.median(y) - 4.5) < 0.1
    assert svc.max_items == 3


def test_quantiles_interpolate_linearly_in_batch_size():
    c = Curve([2, 10], [0.0, 0.5, 1.0], [[1.0, 2.0, 3.0], [5.0, 10.0, 20.0]], fixed_shape=False, label="t")
    assert c.quantile(6, 0.5) == pytest.approx(6.0)
    assert c.quantile(4, 1.0) == pytest.approx(3.0 + 0.25 * 17.0)
    assert c.quantile(1, 0.5) == pytest.approx(2.0)  # below the smallest measured size: padded to it


def test_fixed_shape_pads_to_bucket(profile_file: Path):
    svc = _svc(profile_file, "graphs")
    draw = svc.batch_sampler(np.random.default_rng(2))
    x = np.array([draw(2) for _ in range(3000)])
    assert x.min() >= 3.0 and x.max() <= 6.0  # padded to batch 3
    assert svc.mean_ms(2) == pytest.approx(4.5, abs=1e-3)


def test_batch_above_range_is_an_error(profile_file: Path):
    svc = _svc(profile_file)
    draw = svc.batch_sampler(np.random.default_rng(3))
    with pytest.raises(SimlatError, match="exceeds the largest measured batch size \\(3\\)"):
        draw(4)
    with pytest.raises(SimlatError, match="exceeds"):
        svc.mean_ms(4)


def test_idle_condition_and_components(profile_file: Path):
    svc = _svc(profile_file, condition="idle")
    assert svc.mean_ms(3) == pytest.approx(11.0, abs=1e-3)
    with_json = _svc(profile_file, add_components=("deserialize_json",))
    assert with_json.mean_ms(3) == pytest.approx(4.5 + 1.5, abs=1e-3)
    assert with_json.mean_ms(2) == pytest.approx(3.0 + 1.0, abs=1e-3)
    draw = with_json.batch_sampler(np.random.default_rng(4))
    assert 4.5 <= draw(3) <= 7.5


@pytest.mark.parametrize(
    "kw, pattern",
    [
        ({"variant": "nope"}, "'nope' is not in toy.json for model 'toy'; measured variants: eager, graphs"),
        ({"variant": "broken"}, "was skipped in toy.json: needs torchao"),
        ({"variant": "graphs", "condition": "idle"}, "'idle' was not measured"),
        ({"variant": "eager", "add_components": ("h2d_pinned",)}, "measured components: deserialize_json"),
    ],
)
def test_bad_selection(profile_file: Path, kw, pattern):
    with pytest.raises(SimlatError, match=pattern):
        build_profile_service(ProfileService(path=profile_file, model="toy", **kw))


def test_unknown_model(profile_file: Path):
    with pytest.raises(SimlatError, match="service.model: 'big' is not in toy.json; it has: toy"):
        build_profile_service(ProfileService(path=profile_file, model="big", variant="eager"))


def test_device_mismatch_warns(profile_file: Path):
    cfg = ProfileService(path=profile_file, model="toy", variant="eager")
    with pytest.warns(ProfileDeviceWarning, match="device differs: experiment='a100'"):
        build_profile_service(cfg, device="a100")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_profile_service(cfg, device="H100")
        build_profile_service(cfg, device=None)


def test_sampler_is_seeded(profile_file: Path):
    svc = _svc(profile_file)
    a = svc.batch_sampler(np.random.default_rng(7))
    b = svc.batch_sampler(np.random.default_rng(7))
    assert [a(2) for _ in range(100)] == [b(2) for _ in range(100)]


def test_summarize_and_median_ci():
    rng = np.random.default_rng(0)
    s1, s2 = rng.exponential(1.0, 4000), rng.exponential(1.0, 4000) * 1.5
    d = summarize([s1, s2], LEVELS)
    assert d["n"] == 8000 and len(d["quantiles_ms"]) == len(LEVELS)
    assert d["process_spread"] == pytest.approx(1.5, rel=0.1)
    assert d["unstable"]
    lo, hi = median_ci(s1)
    assert lo < np.log(2) < hi  # true median of Exp(1)
    # coverage of the order-statistic CI over repeated samples is ~95%
    hits = sum(lo < np.log(2) < hi for lo, hi in (median_ci(rng.exponential(1.0, 200)) for _ in range(400)))
    assert 0.90 * 400 <= hits <= 0.99 * 400


def test_experiment_naming_another_device_warns(tmp_path: Path, profile_file: Path):
    import yaml

    from simlat.config import load_experiment

    exp = {
        "name": "t",
        "device": "a100",
        "workload": {"arrivals": {"kind": "poisson", "rate_rps": 100}},
        "service": {"kind": "profile", "path": str(profile_file), "model": "toy", "variant": "eager"},
        "slo": {"percentile": 99, "latency_ms": 50},
    }
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(exp))
    with pytest.warns(ProfileDeviceWarning, match="device differs: experiment='a100', profile='NVIDIA H100 80GB HBM3'"):
        load_experiment(f)
    exp["device"] = "h100"
    f.write_text(yaml.safe_dump(exp))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_experiment(f)



def test_replica_cold_start_folds_into_the_profile_and_drives_the_autoscaler(tmp_path):
    """A measured replica start (simlat validate --cold-start) lands in the variant's cold_start and
    becomes the autoscaler's cold start."""
    import json

    from simlat.autoscale.coldstart import cold_start
    from simlat.calibrate.replica_start import fold_cold_start
    from simlat.config import load_experiment
    from simlat.profiles.schema import load_profile, save_profile

    root = Path(__file__).resolve().parents[1]
    lat = [1.0] * 98 + [9.0, 30.0]
    data = {"schema": "simlat.coldstart", "schema_version": 1, "provenance": {"host": "h", "created": "t"},
            "declared": {"server": "triton", "model": "mlp_ranker", "max_batch": 8, "rate_rps": 100.0},
            "results": [{"variant": "bf16", "repeat": i, "ready_s": s, "first": {"n": 100, "slow": 2 - i, "first_ms": 3.0},
                         "first_latency_ms": lat, "steady_latency_ms": [1.0] * 100} for i, s in enumerate([20.0, 10.0])]
            + [{"variant": "fp32", "repeat": 0, "error": "server exited"}]}
    merged, notes = fold_cold_start(load_profile(root / "calibration" / "h100-cuda.json"), data)
    assert any("fp32 start #1 failed" in n for n in notes)
    (rep,) = [v.cold_start.replica for m in merged.models for v in m.variants if m.name == "mlp_ranker" and v.name == "bf16"]
    assert rep.ready_s == [20.0, 10.0] and rep.slow_requests == 2 and rep.first_p99_ms > rep.steady_p99_ms
    prof = save_profile(merged, tmp_path / "p.json")
    exp_text = (root / "experiments" / "feed_day.yaml").read_text().replace("../calibration/h100-cuda.json", str(prof))
    exp_text = exp_text.replace("../calibration/", str(root / "calibration") + "/")
    (tmp_path / "day.yaml").write_text(exp_text)
    dist, source = cold_start(load_experiment(tmp_path / "day.yaml"))
    assert dist.value == 15.0 and "triton replica start" in source
    data["declared"]["model"] = "nope"
    with pytest.raises(SimlatError, match="not in the profile"):
        fold_cold_start(merged, json.loads(json.dumps(data)))
