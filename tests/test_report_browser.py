"""The written report opened in a real headless Chromium: every chart renders, nothing errors, nothing
is fetched from the network.

Needs a ``chromium`` binary (Debian package ``chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from chromium_cdp import Chromium, find_chromium
from report_data import make_result, make_unstable_result, write_profile

from simlat.report import write_report

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = find_chromium()

CHART_STATE = """Array.from(document.querySelectorAll('div.chart')).map((el) => {
  const g = el.querySelector('svg, canvas');
  const r = g ? g.getBoundingClientRect() : null;
  return {id: el.id, rendered: el.dataset.rendered || null, tag: g ? g.tagName.toLowerCase() : null,
          width: r ? r.width : 0, height: r ? r.height : 0,
          marks: g ? g.querySelectorAll('path, rect, line, circle, text').length : 0};
})"""


class Exp:
    def __init__(self, name: str):
        self.name = name
        self.description = "Feed ranking: p99 <= 30 ms at 5,000 req/s"
        self.cache = None


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser")
    prof = write_profile(out / "cpu_profile.json")
    full = write_report(make_result(profiles=[prof]), Exp("feed_full"), out / "reports", image_format="svg")
    none = write_report(
        make_result(slo_ms=3.0, grid={"fleet.replicas": [2, 4], "batching.max_wait_ms": [1.0, 2.0]}),
        Exp("feed_nothing_fits"),
        out / "reports",
        image_format="svg",
    )
    overloaded = write_report(make_unstable_result(), Exp("feed_overloaded"), out / "reports", image_format="svg")
    return {"full": full, "none": none, "overloaded": overloaded}


def _render(browser: Chromium, path: Path, timeout_s: float = 30.0) -> list[dict]:
    browser.open(path.resolve().as_uri())
    deadline = time.monotonic() + timeout_s
    while True:
        state = browser.evaluate(CHART_STATE)
        if state and all(s["rendered"] for s in state):
            return state
        if time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (install the Debian package 'chromium')")
def test_every_chart_renders_without_console_errors_or_network(reports):
    t0 = time.monotonic()
    with Chromium(CHROMIUM, width=1200, height=900) as browser:
        state = _render(browser, reports["full"])
        ids = [s["id"] for s in state]
        assert ids == [f"chart-{k}" for k in ("calibration", "load_curves", "pareto", "cdf", "decomposition", "batch_sizes", "heatmap", "cache")]
        for s in state:
            assert s["rendered"] == "yes", s
            assert s["tag"] in ("svg", "canvas"), s
            assert s["width"] > 200 and s["height"] > 100, s
            assert s["marks"] > 10, s
        decision = browser.evaluate("document.getElementById('decision').innerText")
        assert "Recommendation for p99 ≤ 30 ms at 5,000 req/s" in decision

        # a sweep where nothing meets the SLO: fewer charts, each still rendered, the verdict stated
        state = _render(browser, reports["none"])
        assert [s["id"] for s in state] == ["chart-load_curves", "chart-pareto", "chart-decomposition"]
        assert all(s["rendered"] == "yes" and s["width"] > 200 for s in state), state
        decision = browser.evaluate("document.getElementById('decision').innerText")
        assert "No configuration meets the SLO" in decision

        # every configuration overloaded: only the cache hit-ratio panel has data
        state = _render(browser, reports["overloaded"])
        assert [s["id"] for s in state] == ["chart-cache"] and state[0]["rendered"] == "yes", state
        assert "unstable: overloaded" in browser.evaluate("document.getElementById('decision').innerText")

        errors = browser.console_errors()
        warnings = browser.console_warnings()
        urls = browser.requested_urls()
    assert errors == []
    assert warnings == []  # Vega reports bad data or conflicting encodings as warnings
    assert all(u.startswith("file://") for u in urls), urls  # readable offline: nothing fetched
    assert time.monotonic() - t0 < 60


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (install the Debian package 'chromium')")
def test_the_day_report_renders_its_three_charts_offline(tmp_path):
    from simlat.autoscale.sweep import run_day_sweep
    from simlat.config import parse_experiment
    from simlat.report.day import write_day_report

    pts = [[0, 100], [240, 100], [240, 800], [360, 800], [360, 100], [600, 100]]
    exp = parse_experiment({
        "name": "browser_day", "workload": {"arrivals": {"kind": "rate_curve", "points": pts}},
        "fleet": {"replicas": 1, "autoscaling": {
            "kind": "target_concurrency", "target": 1, "max_replicas": 8, "day_s": 600, "window_s": 60,
            "requests_per_window": 400, "cost_per_replica_hour": 3.0, "cold_start_s": {"kind": "constant", "value": 20},
            "sweep": {"grid": {"target": [0.5, 4.0]}, "compliance_target": 0.8}}},
        "service": {"kind": "exponential", "mean_ms": 5}, "slo": {"latency_ms": 60},
    })
    res = run_day_sweep(exp, workers=1)
    assert res.chosen_day is not None and (~res.chosen_day.windows["meets_slo"]).any()  # the shaded band is drawn
    path = write_day_report(res.chosen_day, exp, tmp_path, res)
    with Chromium(CHROMIUM, width=1200, height=900) as browser:
        state = _render(browser, path)
        assert [s["id"] for s in state] == ["chart-rate", "chart-replicas", "chart-p99"]
        for s in state:
            assert s["rendered"] == "yes" and s["tag"] in ("svg", "canvas"), s
            assert s["width"] > 200 and s["height"] > 100 and s["marks"] > 10, s
        decision = browser.evaluate("document.getElementById('decision').innerText")
        assert "chosen: target=" in decision and "Replica-hours" in decision
        assert browser.evaluate("document.querySelectorAll('#policies tr').length") == 3
        errors, warnings, urls = browser.console_errors(), browser.console_warnings(), browser.requested_urls()
    assert errors == [] and warnings == [], (errors, warnings)
    assert all(u.startswith("file://") for u in urls), urls
