"""Measured vs predicted: simulate each measured load level on its own arrivals and compare.

For one campaign (:func:`simlat.validate.measure.campaign`): calibrate the service model and the
frontend from the capacity-search probes (:mod:`simlat.validate.fit`), then for every validation
level build the experiment (the server's batching policy, the fitted service, the frontend), feed
the simulator the exact times the requests left the load generator, and compare p50/p95/p99 of
the requests after the warm-up, with 95% intervals (batch means over arrival-ordered sections,
:class:`simlat.metrics.Sample`). A level that failed its validity checks is reported as invalid,
not compared. Multi-second backlog episodes are counted, not averaged away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simlat.config import Experiment
from simlat.config.serving import SLO, DynamicBatching
from simlat.config.workload import Poisson, Workload
from simlat.metrics import Sample, trend_grows
from simlat.validate.fit import fit_frontend, fit_service, timer_slack_ms
from simlat.workload import Requests

PERCENTILES = (50, 95, 99)
EPISODE_WINDOW_S = 0.25
"""Windows of this length whose median latency exceeds ``EPISODE_FACTOR`` x the level's median
are backlog windows; consecutive ones form an episode."""
EPISODE_FACTOR = 10.0


@dataclass
class LevelComparison:
    """One load level: measured and predicted percentiles (ms) with intervals, and the checks."""

    config: str
    load: float
    rate_rps: float
    requests: int
    valid: bool
    checks: dict
    measured: dict = field(default_factory=dict)  # "p99" -> [value, low, high]
    predicted: dict = field(default_factory=dict)
    episodes: dict = field(default_factory=dict)
    predicted_stable: bool = True

    def error(self, p: int) -> float:
        """Relative error of the prediction: (predicted - measured) / measured (inf when the simulated
        queue grows through the run: a prediction of overload has no finite percentile)."""
        if not self.predicted_stable:
            return float("inf")
        m, s = self.measured[f"p{p}"][0], self.predicted[f"p{p}"][0]
        return (s - m) / m

    def to_json(self) -> dict:
        """Plain dict."""
        d = dict(self.__dict__)
        if self.valid:
            d["error"] = {f"p{p}": (self.error(p) if self.predicted_stable else None) for p in PERCENTILES}
        return d


def _ci(lat: list[np.ndarray], p: int) -> list[float]:
    est = Sample(lat).quantile_ci(p / 100)
    return [est.value, est.low, est.high]


def episodes(t_s: np.ndarray, lat_ms: np.ndarray) -> dict:
    """Backlog episodes: runs of windows whose median latency is over EPISODE_FACTOR x the median."""
    if len(t_s) == 0:
        return {"count": 0, "seconds": 0.0, "longest_s": 0.0}
    med = float(np.median(lat_ms))
    w = ((t_s - t_s[0]) // EPISODE_WINDOW_S).astype(int)
    bad = np.zeros(w.max() + 1, dtype=bool)
    for k in np.unique(w):
        bad[k] = np.median(lat_ms[w == k]) > EPISODE_FACTOR * med
    runs, cur, longest = 0, 0, 0
    for b in bad:
        if b:
            cur += 1
            longest = max(longest, cur)
            if cur == 1:
                runs += 1
        else:
            cur = 0
    return {"count": runs, "seconds": float(bad.sum() * EPISODE_WINDOW_S), "longest_s": longest * EPISODE_WINDOW_S,
            "max_ms": float(lat_ms.max())}


def experiment_for(spec: dict, rate_rps: float, service, frontend, slack_ms: float) -> Experiment:
    """The experiment that describes the measured server at one offered rate."""
    batching = DynamicBatching(max_batch_size=spec["max_batch"], max_wait_ms=spec["max_wait_ms"] + slack_ms,
                               dispatch=spec["dispatch"])
    return Experiment(name=f"validate {spec['model']}", workload=Workload(arrivals=Poisson(rate_rps=rate_rps)),
                      batching=batching, service=service, frontend=frontend, slo=SLO(latency_ms=1000.0))


def predict(exp: Experiment, sent_ms: np.ndarray, seed: int) -> np.ndarray:
    """Simulated latency (ms) of each request, given the times they were sent (any order)."""
    from simlat.engine import simulate

    order = np.argsort(sent_ms, kind="stable")
    arr = sent_ms[order] - sent_ms[order][0]
    res = simulate(exp, Requests(arrival_ms=arr, items=np.ones(len(arr), dtype=np.int64)),
                   seed=np.random.SeedSequence(seed))
    out = np.empty(len(arr))
    out[order] = res.records.latency_ms
    return out


def compare_campaign(result: dict, *, seeds: int = 3, frontend: bool = True,
                     slowdown: str | None = None, load: str | None = None,
                     hold: bool | None = None) -> tuple[list[LevelComparison], dict]:
    """Every level of one campaign, compared; also returns the calibration facts.

    ``frontend=False`` predicts with the model profile alone (the naive baseline); ``slowdown``
    chooses how the in-server model slowdown is fitted (:func:`simlat.validate.fit.fit_frontend`).
    """
    for group in ("probes", "levels"):  # a live campaign holds lists, a loaded one arrays
        for run in result[group]:
            for table in ("req", "batch"):
                run[table] = {k: np.asarray(v, dtype=float) for k, v in run[table].items()}
    spec = result["spec"]
    service = fit_service(result["profile"])
    fe, facts = fit_frontend(result["probes"], result["profile"], slowdown, load, hold)
    slack = timer_slack_ms(facts, spec["max_wait_ms"])
    facts["timer_slack_ms"] = slack
    facts["service"] = {"base_ms": service.base_ms, "per_item_ms": service.per_item_ms}
    out = []
    for lv in result["levels"]:
        r = lv["req"]
        c = LevelComparison(result["label"], lv["load"], lv["rate_rps"], len(r["sched"]), bool(lv["checks"]["valid"]),
                            lv["checks"])
        if c.valid:
            kept = (r["sched"] >= r["sched"][0] + lv["warmup_s"]) & (r["ok"] > 0)
            order = np.argsort(r["sent"][kept])
            meas = ((r["recv"] - r["sent"]) * 1e3)[kept][order]
            exp = experiment_for(spec, lv["rate_rps"], service, fe if frontend else None, slack if frontend else 0.0)
            sent_ms = r["sent"] * 1e3
            preds = [predict(exp, sent_ms, seed)[kept][order] for seed in range(seeds)]
            c.measured = {f"p{p}": _ci([meas], p) for p in PERCENTILES}
            c.predicted = {f"p{p}": _ci(preds, p) for p in PERCENTILES}
            c.predicted_stable = not any(trend_grows(x) for x in preds)
            c.episodes = episodes(r["sent"][kept][order], meas)
        out.append(c)
    return out, facts


TABLE_HEADER = ("config", "load", "req/s", "measured p50", "measured p99", "predicted p50", "predicted p99",
                "p50 error", "p99 error", "backlog episodes", "valid")
"""Columns of :func:`table_rows`."""


def _fmt(ci: list[float]) -> str:
    return f"{ci[0]:.2f} [{ci[1]:.2f}, {ci[2]:.2f}]"


def table_rows(rows: list[LevelComparison]) -> list[tuple[str, ...]]:
    """One printable row per level (ms, 95% intervals in brackets); invalid levels say why."""
    out = []
    for c in rows:
        if not c.valid:
            why = []
            if not c.checks.get("kept_schedule", True):
                why.append(f"send lag p99 {c.checks['lag_p99_ms']:.2f} ms")
            if not c.checks.get("complete", True):
                why.append(f"{c.checks['failed']} failed")
            out.append((c.config, f"{c.load:.2f}", f"{c.rate_rps:.0f}", "-", "-", "-", "-", "-", "-", "-",
                        "INVALID: " + ", ".join(why)))
            continue
        ep = c.episodes
        eps = "none" if ep["count"] == 0 else f"{ep['count']} ({ep['seconds']:.2f} s, longest {ep['longest_s']:.2f} s)"
        if not c.predicted_stable:
            out.append((c.config, f"{c.load:.2f}", f"{c.rate_rps:.0f}", _fmt(c.measured["p50"]), _fmt(c.measured["p99"]),
                        "unstable", "unstable", "overload predicted", "overload predicted", eps, "yes"))
            continue
        out.append((c.config, f"{c.load:.2f}", f"{c.rate_rps:.0f}", _fmt(c.measured["p50"]), _fmt(c.measured["p99"]),
                    _fmt(c.predicted["p50"]), _fmt(c.predicted["p99"]), f"{c.error(50):+.1%}", f"{c.error(99):+.1%}",
                    eps, "yes"))
    return out
