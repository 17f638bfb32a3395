"""What a planner reads from an autoscaled day: the KPA-like policy's stable and panic modes, the HPA's
queue-length metric, and the day's numbers (1-minute compliance, requests share, replica-hours,
recovery) computed from the per-window table alone, as any engine writes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlat.autoscale.metrics import WINDOW_COLUMNS, breaches, day_metrics, minute_verdicts
from simlat.autoscale.policy import ConcurrencyTracking, Observation, TargetTracking
from simlat.config import parse_experiment


def _exp(autoscaling: dict, replicas: int = 2):
    return parse_experiment({
        "name": "kpa", "workload": {"arrivals": {"kind": "poisson", "rate_rps": 100}},
        "fleet": {"replicas": replicas, "autoscaling": autoscaling},
        "service": {"kind": "exponential", "mean_ms": 5}, "slo": {"latency_ms": 100},
    })


def _drive(policy, concurrency, tick_s: float = 2.0):
    """Run the policy every ``tick_s`` on ``concurrency(t)``, replicas ready at once; (t, spec, panic) rows."""
    spec = policy.initial()
    out = []
    for k in range(1, len(concurrency) + 1):
        t = k * tick_s
        spec = policy.decide(t, spec, spec, Observation(concurrency=concurrency[k - 1]))
        out.append((t, spec, policy.in_panic))
    return out


def test_kpa_stable_mode_tracks_the_average_concurrency():
    exp = _exp({"kind": "target_concurrency", "target": 10, "max_replicas": 50})
    p = ConcurrencyTracking(exp.fleet.autoscaling, exp)
    rows = _drive(p, [20.0] * 40 + [55.0] * 60)
    assert all(spec == 2 and not panic for _, spec, panic in rows[:40])
    # 55 in flight: the 6-s panic estimate asks for 6 = 3x the 2 ready at once -> panic, up to 6
    assert rows[40][1] == 4 and rows[40][2]  # first tick: (55*2 + 20*4)/6 = 31.7 -> 4 (2x ready: panic)
    assert rows[42][1] == 6 and rows[42][2]
    assert rows[-1][1] == 6  # and stays: 55 / 10 -> 6


def test_kpa_panic_never_scales_down_and_ends_a_stable_window_after_the_last_trigger():
    exp = _exp({"kind": "target_concurrency", "target": 10, "max_replicas": 50, "stable_window_s": 60})
    p = ConcurrencyTracking(exp.fleet.autoscaling, exp)
    assert exp.fleet.autoscaling.panic_s == 6.0  # 10% of the stable window
    rows = _drive(p, [20.0] * 10 + [200.0] * 5 + [10.0] * 60)
    spec = np.array([r[1] for r in rows])
    panic = np.array([r[2] for r in rows])
    assert np.flatnonzero(panic)[0] == 10 and spec[10] == 8  # (200*2 + 20*4) / 6 = 80 in flight: 8 >= 2 x 2 ready
    # the trigger compares with the replicas ready: at 24 s the estimate (140 -> 14) is < 2 x 8, so the
    # trigger last fired at 22 s, and panic ends a stable window (60 s) later
    last_trigger_t = rows[10][0]
    assert spec[14] == 20 and panic[14]  # the burst: 200 in flight -> 20 replicas
    in_panic = [r for r in rows if r[2]]
    assert all(b[1] >= a[1] for a, b in zip(in_panic, in_panic[1:], strict=False))  # up only while in panic
    assert max(r[0] for r in in_panic) == pytest.approx(last_trigger_t + 60 - 2.0)
    after = [r for r in rows if r[0] >= last_trigger_t + 60]
    assert not after[0][2] and after[0][1] == 10  # out of panic: down at most to ready / max_scale_down_rate (2)
    assert after[-1][1] == 1  # then down to the stable estimate: 10 in flight / 10 -> 1


def test_kpa_respects_the_bounds_and_the_scale_up_rate():
    exp = _exp({"kind": "target_concurrency", "target": 1, "min_replicas": 3, "max_replicas": 8, "max_scale_up_rate": 1.5})
    p = ConcurrencyTracking(exp.fleet.autoscaling, exp)
    assert p.initial() == 3  # fleet.replicas 2 raised to min_replicas
    rows = _drive(p, [100.0] * 10)
    assert [r[1] for r in rows[:3]] == [5, 8, 8]  # ceil(1.5 x 3) = 5, ceil(1.5 x 5) = 8 = max
    rows = _drive(ConcurrencyTracking(exp.fleet.autoscaling, exp), [0.0] * 10)
    assert {r[1] for r in rows} == {3}


def test_kpa_panics_on_the_estimate_before_the_rate_clamp():
    # Knative: isOverPanicThreshold = dppc / ready, dppc before the max_scale_up_rate clamp; clamped, a rate
    # of 1.5 < the threshold of 2 would make panic impossible
    exp = _exp({"kind": "target_concurrency", "target": 1, "min_replicas": 3, "max_replicas": 8, "max_scale_up_rate": 1.5})
    rows = _drive(ConcurrencyTracking(exp.fleet.autoscaling, exp), [100.0] * 3)
    assert [r[1] for r in rows] == [5, 8, 8] and all(r[2] for r in rows)


def test_kpa_in_panic_takes_the_stable_estimate_when_it_is_larger():
    # Knative, in panic: desired = max(stable, panic), never below the highest of this panic
    exp = _exp({"kind": "target_concurrency", "target": 1, "max_replicas": 1000, "max_scale_up_rate": 1.5})
    p = ConcurrencyTracking(exp.fleet.autoscaling, exp)
    assert p.decide(2.0, 2, 2, Observation(concurrency=1000.0)) == 3 and p.in_panic
    # 8 s later the panic window (6 s) saw nothing, the stable one (60 s) mostly the burst: (52 x 1000) / 60
    # -> 867, clamped to 1.5 x 40 ready = 60; the panic estimate 0 -> 40 / 2 = 20
    assert p.decide(10.0, 40, 40, Observation(concurrency=0.0)) == 60 and p.in_panic


def test_hpa_on_queue_length_per_replica():
    exp = _exp({"kind": "target_utilization", "metric": "queue_length", "target": 5, "max_replicas": 20, "tolerance": 0})
    p = TargetTracking(exp.fleet.autoscaling, exp)
    assert p.recommend(3, 3, Observation(utilization=1.0, queue_length=30.0)) == 6  # 10 per replica / 5
    assert p.recommend(3, 3, Observation(utilization=1.0, queue_length=7.5)) == 2


def test_one_minute_compliance_with_long_short_and_straddling_windows():
    assert list(minute_verdicts(np.array([0.0, 120, 240]), np.array([True, False, True]), 360)) == [True, True, False, False, True, True]
    assert list(minute_verdicts(np.arange(4) * 30.0, np.array([True, False, True, True]), 120)) == [False, True]
    assert list(minute_verdicts(np.array([0.0, 90]), np.array([True, False]), 180)) == [True, False, False]


def test_breaches_and_recovery():
    meets = np.array([True, False, False, True, False, True, True, True, False])
    t = np.arange(9) * 60.0
    eps = breaches(t, meets, 540.0, hold=3)
    assert [(e.start_s, e.duration_s, e.recovered) for e in eps] == [(60.0, 240.0, True), (480.0, 60.0, False)]
    assert breaches(t, np.ones(9, bool), 540.0, hold=3) == []


def test_day_metrics_from_the_common_columns_only():
    df = pd.DataFrame({
        "t_s": [0.0, 60, 120, 180], "offered_rps": [10.0, 20, 30, 10], "requests": [600.0, 1200, 1800, 600],
        "drops": [0.0, 0, 90, 0], "ready": [1, 2, 2, 3], "starting": [1, 0, 1, 0], "draining": [0, 0, 0, 1],
        "billed": [2, 2, 3, 4], "utilization": [0.5] * 4, "p50_ms": [1.0] * 4, "p99_ms": [5.0, 5, 50, 5],
        "p99_lo_ms": [4.0] * 4, "p99_hi_ms": [6.0] * 4, "meets_slo": [True, True, False, True],
    })
    assert set(df) == set(WINDOW_COLUMNS)
    m = day_metrics(df, day_s=240.0, price=2.0, recovery_windows=3)
    assert m.minutes_share == 0.75 and m.requests_share == pytest.approx(2400 / 4200)
    assert m.replica_hours == pytest.approx(11 * 60 / 3600) and m.cost_usd == pytest.approx(2 * 11 * 60 / 3600)
    assert (m.recovery_s, m.recovery_from_s, m.recovered, m.breaches) == (60.0, 120.0, True, 1)
    assert m.drops == 90 and m.ready_mean == pytest.approx(2.0)
    with pytest.raises(ValueError, match="p99_lo_ms"):
        day_metrics(df.drop(columns="p99_lo_ms"), day_s=240.0, price=None)


def _day_exp(autoscaling: dict, replicas: int = 1):
    """A 10-minute day: 100 req/s, a 2-minute step to 800 req/s at 4 min, 5 ms exponential service."""
    pts = [[0, 100], [240, 100], [240, 800], [360, 800], [360, 100], [600, 100]]
    return parse_experiment({
        "name": "tiny_day", "workload": {"arrivals": {"kind": "rate_curve", "points": pts}},
        "fleet": {"replicas": replicas, "autoscaling": {"day_s": 600, "window_s": 60, "requests_per_window": 400,
                                                         "cost_per_replica_hour": 3.0,
                                                         "cold_start_s": {"kind": "constant", "value": 20}, **autoscaling}},
        "service": {"kind": "exponential", "mean_ms": 5}, "slo": {"latency_ms": 60}, "run": {"seed": 11},
    })


KPA_SWEEP = {"kind": "target_concurrency", "target": 1, "max_replicas": 8,
             "sweep": {"grid": {"target": [0.5, 4.0], "min_replicas": [1, 6]}, "compliance_target": 0.8}}


def test_the_kpa_day_scales_up_into_the_step_and_back():
    from simlat.autoscale import simulate_day

    w = simulate_day(_day_exp({k: v for k, v in KPA_SWEEP.items() if k != "sweep"})).windows
    ready = w["ready"].to_numpy()
    assert ready[:4].max() <= 2  # 100 req/s x ~5 ms = 0.5 in flight: 1 replica at target 1
    # the step's first window is overloaded; the scrape at its end asks for more, which start (20 s cold
    # start) in the next window and serve from the one after
    assert not w["stable"][4] and w["starting"][5] > 0 and ready[6] > ready[4]
    assert ready[-1] < ready[6]  # and back down once the step is over
    assert {"t_s", "requests", "drops", "p99_lo_ms", "p99_hi_ms", "concurrency"} <= set(w)


def test_the_sweep_chooses_the_cheapest_policy_meeting_the_target_and_says_why():
    from simlat.autoscale.sweep import run_day_sweep

    res = run_day_sweep(_day_exp(KPA_SWEEP), workers=1)
    t = res.table
    assert len(t) == 4 and list(t["policy"]) == ["target=0.5, min_replicas=1", "target=0.5, min_replicas=6",
                                                 "target=4, min_replicas=1", "target=4, min_replicas=6"]
    assert res.chosen is not None and t["chosen"].sum() == 1
    c = t.loc[res.chosen]
    assert c["compliance"] >= 0.8 and c["compliance"] == c["slo_minutes_share"]
    cheaper = t[t["cost_usd"] < c["cost_usd"]]
    assert (~cheaper["meets_target"]).all()
    assert all(r.startswith("misses the compliance target") for r in cheaper["reason"])
    assert res.explanation[0].startswith(f"chosen: {c['policy']}")
    assert t.loc[2, "cost_usd"] < t.loc[0, "cost_usd"]  # a higher concurrency target keeps fewer replicas
    # same seeds for every policy: where two policies hold the same replicas, their windows are the same
    a, b = res.days[1].windows, res.days[3].windows
    same = (a["ready"] == b["ready"]).to_numpy()
    assert same[:5].all() and not same.all()
    assert list(a["p99_ms"][same]) == list(b["p99_ms"][same])


def test_choice_when_nothing_meets_the_target_and_on_ties():
    from simlat.autoscale.sweep import choose

    t = pd.DataFrame({"policy": ["a", "b", "c"], "compliance": [0.5, 0.9, 0.95], "meets_target": [False, False, False],
                      "cost_usd": [1.0, 2.0, 3.0], "replica_hours": [1.0, 2.0, 3.0], "recovery_s": [None, 60.0, 0.0]})
    chosen, reasons, expl = choose(t, 0.99, "minutes")
    assert chosen is None and "no policy meets" in expl[0] and "c at 95.00%" in expl[0]
    t["meets_target"] = True
    t["cost_usd"] = [2.0, 2.0, 3.0]
    chosen, reasons, _ = choose(t, 0.5, "requests")
    assert chosen == 1 and "as cheap" in reasons[0] and "$1.00 more" in reasons[2]


def _specs(html: str) -> dict:
    import json
    import re

    m = re.search(r"const SPECS = (.*?);\nconst OPTS", html, re.S)
    assert m
    return json.loads(m.group(1))


def _values(spec: dict) -> list[dict]:
    return [row for ds in spec.get("datasets", {}).values() for row in ds]


def test_day_report_has_the_three_charts_data_and_the_policy_table(tmp_path):
    from simlat.autoscale.sweep import run_day_sweep
    from simlat.report.day import write_day_report

    exp = _day_exp(KPA_SWEEP)
    res = run_day_sweep(exp, workers=1)
    day = res.chosen_day
    path = write_day_report(day, exp, tmp_path / "rep", res)
    assert path == tmp_path / "rep" / "tiny_day_day.html"
    html = path.read_text()
    specs = _specs(html)
    assert set(specs) == {"chart-rate", "chart-replicas", "chart-p99"}
    w = day.windows
    rate = _values(specs["chart-rate"])
    assert [r["offered_rps"] for r in rate] == pytest.approx(list(w["offered_rps"]))
    reps = _values(specs["chart-replicas"])
    for series in ("ready", "starting", "billed"):
        assert [r["count"] for r in reps if r.get("replicas") == series] == list(w[series])
    tables = [ds for ds in specs["chart-p99"]["datasets"].values() if ds and "p99_hi_ms" in ds[0]]
    full = next(ds for ds in tables if len(ds) == len(w))
    for col in ("p99_ms", "p99_lo_ms", "p99_hi_ms"):
        assert [r[col] for r in full] == [None if not np.isfinite(v) else pytest.approx(v) for v in w[col]]  # JSON: null
    missed = next(ds for ds in tables if len(ds) < len(w))  # the shaded windows missing the SLO
    assert len(missed) == int((~w["meets_slo"]).sum()) > 0
    slo = [r for r in _values(specs["chart-p99"]) if "text" in r]
    assert slo and slo[0]["y"] == 60.0
    assert 'id="policies"' in html and res.explanation[0].split(":")[0] in html
    for p in res.table["policy"]:
        assert p in html
    assert "http://" not in html.split("<script>")[0] and "cdn" not in html.lower()


def test_cli_day_sweep_writes_the_table_and_the_report(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from simlat.cli import app

    exp = _day_exp(KPA_SWEEP)
    p = tmp_path / "tiny_day.yaml"
    p.write_text(yaml.safe_dump(exp.model_dump(mode="json", exclude_none=True)))
    r = CliRunner().invoke(app, ["day", str(p), "--sweep", "-w", "1", "--table", str(tmp_path / "p.json"),
                                 "--report-dir", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("chosen: ") and "report written to" in r.stdout and "policies simulated: 4/4" in r.output
    rows = pd.read_json(tmp_path / "p.json")
    assert len(rows) == 4 and rows["chosen"].sum() == 1 and {"compliance", "cost_usd", "reason", "target"} <= set(rows)
    assert (tmp_path / "rep" / "tiny_day_day.html").is_file()
    j = CliRunner().invoke(app, ["day", str(p), "--sweep", "-w", "1", "--json"])
    assert j.exit_code == 0, j.output
    import json

    data = json.loads(j.stdout)
    assert len(data["policies"]) == 4 and data["chosen"]["policy"] == "target_concurrency"
    assert data["explanation"][0].startswith("chosen: ")


def test_the_day_its_sweep_and_its_report_need_only_the_common_columns(tmp_path):
    """Another engine's window table (only WINDOW_COLUMNS) gives the same day, policy choice and report."""
    from simlat.autoscale import simulate_day
    from simlat.autoscale.day import day_result
    from simlat.autoscale.sweep import run_day_sweep
    from simlat.report.day import write_day_report

    exp = _day_exp(KPA_SWEEP)
    res = run_day_sweep(exp, workers=1)
    plain = run_day_sweep(exp, workers=1, simulate=_common_columns_day)
    assert "within_slo_share" not in plain.days[0].windows and set(plain.days[0].windows) == set(WINDOW_COLUMNS)
    assert list(plain.table["slo_minutes_share"]) == list(res.table["slo_minutes_share"])
    assert list(plain.table["cost_usd"]) == list(res.table["cost_usd"]) and plain.chosen == res.chosen
    one = simulate_day(_day_exp({k: v for k, v in KPA_SWEEP.items() if k != "sweep"}))
    again = day_result(exp, one.windows[list(WINDOW_COLUMNS)], window_s=60.0, cold_start="x", cold_start_mean_s=None,
                       elapsed_s=0.0, method="event-level")
    for k in ("slo_minutes_share", "replica_hours", "cost_usd", "recovery_s", "breaches", "largest_step_at_s", "step_recovery_s"):
        assert getattr(again.summary, k) == getattr(one.summary, k), k
    html = write_day_report(plain.days[plain.chosen], exp, tmp_path, plain).read_text()
    assert set(_specs(html)) == {"chart-rate", "chart-replicas", "chart-p99"}


def _common_columns_day(experiment, window_s=None):
    from simlat.autoscale import simulate_day
    from simlat.autoscale.day import day_result

    d = simulate_day(experiment, window_s=window_s)
    s = d.summary
    return day_result(experiment, d.windows[list(WINDOW_COLUMNS)], window_s=s.window_s, cold_start=s.cold_start,
                      cold_start_mean_s=s.cold_start_mean_s, elapsed_s=s.elapsed_s)


def test_the_hpa_on_queue_length_scales_up_into_the_step():
    from simlat.autoscale import simulate_day

    w = simulate_day(_day_exp({"kind": "target_utilization", "metric": "queue_length", "target": 0.5, "max_replicas": 8,
                               "scale_down_stabilization_s": 0})).windows
    assert (w["ready"][:4] == 1).all() and w["queue_length"][4] > 10  # the overloaded window's backlog
    assert w["starting"][5] > 0 and w["ready"][6] > 1 and w["meets_slo"][6]
    assert w["ready"].iloc[-1] < w["ready"][6]


def test_the_replicas_chart_keeps_a_fractional_billed_count():
    """The exact day bills replica-time within a window (a replica removed halfway counts 0.5): the
    chart shows that average, not its integer part."""
    from simlat.report.day import replicas_chart
    from simlat.report.writer import chart_spec

    w = pd.DataFrame({"t_s": [0.0, 60.0], "ready": [4, 3], "starting": [0, 0], "billed": [3.5, 3.0]})
    rows = [r for ds in chart_spec(replicas_chart(w)).get("datasets", {}).values() for r in ds]
    assert [r["count"] for r in rows if r.get("replicas") == "billed"] == [3.5, 3.0]
