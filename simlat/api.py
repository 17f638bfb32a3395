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
    for path, value in values.items():
        data = set_path(data, path, value)
    try:
        return Experiment.model_validate(data)
    except ValidationError as err:
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise SimlatError(f"override {shown} gives an invalid experiment:", format_validation_error(err, data, Experiment)) from None


def sweep(experiment: Experiment, *, workers: int | None = None, cache_dir=None, base_dir=None, progress=None):
    """Run ``experiment.sweep`` (no result cache unless ``cache_dir``) and return the
    :class:`simlat.sweep.result.SweepResult` (``.to_pandas()``: one row per configuration)."""
    from simlat.sweep.runner import run_sweep

    return run_sweep(experiment, base_dir=base_dir, workers=workers, cache_dir=cache_dir, progress=progress)


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
    from simlat.engine import simulate
    from simlat.metrics import summarize
    from simlat.workload import generate

    run_cfg = experiment.run
    if requests is not None or seed is not None:
        upd = {}
        if requests is not None:
            upd = {"requests": requests, "duration_s": None}
        if seed is not None:
            upd["seed"] = seed
        run_cfg = run_cfg.model_copy(update=upd)
        experiment = experiment.model_copy(update={"run": run_cfg})

    results = []
    workload_notes: list[str] = []
    for rep_seq in np.random.SeedSequence(run_cfg.seed).spawn(run_cfg.replications):
        wl_seq, engine_seq = rep_seq.spawn(2)
        reqs = None
        if experiment.workload.arrivals.kind != "closed_loop":
            reqs = generate(
                experiment.workload, n=run_cfg.n_requests, duration_s=run_cfg.duration_s, seed=wl_seq
            )
            workload_notes += [w for w in reqs.warnings if w not in workload_notes]
        results.append(simulate(experiment, reqs, seed=engine_seq, progress=progress))
    summary = summarize(results, experiment)
    from simlat.config.ignored import ignored_settings

    workload_notes = [*ignored_settings(experiment), *workload_notes]
    if workload_notes:
        summary = summary.model_copy(update={"warnings": [*workload_notes, *summary.warnings]})
    return RunResult(summary=summary, records=results if keep_records else [], experiment=experiment)
