"""The ``simlat`` command: thin wrappers that parse, load, call the library and print.

Each command imports its library lazily so ``simlat simulate`` never imports torch.
Errors in the user's input are :class:`simlat.errors.SimlatError`: printed without a traceback,
exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from simlat.errors import SimlatError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Discrete-event capacity planning for ML inference serving.",
)


@app.callback()
def _root() -> None:
    """simlat: measure what must be measured, simulate the rest."""


def _fail(err: SimlatError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


@app.command()
def simulate(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    requests: Annotated[Optional[int], typer.Option("--requests", "-n", min=1, help="Requests to simulate (overrides run.requests).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (overrides run.seed).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    records: Annotated[Optional[Path], typer.Option(help="Write the per-request records to this Parquet file.")] = None,
) -> None:
    """Simulate one experiment and print latency percentiles with confidence intervals."""
    from simlat.api import run
    from simlat.config import load_experiment

    try:
        exp = load_experiment(experiment)
        result = run(exp, requests=requests, seed=seed, progress=not json_out, keep_records=records is not None)
    except SimlatError as err:
        _fail(err)
    from simlat.summary_view import print_summary, summary_json

    if records is not None:
        from simlat.engine import write_records

        write_records(result.records, records)
    if json_out:
        typer.echo(summary_json(result.summary))
    else:
        print_summary(exp, result.summary)
        if records is not None:
            typer.echo(f"records written to {records}")


@app.command()
def sweep(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file with a sweep block.")],
    workers: Annotated[int | None, typer.Option("--workers", "-w", min=1, help="Local worker processes (default: all cores).")] = None,
    cluster: Annotated[str | None, typer.Option(help="Address of an existing Dask scheduler (tcp://host:8786) to run on.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Per-configuration result cache (resumes interrupted sweeps).")] = Path(".simlat-cache"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute everything; write no cache.")] = False,
    report: Annotated[Path | None, typer.Option(help="HTML report path (default reports/<experiment>.html).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write the HTML report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Sweep the experiment's grid, find each configuration's max rate under the SLO, and recommend one."""
    from simlat.config import load_experiment
    from simlat.sweep.progress import SweepProgress
    from simlat.sweep.runner import run_sweep

    try:
        exp = load_experiment(experiment)
        with SweepProgress(exp.name, enabled=not quiet) as bar:
            result = run_sweep(
                exp,
                base_dir=experiment.resolve().parent,
                workers=workers,
                cluster=cluster,
                cache_dir=None if no_cache else cache_dir,
                progress=bar,
            )
    except SimlatError as err:
        _fail(err)
    n = len(result.points)
    rate = n / result.elapsed_s * 60 if result.elapsed_s > 0 else float("nan")
    typer.echo(
        f"{n} configurations ({result.cached_configs} from cache) in {result.elapsed_s:.1f} s "
        f"({rate:.0f} configurations/minute, {result.executor})"
    )
    typer.echo(f"Recommendation: {result.recommendation}")
    if no_report:
        return
    path = report or Path("reports") / f"{exp.name}.html"
    try:
        from simlat.report import write_report
    except ImportError:
        typer.echo("report skipped: simlat.report.write_report is not available in this version")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_report(result, exp, path)
    typer.echo(f"report written to {path}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SimlatError as err:  # errors raised outside a command body
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
