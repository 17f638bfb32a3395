"""A measured campaign predicted from an experiment, with nothing fitted on the campaign.

``simlat validate --replay CAMPAIGN.npz --predict-with EXP.yaml``: every probe of the campaign that
measured the server (kept its schedule, stable, enough requests: capacity search, latency-vs-rate
curve and validation levels alike) and every overloaded level is predicted by running the experiment
at the probe's offered rate, with ``fleet`` set to the campaign's declared instances on one GPU. The
experiment brings everything else: model profile, serving profile, contention profile. This is how
the shared-GPU runs are checked: the serving stack was measured on one instance (another day, another
host), the contention by ``simlat calibrate --contention``, and the 2- and 4-instance servers are
predicted from those alone.

Beside the prediction, two counterfactuals show what each part is worth: the same instances with no
contention (each on a GPU of its own), and one instance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from simlat.endpoint.fit import kept_latencies, usable

MIN_REQUESTS = 300


@dataclass
class TransferRow:
    """One measured probe against its predictions (ms; inf = unstable)."""

    kind: str
    load: float | None
    repeat: int | None
    offered_rps: float
    measured_p50_ms: float
    measured_p99_ms: float
    predicted_p50_ms: float
    predicted_p99_ms: float
    pi_lo_ms: float
    pi_hi_ms: float
    no_contention_p99_ms: float
    one_instance_p99_ms: float

    @property
    def covered(self) -> bool:
        """Whether the 90% prediction interval holds the measured p99 (an unstable pair agrees)."""
        if math.isinf(self.measured_p99_ms):
            return math.isinf(self.predicted_p99_ms)
        return self.pi_lo_ms <= self.measured_p99_ms <= self.pi_hi_ms

    def error(self, predicted: float) -> float:
        """Relative error of a predicted p99 against the measured one (nan when either is unstable)."""
        if math.isinf(self.measured_p99_ms) or math.isinf(predicted):
            return float("nan")
        return predicted / self.measured_p99_ms - 1.0

    def to_json(self) -> dict:
        return {**asdict(self), "covered": self.covered}


def _fleet(instances: int, shared: bool) -> dict:
    if shared and instances > 1:
        return {"fleet.replicas": instances, "fleet.gpus": 1, "fleet.instances_per_gpu": instances}
    return {"fleet.gpus": None, "fleet.instances_per_gpu": 1, "fleet.replicas": instances}


def _p(summary, name: str) -> float:
    v = getattr(summary, name)
    return float("inf") if v is None or not summary.stable else float(v)


def _at(experiment, rate: float, requests: int, seed: int):
    from simlat.api import override, run

    return run(override(experiment, {"workload.arrivals": {"kind": "poisson", "rate_rps": rate}}),
               requests=requests, seed=seed).summary


def predict_campaign(data: dict, experiment, *, requests: int = 40_000, seed: int = 3, log=None) -> tuple[list[TransferRow], dict]:
    """Rows for every usable probe and overloaded level of ``data``; facts (capacities, instances)."""
    from simlat.api import override

    n = int(data["declared"].get("instances", 1))
    shared = override(experiment, _fleet(n, True))
    alone = override(experiment, _fleet(n, False))
    single = override(experiment, _fleet(1, False))
    rows: list[TransferRow] = []
    cache: dict[tuple[str, int], object] = {}

    def summary(exp, tag: str, rate: float):
        key = (tag, int(round(rate)))
        if key not in cache:
            cache[key] = _at(exp, rate, requests, seed)
        return cache[key]

    for p in [*data["probes"], *data.get("levels", [])]:
        overloaded = p["kind"] == "level" and not p["stable"]
        if not (usable(p, MIN_REQUESTS) or overloaded):
            continue
        _, lat = kept_latencies(p)
        rate = float(p["offered_rps"])
        s = summary(shared, "shared", rate)
        pi = s.prediction_interval_ms or (float("nan"), float("nan"))
        rows.append(TransferRow(
            kind=p["kind"], load=p.get("load"), repeat=p.get("repeat"), offered_rps=rate,
            measured_p50_ms=float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            measured_p99_ms=float("inf") if overloaded else float(np.percentile(lat, 99)),
            predicted_p50_ms=_p(s, "p50_ms"), predicted_p99_ms=_p(s, "p99_ms"),
            pi_lo_ms=float(pi[0]) if s.stable else float("inf"), pi_hi_ms=float(pi[1]) if s.stable else float("inf"),
            no_contention_p99_ms=_p(summary(alone, "alone", rate), "p99_ms"),
            one_instance_p99_ms=_p(summary(single, "single", rate), "p99_ms")))
        if log:
            r = rows[-1]
            log(f"  {r.kind:<8} {r.offered_rps:8.0f} req/s: measured p99 {r.measured_p99_ms:8.2f} ms, predicted "
                f"{r.predicted_p99_ms:8.2f} [{r.pi_lo_ms:.2f}, {r.pi_hi_ms:.2f}]")
    facts = {"instances": n, "measured_capacity_rps": float(data.get("capacity_rps") or float("nan")),
             "predicted_capacity_rps": predicted_capacity(shared, float(data.get("capacity_rps") or 1000.0), seed),
             "no_contention_capacity_rps": predicted_capacity(alone, float(data.get("capacity_rps") or 1000.0), seed),
             "one_instance_capacity_rps": predicted_capacity(single, float(data.get("capacity_rps") or 1000.0), seed)}
    return rows, facts


def predicted_capacity(experiment, near_rps: float, seed: int, requests: int = 20_000) -> float:
    """The highest rate the experiment runs stable: a bracket grown from 0.25x-2x ``near_rps`` until it
    holds the limit (at most 8 doublings or halvings), then 8 bisection steps; nan when even
    ``near_rps`` / 1024 is unstable."""
    lo, hi = 0.25 * near_rps, 2.0 * near_rps
    for _ in range(8):
        if not _at(experiment, hi, requests, seed).stable:
            break
        lo, hi = hi, 2.0 * hi
    for _ in range(8):
        if _at(experiment, lo, requests, seed).stable:
            break
        lo, hi = lo / 2.0, lo
    else:
        return float("nan")
    for _ in range(8):
        mid = (lo + hi) / 2
        if _at(experiment, mid, requests, seed).stable:
            lo = mid
        else:
            hi = mid
    return lo


def summarize(rows: list[TransferRow]) -> dict:
    """Coverage and p99 errors of the prediction and of the two counterfactuals."""
    def med(vals):
        v = [abs(x) for x in vals if np.isfinite(x)]
        return float(np.median(v)) if v else float("nan")

    return {"points": len(rows), "covered": sum(r.covered for r in rows),
            "median_abs_err_p99": med([r.error(r.predicted_p99_ms) for r in rows]),
            "median_abs_err_p50": med([r.predicted_p50_ms / r.measured_p50_ms - 1 for r in rows
                                       if np.isfinite(r.predicted_p50_ms) and r.measured_p50_ms > 0]),
            "worst_err_p99": max((r.error(r.predicted_p99_ms) for r in rows if np.isfinite(r.error(r.predicted_p99_ms))),
                                 key=abs, default=float("nan")),
            "no_contention_median_abs_err_p99": med([r.error(r.no_contention_p99_ms) for r in rows]),
            "one_instance_median_abs_err_p99": med([r.error(r.one_instance_p99_ms) for r in rows])}


def markdown(label: str, rows: list[TransferRow], facts: dict) -> list[str]:
    """Table lines: one per probe, then the summary."""
    def f(x: float) -> str:
        return "unstable" if math.isinf(x) else f"{x:.2f}"

    out = ["| configuration | probe | offered req/s | measured p50 / p99 ms | predicted p50 / p99 ms | 90% PI of p99 | "
           "in PI | p99 error | no-contention p99 | one-instance p99 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r.error(r.predicted_p99_ms)
        out.append(f"| {label} | {r.kind}{'' if r.load is None else f' {r.load:g}'} | {r.offered_rps:,.0f} | "
                   f"{f(r.measured_p50_ms)} / {f(r.measured_p99_ms)} | {f(r.predicted_p50_ms)} / {f(r.predicted_p99_ms)} | "
                   f"[{f(r.pi_lo_ms)}, {f(r.pi_hi_ms)}] | {'yes' if r.covered else 'no'} | "
                   f"{'' if not np.isfinite(e) else f'{e:+.0%}'} | {f(r.no_contention_p99_ms)} | {f(r.one_instance_p99_ms)} |")
    s = summarize(rows)
    out.append("")
    out.append(f"- {label}: capacity measured {facts['measured_capacity_rps']:,.0f} req/s, predicted "
               f"{facts['predicted_capacity_rps']:,.0f} ({facts['predicted_capacity_rps'] / facts['measured_capacity_rps'] - 1:+.1%}); "
               f"without contention {facts['no_contention_capacity_rps']:,.0f}, one instance {facts['one_instance_capacity_rps']:,.0f}; "
               f"p99 inside the 90% PI at {s['covered']}/{s['points']} probes; median |p99 error| {s['median_abs_err_p99']:.0%} "
               f"(worst {s['worst_err_p99']:+.0%}), median |p50 error| {s['median_abs_err_p50']:.0%}; without contention "
               f"{s['no_contention_median_abs_err_p99']:.0%}, one instance {s['one_instance_median_abs_err_p99']:.0%}")
    return out
