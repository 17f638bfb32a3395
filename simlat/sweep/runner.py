"""Run a sweep end to end: expand the grid, search every configuration (cached), choose, describe."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from simlat.config import Experiment
from simlat.config.ignored import ignored_settings, ignored_sweep_params
from simlat.errors import SimlatError
from simlat.memory import check_memory
from simlat.metrics import DECOMPOSITION
from simlat.sweep.cache import ResultCache
from simlat.sweep.choose import choose, headroom, pareto_mask
from simlat.sweep.cost import cost_per_hour, device_label, projected_warning
from simlat.sweep.describe import recommendation
from simlat.sweep.evaluate import MEETS
from simlat.sweep.executor import default_workers, probe_cluster, run_tasks
from simlat.sweep.explain import edge_warnings, explain, reasons
from simlat.sweep.grid import Configuration, check_profiles, expand, short_value
from simlat.sweep.inputs import describe_inputs
from simlat.sweep.rate import target_rate_rps
from simlat.sweep.result import SweepResult
from simlat.sweep.search import Outcome, SearchTask, limit_of

# Attribution each known public data set requires, keyed by file name.
ATTRIBUTIONS = {
    "azure_llm2023_conv.csv": "Azure LLM inference trace 2023, Patel et al., Splitwise, ISCA 2024 (CC-BY 4.0)",
    "azure_llm2023_code.csv": "Azure LLM inference trace 2023, Patel et al., Splitwise, ISCA 2024 (CC-BY 4.0)",
}
MAX_CDF_POINTS = 20_000

TARGET_COLUMNS = (
    "stable",
    "p50_ms",
    "p99_ms",
    "p99_lo_ms",
    "p99_hi_ms",
    "p999_ms",
    "slo_estimate_ms",
    "slo_lo_ms",
    "slo_hi_ms",
    "pi_lo_ms",
    "pi_hi_ms",
    "slo_met_probability",
    "utilization",
    "mean_batch_size",
    *DECOMPOSITION,
)
"""``points`` columns that are the target rate's :class:`~simlat.sweep.evaluate.Evaluation` field of the same name."""

Progress = Callable[[int, int, int], None]  # (done, total, cached)


def _tasks(configs: list[Configuration], experiment: Experiment) -> list[SearchTask]:
    sweep = experiment.sweep
    assert sweep is not None, "a sweep needs a sweep block"
    return [
        SearchTask(c.config_id, c.experiment, sweep, target_rate_rps(c.experiment), experiment.run.seed)
        for c in configs
    ]


def _param_value(v):
    return v if isinstance(v, (int, float, str, bool)) and not (isinstance(v, str) and "/" in v) else short_value(v)


def _hit_ratio(outcome: Outcome, target: float) -> float:
    """The cache hit ratio of the simulated evaluation nearest the target rate (NaN if none)."""
    sims = [e for e in outcome.evaluations if e.simulated]
    for e in sorted(sims, key=lambda e: abs(e.rate_rps - target)):
        if not math.isnan(e.cache_hit_ratio):
            return e.cache_hit_ratio
    return math.nan


def _headroom_of(points, config_id: str) -> float:
    """The headroom column of one configuration's row (NaN if missing)."""
    row = points.loc[points["config_id"] == config_id, "headroom"]
    return float(row.iloc[0]) if len(row) else float("nan")


def _points(configs, outcomes, experiment, params) -> pd.DataFrame:
    sweep = experiment.sweep
    rows = []
    for c in configs:
        o: Outcome = outcomes[c.config_id]
        t = o.target
        target = target_rate_rps(c.experiment)
        row = {"config_id": c.config_id}
        row.update({p: _param_value(c.params.get(p)) for p in params})
        row.update(
            label=c.label,
            device=device_label(c.experiment),
            cost_per_hour=cost_per_hour(c.experiment, sweep),
            replicas=c.experiment.fleet.replicas,
            target_rate_rps=target,
            max_rate_rps=o.max_rate_rps,
            limit=limit_of(o),
            **{k: getattr(t, k) for k in TARGET_COLUMNS},
            meets_slo=t.verdict == MEETS,
            headroom=headroom(o.max_rate_rps, target),
            throughput_per_replica=(o.max_rate_rps / c.experiment.fleet.replicas),
            requests_simulated=int(sum(e.requests_run for e in o.evaluations)),
            evaluations=len(o.evaluations),
            note=o.note,
        )
        if c.experiment.cache is not None:
            row["hit_ratio"] = _hit_ratio(o, target)
        if c.experiment.colocated is not None:
            row.update(_tenant_columns(c.experiment, t, sweep.confidence))
        rows.append(row)
    df = pd.DataFrame(rows)
    df["pareto"] = pareto_mask(df) if len(df) else []
    return df


def _tenant_columns(experiment, t, confidence: float) -> dict:
    """The colocated models' own numbers at the target rate: GPUs in all, and per model its p50 and
    p99 (with the p99's interval) and whether it meets its own SLO (``<name>_meets_slo``)."""
    from types import SimpleNamespace

    from simlat.sweep.evaluate import verdict_of

    def num(x) -> float:
        return math.nan if x is None else float(x)

    col = experiment.colocated
    out: dict = {"gpus": col.gpus(experiment.fleet.n_gpus)}
    tenants = json.loads(t.summary_json).get("tenants", {})
    for name in col.tenants:
        d = tenants.get(name)
        if d is None:  # not simulated (an error, or skipped)
            out.update({f"{name}_p50_ms": math.nan, f"{name}_p99_ms": math.nan, f"{name}_p99_lo_ms": math.nan,
                        f"{name}_p99_hi_ms": math.nan, f"{name}_meets_slo": False})
            continue
        p99_ci = d.get("p99_ci_ms") or [None, None]
        slo_ci = d.get("slo_ci_ms") or [None, None]
        # JSON keeps an infinite bound as null: read it back as infinite
        s = SimpleNamespace(stable=d["stable"], slo_met_probability=d["slo_met_probability"], drop_rate=d["drop_rate"],
                            slo_ci_ms=(num(slo_ci[0]), math.inf if slo_ci[1] is None else float(slo_ci[1])))
        out.update({
            f"{name}_p50_ms": num(d.get("p50_ms")),
            f"{name}_p99_ms": num(d.get("p99_ms")),
            f"{name}_p99_lo_ms": num(p99_ci[0]),
            # a stable run's null upper bound is infinite (no finite bound), as the main model's column says
            f"{name}_p99_hi_ms": (math.inf if d["stable"] and p99_ci[1] is None and d.get("p99_ms") is not None
                                  else num(p99_ci[1])),
            f"{name}_meets_slo": verdict_of(s, d["slo_latency_ms"], d["slo_percentile"], confidence) == MEETS,  # type: ignore[arg-type]
        })
    return out


def _load_curves(outcomes: dict[str, Outcome], order: list[str]) -> pd.DataFrame:
    rows = []
    for cid in order:
        for e in outcomes[cid].evaluations:
            rows.append(
                dict(
                    config_id=cid, rate_rps=e.rate_rps, slo_estimate_ms=e.slo_estimate_ms,
                    slo_lo_ms=e.slo_lo_ms, slo_hi_ms=e.slo_hi_ms, p99_ms=e.p99_ms, stable=e.stable,
                    verdict=e.verdict, simulated=e.simulated, requests=e.requests_run,
                )
            )
    cols = ["config_id", "rate_rps", "slo_estimate_ms", "slo_lo_ms", "slo_hi_ms", "p99_ms", "stable",
            "verdict", "simulated", "requests"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["config_id", "rate_rps"], kind="mergesort").reset_index(drop=True)


def quantiles_frame(outcome: Outcome) -> tuple[pd.DataFrame, int]:
    """The target-rate latency quantiles the search kept (``quantile, nines, latency_ms``) and the
    number of requests behind them; empty when none were kept."""
    data = json.loads(outcome.target.quantiles_json or "{}")
    q = np.asarray(data.get("quantile", []), float)
    lat = np.asarray(data.get("latency_ms", []), float)
    keep = q < 1.0  # the maximum has no finite "nines"
    df = pd.DataFrame({"quantile": q[keep], "nines": -np.log10(1.0 - q[keep]), "latency_ms": lat[keep]})
    return df, int(data.get("n", 0))


def _profiles(configs: list[Configuration]) -> list[Path]:
    seen = []
    for c in configs:
        if c.experiment.service.kind == "profile" and Path(c.experiment.service.path) not in seen:
            seen.append(Path(c.experiment.service.path))
    return seen


def _services(configs: list[Configuration]) -> list[tuple[str, str, str]]:
    out = []
    for c in configs:
        s = c.experiment.service
        if s.kind == "profile":
            key = (Path(s.path).name, s.model, s.variant)
            if key not in out:
                out.append(key)
    return out


def _attribution(configs: list[Configuration]) -> list[str]:
    out = []
    for c in configs:
        arr = c.experiment.workload.arrivals
        if arr.kind == "trace":
            text = ATTRIBUTIONS.get(Path(arr.path).name)
            if text and text not in out:
                out.append(text)
    return out


def run_sweep(
    experiment: Experiment,
    *,
    base_dir: Path | None = None,
    workers: int | None = None,
    cluster: str | None = None,
    cache_dir: str | Path | None = ".simlat-cache",
    progress: Progress | None = None,
    details: bool = True,
) -> SweepResult:
    """Search every configuration of ``experiment.sweep`` and choose the operating point.

    Cached configurations are not recomputed. ``progress(done, total, cached)`` is called as
    configurations finish. Nothing is re-run afterwards: the latency distribution at the chosen
    point is the one its search kept (``details`` is accepted for compatibility and ignored).
    """
    if experiment.sweep is None:
        raise SimlatError(f"{experiment.name}: has no sweep block (add sweep.grid to sweep it)")
    t0 = time.perf_counter()
    sweep = experiment.sweep
    if cluster:
        probe_cluster(cluster)  # before expanding the grid: a dead scheduler is reported at once
    configs = expand(experiment, base_dir)
    for c in configs:  # fail on a missing price or a run too large for memory before any simulation
        cost_per_hour(c.experiment, sweep)
        check_memory(c.experiment, sweep.max_requests)
    check_profiles(configs)  # and on a variant, model or component the profile lacks
    tasks = _tasks(configs, experiment)
    cache = ResultCache(cache_dir, experiment.name)
    outcomes: dict[str, Outcome] = {}
    pending = []
    for task in tasks:
        hit = cache.load(task)
        if hit is not None:
            outcomes[task.config_id] = hit
        else:
            pending.append(task)
    cached = len(outcomes)
    if progress:
        progress(cached, len(tasks), cached)
    by_id = {t.config_id: t for t in pending}
    params_by_id = {c.config_id: c.params for c in configs}
    for outcome in run_tasks(pending, workers=workers, cluster=cluster):
        if not outcome.note.startswith("error:"):  # rejected configurations are retried next time
            cache.store(by_id[outcome.config_id], outcome, params_by_id.get(outcome.config_id))
        outcomes[outcome.config_id] = outcome
        if progress:
            progress(len(outcomes), len(tasks), cached)

    errors = [o.note for o in outcomes.values() if o.note.startswith("error:")]
    if errors and len(errors) == len(outcomes):
        raise SimlatError(f"{experiment.name}: every configuration was rejected by the simulator; the first: {errors[0]}")
    params = sweep.params
    points = _points(configs, outcomes, experiment, params)
    chosen = choose(points, sweep.objective, sweep.min_headroom)
    slo = experiment.slo
    points["reason"] = reasons(points, chosen, percentile=slo.percentile, slo_ms=slo.latency_ms,
                               confidence=sweep.confidence, min_headroom=sweep.min_headroom)
    experiments = {c.config_id: c.experiment for c in configs}
    target = target_rate_rps(experiment)
    text = recommendation(
        points, chosen, experiments, params, experiment.slo.percentile, experiment.slo.latency_ms,
        target, sweep.confidence, sweep.min_headroom,
    )
    result = SweepResult(
        experiment_name=experiment.name,
        slo_percentile=experiment.slo.percentile,
        slo_latency_ms=experiment.slo.latency_ms,
        target_rate_rps=target,
        objective=sweep.objective,
        params=params,
        points=points,
        load_curves=_load_curves(outcomes, [c.config_id for c in configs]),
        chosen=chosen,
        recommendation=text,
        profiles=_profiles(configs),
        attribution=_attribution(configs),
        cached_configs=cached,
        cpu_s=sum(o.cpu_s for o in outcomes.values()),
        executor=f"Dask cluster at {cluster}" if cluster else f"{workers or default_workers()} local worker(s)",
        explanation=explain(points, chosen, objective=sweep.objective, percentile=slo.percentile,
                            slo_ms=slo.latency_ms, target_rps=target, confidence=sweep.confidence,
                            min_headroom=sweep.min_headroom),
        warnings=ignored_settings(experiment) + ignored_sweep_params(experiment, configs)
        + edge_warnings(points, chosen, params, sweep.objective)
        + (projected_warning(experiments[chosen], _headroom_of(points, chosen)) if chosen is not None else []),
        seed=experiment.run.seed,
        services=_services(configs),
        min_headroom=sweep.min_headroom,
        inputs=describe_inputs(experiment, _profiles(configs)),
    )
    ref = chosen
    if ref is None and len(points) and points["stable"].any():
        ref = str(points[points["stable"]].sort_values("slo_hi_ms").iloc[0]["config_id"])
    if ref is not None:
        result.run_warnings = list(json.loads(outcomes[ref].target.summary_json or "{}").get("warnings") or [])
    if chosen is not None:
        row = points.set_index("config_id").loc[chosen]
        result.chosen_decomposition_ms = {k: float(row[k]) for k in DECOMPOSITION if not math.isnan(row[k])}
        hist = json.loads(outcomes[chosen].target.summary_json or "{}").get("batch_size_hist") or {}
        result.chosen_batch_hist = {int(k): int(v) for k, v in hist.items()}
        result.chosen_quantiles, result.chosen_requests = quantiles_frame(outcomes[chosen])
        batching = next(c for c in configs if c.config_id == chosen).experiment.batching
        result.chosen_max_batch = getattr(batching, "max_batch_size", None)
    result.elapsed_s = time.perf_counter() - t0
    return result
