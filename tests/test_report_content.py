"""The report says what its data says: colours centred on the SLO, captions from the numbers, only the
experiment's variants in the calibration chart, no empty boxes, and the inputs and warnings shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
from report_data import make_result, write_profile

from simlat.report import charts, frames
from simlat.report.sections import batch_hist_section, build_sections, calibration_section, cdf_section
from simlat.report.summary import summary_html
from simlat.report.writer import chart_spec


def test_heatmap_colour_domain_contains_the_slo():
    assert charts.heat_domain(pd.Series([2.43, 3.0, np.nan]), 30.0) == [2.43, 60.0]
    assert charts.heat_domain(pd.Series([40.0, 90.0]), 30.0) == [15.0, 90.0]
    res = make_result()
    df, note = frames.heatmap_frame(res)
    d = chart_spec(charts.heatmap_chart(df, 3.0, 99, note))
    scale = next(ly["encoding"]["color"]["scale"] for ly in d["layer"] if "color" in ly.get("encoding", {}))
    lo, hi = scale["domain"]
    assert lo <= scale["domainMid"] <= hi


def test_cdf_leaves_a_far_slo_off_the_axis_and_says_so():
    res = make_result(slo_ms=3000.0)
    d = chart_spec(cdf_section(res).chart)
    text = " ".join(d["title"]["subtitle"])
    assert "lies off the axis" in text
    assert not any(layer.get("mark", {}).get("type") == "rule" and "x" in layer.get("encoding", {})
                   for layer in d["layer"] if isinstance(layer.get("mark"), dict))


def test_batch_caption_is_read_from_the_histogram():
    res = make_result()
    res.chosen_batch_hist = {1: 70, 2: 20, 4: 10}
    res.chosen_max_batch = 4
    res.params = [p for p in res.params if not p.endswith("max_batch_size")]
    cap = batch_hist_section(res).caption
    assert "Mean batch 1.5 requests; 10% of batches were full (max batch 4)" in cap and "does not limit" in cap


def test_calibration_chart_shows_only_the_variants_used(tmp_path):
    prof = write_profile(tmp_path / "cpu.json")
    res = make_result(profiles=[prof])
    res.services = [("cpu.json", "mlp_ranker", "bf16_compiled")]
    sec = calibration_section(res)
    rows = chart_spec(sec.chart)["datasets"]
    names = {r["variant_name"] for rs in rows.values() for r in rs}
    assert names == {"bf16_compiled"}
    assert not any("skipped in calibration" in n for n in sec.notes)


def test_no_cache_box_without_a_cache_and_inputs_and_warnings_shown():
    res = make_result(grid={"fleet.replicas": [2, 4], "batching.max_wait_ms": [1.0, 2.0]})
    assert "cache" not in {s.key for s in build_sections(res)}
    res.inputs = [("Arrivals", '{"kind": "poisson", "rate_rps": 5000}')]
    res.command = "simlat sweep x.yaml"
    res.run_warnings = ["only 12 requests beyond p99.9"]
    res.explanation = ["Chosen as the cheapest configuration"]
    html = summary_html(res)
    for needle in ("Inputs", "poisson", "simlat sweep x.yaml", "only 12 requests beyond p99.9", "Why this choice"):
        assert needle in html


def test_load_curve_and_pareto_captions_follow_the_data():
    from simlat.report.sections import load_curve_section, pareto_section

    res = make_result()
    res.points["limit"] = "slo"
    cap = load_curve_section(res).caption
    assert "reach the red SLO line" in cap and "Max rates bound by the SLO" in cap
    far = make_result(slo_ms=3000.0)
    far.points["limit"] = "capacity"
    assert "None of these lines reaches the red SLO line" in load_curve_section(far).caption
    res.min_headroom = 0.2
    assert "at least 20% headroom" in pareto_section(res).caption
