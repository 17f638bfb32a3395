"""The library entry point: ``run(experiment) -> RunResult``. Sweeps, the CLI and validation call this."""

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
    if workload_notes:
        summary = summary.model_copy(update={"warnings": [*workload_notes, *summary.warnings]})
    return RunResult(summary=summary, records=results if keep_records else [])
