"""The library entry point: ``run(experiment) -> RunResult``. Sweeps, the CLI and validation call this.

For notebooks, ``import simlat`` exports :func:`load`, :func:`override`, :func:`run` and
:func:`sweep` (see ``docs/api.md``)::

    import simlat
    exp = simlat.override(simlat.load("experiments/feed.yaml"), {"fleet.replicas": 10})
    res = simlat.run(exp, requests=50_000)
    res.summary.p99_ms, res.to_pandas()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simlat.config import Experiment

if TYPE_CHECKING:
    from simlat.engine import SimResult
    from simlat.metrics import Summary


@dataclass
class RunResult:
    """Summary of all replications, plus the per-request records when asked for."""

    summary: Summary
    records: list[SimResult] = field(default_factory=list)
    """One per replication, when ``keep_records`` was asked for."""
    experiment: Experiment | None = None

    def to_pandas(self):
        """The summary as a one-row DataFrame (intervals as ``*_lo`` / ``*_hi`` columns), with the
        experiment name, seed and simlat version."""
        import pandas as pd

        import simlat

        row = {}
        for k, v in self.summary.model_dump().items():
            if isinstance(v, (list, tuple)) and len(v) == 2 and k.endswith("_ci_ms"):
                row[k[: -len("_ci_ms")] + "_lo_ms"], row[k[: -len("_ci_ms")] + "_hi_ms"] = v
            elif isinstance(v, (int, float, str, bool)) or v is None:
                row[k] = v
        if self.experiment is not None:
            row = {"experiment": self.experiment.name, "seed": self.experiment.run.seed, **row}
        row["simlat_version"] = simlat.__version__
        return pd.DataFrame([row])

    def records_frame(self):
        """The per-request records of every replication (needs ``keep_records=True``), with a
        ``replication`` column, a ``warmup`` column marking the rows the summary leaves out, and the
        experiment name, seed and simlat version."""
        import pandas as pd

        from simlat.metrics import warmup_mask

        if not self.records:
            raise ValueError("no records kept: call run(..., keep_records=True)")
        wf = self.experiment.run.warmup_fraction if self.experiment is not None else 0.0
        frames = []
        for i, r in enumerate(self.records):
            df = r.records.to_frame()
            df.insert(0, "replication", i)
            df["warmup"] = warmup_mask(r, wf)
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        import simlat

        # where the rows come from (constant columns; Parquet stores them once, dictionary-encoded)
        out["experiment"] = pd.Categorical([self.experiment.name if self.experiment is not None else ""] * len(out))
        out["seed"] = self.experiment.run.seed if self.experiment is not None else -1
        out["simlat_version"] = pd.Categorical([simlat.__version__] * len(out))
        return out


def load(path) -> Experiment:
    """Read and validate an experiment YAML file (relative paths resolve against its folder)."""
    from simlat.config import load_experiment

    return load_experiment(path)


def override(experiment: Experiment, values: dict | None = None, **more) -> Experiment:
    """``experiment`` with nested fields set by dotted path, validated again.

    ``override(exp, {"fleet.replicas": 4, "batching.max_wait_ms": 1})``; keyword arguments use
    ``__`` for the dots (``fleet__replicas=4``). An invalid value raises SimlatError naming the path.
    """
    from pydantic import ValidationError

    from simlat.errors import SimlatError, format_validation_error
    from simlat.sweep.grid import set_path

    values = {**(values or {}), **{k.replace("__", "."): v for k, v in more.items()}}
    data = experiment.model_dump(mode="json", exclude_unset=True)
    if (experiment.fleet.gpus is not None or "fleet.gpus" in values) and "fleet.replicas" not in values:
        data.get("fleet", {}).pop("replicas", None)  # follows gpus x instances_per_gpu
    for path, value in values.items():
        data = set_path(data, path, value)
    try:
        return Experiment.model_validate(data)
    except ValidationError as err:
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise SimlatError(f"override {shown} gives an invalid experiment:", format_validation_error(err, data, Experiment)) from None


def run(
    experiment: Experiment,
    *,
    requests: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    keep_records: bool = False,
) -> RunResult:
    """Simulate ``experiment`` (all its replications) and summarise.

    ``requests`` and ``seed`` override ``experiment.run``. Randomness: one SeedSequence(seed),
    spawned per replication, then into a workload stream and an engine stream.
    """
    from simlat.config.ignored import ignored_settings
    from simlat.memory import check_memory
    from simlat.metrics import summarize

    experiment = _with_run_overrides(experiment, requests, seed)
    check_memory(experiment)
    results, workload_notes = _replications(experiment, progress)
    summary = summarize(results, experiment)
    summary = with_prediction_interval(summary, experiment)
    if experiment.colocated is not None:
        summary = summary.model_copy(update={"tenants": _tenant_summaries(results, experiment)})
    workload_notes = [*ignored_settings(experiment), *workload_notes]
    if workload_notes:
        summary = summary.model_copy(update={"warnings": [*workload_notes, *summary.warnings]})
    return RunResult(summary=summary, records=results if keep_records else [], experiment=experiment)


def _tenant_summaries(results: list[SimResult], experiment: Experiment) -> dict[str, Summary]:
    """Each colocated model's own summary (its SLO, its warm-up), from its results in every replication."""
    from simlat.config.experiment import tenant_experiment
    from simlat.metrics import summarize

    assert experiment.colocated is not None
    out = {}
    for name in experiment.colocated.tenants:
        t_exp = tenant_experiment(experiment, name)
        out[name] = with_prediction_interval(summarize([r.tenants[name] for r in results], t_exp), t_exp)
    return out


def _with_run_overrides(experiment: Experiment, requests: int | None, seed: int | None) -> Experiment:
    """``experiment`` with ``run.requests`` and ``run.seed`` overridden (validated as the file is),
    refused when it asks for too few requests to summarise."""
    from pydantic import ValidationError

    from simlat.config.serving import MIN_REQUESTS, Run
    from simlat.errors import SimlatError, format_validation_error

    run_cfg = experiment.run
    if requests is not None or seed is not None:
        upd = {}
        if requests is not None:
            upd = {"requests": requests, "duration_s": None}
        if seed is not None:
            upd["seed"] = seed
        # validated, not copied: an override obeys the same rules as the file (seed >= 0, ...)
        data = {**run_cfg.model_dump(), **upd}
        try:
            run_cfg = Run.model_validate(data)
        except ValidationError as err:
            raise SimlatError("the run's overrides are invalid:",
                              [f"run.{line}" for line in format_validation_error(err, data, Run)]) from None
        experiment = experiment.model_copy(update={"run": run_cfg})
    if run_cfg.n_requests is not None and run_cfg.n_requests < MIN_REQUESTS:
        raise SimlatError(
            f"run.requests: {run_cfg.n_requests} is invalid: at least {MIN_REQUESTS} requests are needed for "
            "percentiles, throughput and an SLO verdict"
        )
    return experiment


def _replications(experiment: Experiment, progress: bool) -> tuple[list[SimResult], list[str]]:
    """Every replication through the engine: one SeedSequence(run.seed), spawned per replication
    into a workload stream and an engine stream. Also the workload's notes, each once."""
    from simlat.config.serving import MIN_REQUESTS
    from simlat.engine import simulate
    from simlat.workload import generate

    run_cfg = experiment.run
    results = []
    workload_notes: list[str] = []
    for rep_seq in np.random.SeedSequence(run_cfg.seed).spawn(run_cfg.replications):
        wl_seq, engine_seq = rep_seq.spawn(2)
        reqs = None
        if experiment.workload.arrivals.kind != "closed_loop":
            reqs = generate(
                experiment.workload, n=run_cfg.n_requests, duration_s=run_cfg.duration_s, seed=wl_seq
            )
            _check_arrivals(reqs.arrival_ms, run_cfg, MIN_REQUESTS)
            workload_notes += [w for w in reqs.warnings if w not in workload_notes]
        results.append(simulate(experiment, reqs, seed=engine_seq, progress=progress))
    return results, workload_notes


def with_prediction_interval(summary: Summary, experiment: Experiment) -> Summary:
    """Add the prediction interval (:mod:`simlat.uncertainty`) and make P(SLO met) use it; without a
    measured serving stack, say that the numbers are the model profile's alone."""
    from simlat.uncertainty import PROFILE_ONLY_MISS, for_run, profile_process_sd

    fe = experiment.frontend
    upd: dict = {"slo_simulation_probability": summary.slo_met_probability}
    if fe is None or fe.kind != "profile":
        if fe is None:
            upd.update(prediction_basis="model profile only", warnings=[
                *summary.warnings, "no serving stack measured (frontend): intervals cover simulation noise only, "
                f"and {PROFILE_ONLY_MISS}; measure one with simlat calibrate --endpoint"])
        return summary.model_copy(update=upd)
    from simlat.profiles.serving import read

    serving = read(fe.path)
    upd["prediction_basis"] = f"serving profile {fe.path.name}"
    if not summary.stable or summary.slo_estimate_ms is None or not summary.utilization:
        return summary.model_copy(update={**upd, "slo_met_probability": 0.0 if not summary.stable else summary.slo_met_probability})
    per_replica = (summary.offered_rps or summary.throughput_rps) / max(experiment.fleet.replicas, 1)
    pi = for_run(summary.slo_estimate_ms, summary.slo_ci_ms, load=per_replica / serving.capacity_rps,
                 utilization=max(summary.utilization), serving=serving, process_sd=profile_process_sd(experiment.service))
    too_many_drops = summary.drop_rate > (100.0 - experiment.slo.percentile) / 100.0  # the percentile is undefined
    prob = 0.0 if too_many_drops else pi.probability_below(experiment.slo.latency_ms)
    upd.update(prediction_interval_ms=(pi.low, pi.high), prediction_parts=pi.parts, slo_met_probability=prob)
    return summary.model_copy(update=upd)


MAX_TIME_MS = 1e13
"""Simulated time beyond this (about 317 years) leaves under 2 us of float resolution: a 1 ms service
would vanish into rounding (a rate of 1e-300 req/s once printed p99 0.000 ms)."""


def _check_arrivals(arrival_ms: np.ndarray, run_cfg, min_requests: int) -> None:
    """Refuse a workload whose run is too short for a verdict or too long for the clock's resolution."""
    from simlat.errors import SimlatError

    n = len(arrival_ms)
    if n < min_requests:
        what = f"run.duration_s: {run_cfg.duration_s:g} s" if run_cfg.duration_s is not None else "the workload"
        raise SimlatError(
            f"{what} gives {n} request(s); at least {min_requests} are needed for percentiles, throughput and "
            "an SLO verdict (raise the duration or the rate, or loop the trace)"
        )
    last = float(arrival_ms[-1])
    if not np.isfinite(last) or last > MAX_TIME_MS:
        raise SimlatError(
            f"workload.arrivals: the run would span {last / 3.15576e10:.3g} years of simulated time; beyond "
            f"{MAX_TIME_MS:.0e} ms the clock cannot resolve service times (is the rate far too low?)"
        )
