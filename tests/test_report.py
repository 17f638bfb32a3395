"""Report: spec table, data frames, chart builders (asserted through ``chart.to_dict()``) and the writer.

Input is a hand-built SweepResult with realistic numbers (tests/report_data.py) and a real
calibration profile file written with simlat.profiles.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_data import PARAMS, SLO_MS, TARGET_RPS, make_result, make_unstable_result, write_profile

from simlat.report import METRICS, MetricSpec, charts, frames, write_report
from simlat.report.calibration import profile_frame
from simlat.report.sections import build_sections
from simlat.report.summary import summary_html
from simlat.report.writer import chart_spec
from simlat.sweep.result import SweepResult


def make_experiment(name="feed_test", description="Feed ranking: p99 <= 30 ms at 5,000 req/s"):
    """A real experiment for the writer (it reads the name, the description and, for cache replays, the cache)."""
    from simlat.config import Experiment

    return Experiment.model_validate(
        {
            "name": name,
            "description": description,
            "workload": {"arrivals": {"kind": "poisson", "rate_rps": TARGET_RPS}},
            "service": {"kind": "affine", "base_ms": 3.0, "per_item_ms": 0.3},
            "batching": {"kind": "dynamic", "max_batch_size": 32, "max_wait_ms": 2},
            "slo": {"percentile": 99, "latency_ms": SLO_MS, "target_rate_rps": TARGET_RPS},
        }
    )


@pytest.fixture(scope="module")
def result() -> SweepResult:
    return make_result()


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    return write_profile(tmp_path_factory.mktemp("prof") / "cpu_profile.json")


# -- helpers over Vega-Lite dicts -----------------------------------------------------------------


def layers(d: dict, data: str | None = None) -> list[dict]:
    """Every unit spec (one with a mark) inside a layered / concatenated spec, each with the name of
    the dataset it draws (its own or inherited from its parent) under ``_data``."""
    data = d.get("data", {}).get("name", data)
    out = []
    if "mark" in d:
        out.append({**d, "_data": data})
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in d.get(key, []):
            out += layers(sub, data)
    if "spec" in d:
        out += layers(d["spec"], data)
    return out


def mark_type(layer: dict) -> str:
    m = layer["mark"]
    return m["type"] if isinstance(m, dict) else m


def rows(top: dict, layer: dict) -> list[dict]:
    """The inline data rows of a layer (looked up in the top-level datasets)."""
    return top["datasets"][layer["_data"]]


def find(top: dict, mark: str, **enc_fields) -> list[dict]:
    """Layers with ``mark`` whose encodings use the given fields (e.g. ``y="slo_estimate_ms"``)."""
    hits = []
    for lay in layers(top):
        if mark_type(lay) != mark:
            continue
        enc = lay.get("encoding", {})
        if all(enc.get(ch, {}).get("field") == f for ch, f in enc_fields.items()):
            hits.append(lay)
    return hits


def all_fields(d) -> set[str]:
    out = set()
    if isinstance(d, dict):
        for k, v in d.items():
            if k == "field" and isinstance(v, str):
                out.add(v)
            else:
                out |= all_fields(v)
    elif isinstance(d, list):
        for v in d:
            out |= all_fields(v)
    return out


# -- spec table -------------------------------------------------------------------------------------


def test_spec_table_titles_units_and_scales():
    assert METRICS["p99_ms"].axis_title == "p99 latency (ms)"
    assert METRICS["cost_per_hour"].axis_title == "Cost ($/hour)"
    assert METRICS["label"].axis_title == "Configuration"
    log = METRICS["p99_ms"].alt_scale().to_dict()
    assert log["type"] == "log" and log["nice"] is False
    assert METRICS["rate_rps"].alt_scale().to_dict() == {"type": "linear"}
    tip = METRICS["headroom"].tooltip().to_dict()
    assert tip == {"field": "headroom", "type": "quantitative", "title": "Headroom", "format": "+.0%"}
    assert all(isinstance(s, MetricSpec) and s.field == k for k, s in METRICS.items())


# -- frames ------------------------------------------------------------------------------------------


def test_safe_names_have_no_dots_and_charts_use_only_safe_fields(result):
    assert frames.safe_name("batching.max_batch_size") == "batching__max_batch_size"
    for sec in build_sections(result):
        if sec.chart is not None:
            fields = all_fields(chart_spec(sec.chart))
            assert not any("." in f for f in fields), (sec.key, fields)


def test_pareto_frame_frontier_is_the_undominated_set(result):
    df = frames.pareto_frame(result)
    assert df["stable"].all() and len(df) == int(result.points["stable"].sum())
    for _, r in df.iterrows():
        dominated = (
            (df["cost_per_hour"] <= r["cost_per_hour"])
            & (df["slo_estimate_ms"] <= r["slo_estimate_ms"])
            & ((df["cost_per_hour"] < r["cost_per_hour"]) | (df["slo_estimate_ms"] < r["slo_estimate_ms"]))
        ).any()
        assert r["frontier"] == (not dominated)
    assert df["is_chosen"].sum() == 1
    assert set(df["verdict"]) == {"meets SLO", "misses SLO"}


def test_cdf_frame_matches_numpy_quantiles_and_is_monotone():
    lat = np.random.default_rng(1).gamma(3.0, 4.0, 100_000)
    df = frames.cdf_frame(lat)
    assert np.all(np.diff(df["latency_ms"]) >= 0) and np.all(np.diff(df["quantile"]) > 0)
    assert df["nines"].max() == pytest.approx(4.0)
    i = int(np.argmin(np.abs(df["quantile"] - 0.99)))
    assert df["latency_ms"].iloc[i] == pytest.approx(np.quantile(lat, df["quantile"].iloc[i]))
    short = frames.cdf_frame(lat[:500])  # the grid stops where the sample runs out
    assert short["nines"].max() == pytest.approx(math.log10(500))


def test_decomposition_frame_uses_chosen_decomposition_and_points(result):
    ids = frames.highlighted_ids(result)
    assert ids[0] == result.chosen and len(ids) == len(set(ids))
    df = frames.decomposition_frame(result, ids)
    chosen = df[df["label"].str.startswith("chosen: ")]
    parts = dict(zip(chosen["component"], chosen["component_ms"], strict=True))
    assert parts["queue"] == pytest.approx(result.chosen_decomposition_ms["queue_wait_ms"])
    assert parts["compute"] == pytest.approx(result.chosen_decomposition_ms["service_ms"])
    other = ids[1]
    row = result.points.set_index("config_id").loc[other]
    got = df[df["rank"] == 1].set_index("component")["component_ms"]
    assert got["batch wait"] == pytest.approx(row["batch_wait_ms"]) and got["overhead"] == pytest.approx(row["overhead_ms"])


def test_batch_hist_frame_shares_sum_to_one():
    df = frames.batch_hist_frame({4: 10, 1: 5, 8: 85, 2: 0})
    assert list(df["batch_size"]) == [1, 4, 8]
    assert df["share"].sum() == pytest.approx(1.0) and df["share"].iloc[-1] == pytest.approx(0.85)


def test_cache_frame_replicas_needed_is_fewest_swept_replicas_meeting_slo(result):
    df, note = frames.cache_frame(result)
    assert "fewest swept replicas" in note
    ref = result.points.set_index("config_id").loc[result.chosen]
    pts = result.points
    for _, r in df.iterrows():
        same = (
            (pts["cache.l1.capacity"] == r["capacity"])
            & (pts["batching.max_batch_size"] == ref["batching.max_batch_size"])
            & (pts["batching.max_wait_ms"] == ref["batching.max_wait_ms"])
        )
        meeting = pts[same & pts["meets_slo"]]["replicas"]
        expect = meeting.min() if len(meeting) else np.nan
        assert (np.isnan(expect) and np.isnan(r["replicas_needed"])) or r["replicas_needed"] == expect
        assert r["fleet__replicas"] == ref["fleet.replicas"]  # the latency panel holds replicas fixed
    assert list(df["capacity"]) == sorted(df["capacity"]) and df["hit_ratio"].is_monotonic_increasing


def test_cache_frame_estimates_replicas_when_not_swept_and_needs_hit_ratio():
    res = make_result(grid={"batching.max_wait_ms": [1.0, 2.0], "cache.l1.capacity": [1_000, 10_000, 100_000]})
    df, note = frames.cache_frame(res)
    assert "estimated" in note
    r = df.iloc[-1]
    assert r["replicas_needed"] == math.ceil(TARGET_RPS / (r["max_rate_rps"] / r["replicas"]))
    no_hits = make_result(grid={"cache.l1.capacity": [1_000, 10_000]})
    no_hits.points = no_hits.points.drop(columns=["hit_ratio"])
    df, note = frames.cache_frame(no_hits)
    assert df is None and "hit-ratio column" in note
    df, note = frames.cache_frame(make_result(grid={"fleet.replicas": [2, 4]}))
    assert df is None and "no cache capacity" in note


def test_heatmap_needs_both_batching_parameters():
    df, note = frames.heatmap_frame(make_result(grid={"batching.max_batch_size": [8, 16], "fleet.replicas": [2, 4]}))
    assert df is None and "max_wait_ms took a single value" in note


def test_slice_matches_numbers_across_int_and_float(result):
    pts = result.points.copy()
    pts["fleet.replicas"] = pts["fleet.replicas"].astype(float)  # 4.0 must equal 4
    res = make_result()
    res.points = pts
    df = frames.slice_frame(res, ["cache.l1.capacity"])
    assert len(df) == 3


# -- chart builders through to_dict() --------------------------------------------------------------


def test_load_curve_chart_has_lines_ci_band_slo_and_target_rules(result):
    ids = frames.highlighted_ids(result)
    df = frames.load_curve_frame(result, ids)
    d = charts.load_curve_chart(df, SLO_MS, TARGET_RPS, 99.0).to_dict()
    (line,) = find(d, "line", x="rate_rps", y="slo_estimate_ms")
    assert line["encoding"]["color"]["field"] == "label"
    assert line["encoding"]["y"]["scale"]["type"] == "log"
    assert line["encoding"]["y"]["title"] == "p99 latency (ms)"
    assert line["encoding"]["x"]["title"] == "Offered load (req/s)"
    assert {t["field"] for t in line["encoding"]["tooltip"]} >= {"label", "rate_rps", "slo_estimate_ms", "slo_lo_ms", "slo_hi_ms"}
    (band,) = find(d, "area", y="slo_lo_ms")
    assert band["encoding"]["y2"]["field"] == "slo_hi_ms"
    (slo,) = find(d, "rule", y="y")
    assert rows(d, slo) == [{"y": SLO_MS, "text": "SLO: p99 ≤ 30 ms"}]
    (target,) = find(d, "rule", x="x")
    assert rows(d, target)[0]["x"] == TARGET_RPS
    data = pd.DataFrame(rows(d, line))
    assert set(data["config_id"]) == set(ids) and data["stable"].all()


def test_pareto_chart_points_frontier_chosen_and_slo(result):
    df = frames.pareto_frame(result)
    d = charts.pareto_chart(df, SLO_MS, 99.0, TARGET_RPS).to_dict()
    (dots,) = find(d, "circle", x="slo_estimate_ms", y="cost_per_hour")
    assert dots["encoding"]["color"]["field"] == "verdict"
    assert dots["encoding"]["color"]["scale"]["domain"] == ["meets SLO", "misses SLO"]
    assert dots["encoding"]["y"]["title"] == "Cost ($/hour)"
    (front,) = find(d, "line", x="slo_estimate_ms", y="cost_per_hour")
    assert all(r["frontier"] for r in rows(d, front))
    (ring,) = find(d, "point", x="slo_estimate_ms")
    assert [r["config_id"] for r in rows(d, ring)] == [result.chosen]
    (slo,) = find(d, "rule", x="x")
    assert rows(d, slo)[0]["x"] == SLO_MS
    (ci,) = find(d, "rule", x="slo_lo_ms")
    assert ci["encoding"]["x2"]["field"] == "slo_hi_ms"


def test_cdf_chart_percentile_axis_and_slo(result):
    df = frames.cdf_frame(result.chosen_latencies_ms)
    d = charts.cdf_chart(df, SLO_MS, 99.0).to_dict()
    (line,) = find(d, "line", x="latency_ms", y="nines")
    assert "labelExpr" in line["encoding"]["y"]["axis"]
    (slo,) = find(d, "rule", x="x")
    assert rows(d, slo)[0]["x"] == SLO_MS
    (p99,) = find(d, "rule", y="y")
    assert rows(d, p99)[0]["y"] == pytest.approx(2.0)


def test_decomposition_chart_stacks_components_in_order(result):
    df = frames.decomposition_frame(result, frames.highlighted_ids(result))
    d = charts.decomposition_chart(df).to_dict()
    (bar,) = find(d, "bar", x="component_ms", y="label", color="component")
    assert bar["encoding"]["x"]["stack"] == "zero"
    assert bar["encoding"]["color"]["scale"]["domain"] == ["queue", "batch wait", "compute", "cache", "overhead"]
    assert bar["encoding"]["x"]["title"] == "Mean time (ms)"


def test_batch_hist_chart(result):
    df = frames.batch_hist_frame(result.chosen_batch_hist)
    d = charts.batch_hist_chart(df).to_dict()
    (bar,) = find(d, "bar", x="batch_size", y="share")
    assert bar["encoding"]["x"]["type"] == "ordinal"
    assert sum(r["batches"] for r in rows(d, bar)) == sum(result.chosen_batch_hist.values())


def test_heatmap_chart_cells_colour_around_slo(result):
    df, note = frames.heatmap_frame(result)
    assert "replicas=" in note and len(df) == 16
    d = charts.heatmap_chart(df, SLO_MS, 99.0, note).to_dict()
    (rect,) = find(d, "rect", x="max_wait_ms", y="max_batch_size", color="slo_estimate_ms")
    assert rect["encoding"]["color"]["scale"]["domainMid"] == SLO_MS
    (text,) = find(d, "text", text="cell_text")
    assert len(rows(d, text)) == 16


def test_cache_chart_three_panels_with_slo_line(result):
    df, note = frames.cache_frame(result)
    d = charts.cache_chart(df, SLO_MS, 99.0, note).to_dict()
    assert len(d["hconcat"]) == 3
    assert find(d, "line", x="capacity", y="hit_ratio")
    assert find(d, "line", x="capacity", y="slo_estimate_ms")
    assert find(d, "line", x="capacity", y="replicas_needed")
    (slo,) = find(d, "rule", y="y")
    assert rows(d, slo)[0]["y"] == SLO_MS


def test_calibration_chart_from_a_real_profile_file(profile, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema_version": 99}')
    df, notes = profile_frame([profile, bad, tmp_path / "absent.json"])
    assert set(df["variant"]) == {f"{m}/{v}" for m in ("mlp_ranker", "dlrm_small") for v in ("fp32_eager", "bf16_compiled")}
    one = df[df["variant"] == "mlp_ranker/fp32_eager"]
    assert list(one["items"]) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert (one["median_ms"] < one["p99_batch_ms"]).all() and one["median_ms"].is_monotonic_increasing
    assert one["median_ms"].iloc[0] == pytest.approx(0.35 + 0.031, rel=1e-3)  # the profile's median at batch 1
    assert any("int8_onnx was skipped" in n for n in notes)
    assert any("broken.json left out" in n and "newer" in n for n in notes)
    assert any("absent.json left out" in n for n in notes)
    d = charts.calibration_chart(df).to_dict()
    assert d["facet"]["field"] == "model" and d["resolve"]["scale"]["y"] == "independent"  # one panel per model
    (line,) = find(d, "line", x="items", y="median_ms", color="variant_name")
    assert line["encoding"]["x"]["scale"] == {"type": "log", "nice": False, "padding": 12, "base": 2}
    (band,) = find(d, "area", y="p01_ms")
    assert band["encoding"]["y2"]["field"] == "p99_batch_ms"
    single = charts.calibration_chart(df[df["model"] == "mlp_ranker"]).to_dict()
    assert "facet" not in single and find(single, "line", x="items", y="median_ms")


def test_builders_are_pure(result):
    df = frames.pareto_frame(result)
    before = df.copy()
    a = charts.pareto_chart(df, SLO_MS, 99.0, TARGET_RPS).to_dict()
    b = charts.pareto_chart(df, SLO_MS, 99.0, TARGET_RPS).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    pd.testing.assert_frame_equal(df, before)


# -- summary and writer ----------------------------------------------------------------------------


def test_summary_states_the_decision(result):
    html = summary_html(result)
    row = result.points.set_index("config_id").loc[result.chosen]
    assert "Recommendation for p99 ≤ 30 ms at 5,000 req/s" in html
    assert f"{row['slo_estimate_ms']:.2f} ms [{row['slo_lo_ms']:.2f}, {row['slo_hi_ms']:.2f}]" in html
    assert f"{row['headroom']:+.0%}" in html and "Probability the SLO is met" in html


def test_summary_says_plainly_when_nothing_meets_the_slo():
    res = make_result(slo_ms=3.0)
    assert res.chosen is None and not res.points["meets_slo"].any()
    html = summary_html(res)
    assert "No configuration meets the SLO (p99 ≤ 3 ms at 5,000 req/s)" in html
    assert "Closest configuration (does not meet the SLO)" in html


@pytest.fixture(scope="module")
def report(result, profile, tmp_path_factory) -> Path:
    res = make_result(profiles=[profile])
    out = tmp_path_factory.mktemp("reports")
    return write_report(res, make_experiment(), out)


def test_write_report_is_self_contained_with_images(report, result):
    assert report.name == "feed_test.html"
    html = report.read_text()
    srcs = re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.IGNORECASE)
    assert srcs == []  # no external (or any) script file: the JavaScript is inlined
    assert not re.search(r"<link[^>]+href=\"https?:", html)
    assert "vegaEmbed" in html and len(html) > 500_000  # Vega, Vega-Lite and vega-embed inlined
    assert result.recommendation.split(":")[0] in html
    assert "Rate search after MLPerf LoadGen" in html  # attribution in the footer
    keys = ["calibration", "load_curves", "pareto", "cdf", "decomposition", "batch_sizes", "heatmap", "cache"]
    for key in keys:
        assert f'id="chart-{key}"' in html
        assert f'href="feed_test/{key}.png"' in html  # the page links each exported image
        png = report.parent / "feed_test" / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_write_report_without_a_chosen_point_and_with_a_broken_profile(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = make_result(slo_ms=3.0, profiles=[bad], grid={"fleet.replicas": [2, 4], "batching.max_wait_ms": [1.0, 2.0]})
    path = write_report(res, make_experiment(name="nothing_fits"), tmp_path, image_format="svg")
    html = path.read_text()
    assert "No configuration meets the SLO" in html
    assert "Profile bad.json left out" in html and "invalid JSON" in html
    assert "Not drawn: no configuration was chosen." in html
    assert "Not drawn: no cache capacity was swept." not in html and "sec-cache" not in html  # no empty box
    assert "Not drawn: max_batch_size took a single value" in html
    svg = (tmp_path / "nothing_fits" / "pareto.svg").read_text()
    assert svg.lstrip().startswith("<svg")
    assert not (tmp_path / "nothing_fits" / "cdf.svg").exists()


def test_parameter_names_appear_in_summary(result):
    html = summary_html(result)
    for p in PARAMS:
        assert p in html  # the facts line lists every swept parameter


def test_the_report_only_renders_it_never_simulates(monkeypatch, tmp_path):
    """Every number in the report comes from the SweepResult: without a hit-ratio column the cache
    chart is left out with the reason, and nothing calls the simulator."""
    import simlat.api
    from simlat.report.sections import cache_section

    def no_run(*a, **k):
        raise AssertionError("the report simulated")

    monkeypatch.setattr(simlat.api, "run", no_run)
    res = make_result(grid={"fleet.replicas": [2, 4], "cache.l1.capacity": [1_000, 10_000, 100_000]})
    res.points = res.points.drop(columns=["hit_ratio"])
    sec = cache_section(res)
    assert sec.chart is None and "no hit-ratio column" in " ".join(sec.notes)
    build_sections(res)


def test_every_configuration_unstable_leaves_charts_out_with_reasons():
    res = make_unstable_result()
    secs = {s.key: s for s in build_sections(res)}
    for key in ("load_curves", "pareto", "decomposition", "heatmap"):
        assert secs[key].chart is None and secs[key].notes, key
    assert "overloaded" in secs["heatmap"].notes[0]
    cache = chart_spec(secs["cache"].chart)
    assert len(cache["hconcat"]) == 1  # only the hit ratio: latency and replicas have no finite value
    assert "every capacity is overloaded" in " ".join(cache["title"]["subtitle"])
    html = summary_html(res)
    assert "No configuration meets the SLO" in html and "unstable: overloaded at this rate" in html


def test_empty_sweep_still_writes_a_report(tmp_path):
    res = make_result()
    res.points, res.load_curves = res.points.iloc[0:0], res.load_curves.iloc[0:0]
    res.chosen, res.chosen_latencies_ms, res.chosen_batch_hist, res.chosen_decomposition_ms = None, None, {}, {}
    html = write_report(res, make_experiment(name="empty"), tmp_path).read_text()
    assert "No configuration meets the SLO" in html and 'class="chart"' not in html


def test_missing_flags_count_as_false():
    s = pd.Series([True, None, np.nan, False, pd.NA, 1], dtype=object)
    assert frames.flags(s).tolist() == [True, False, False, False, False, True]
