"""The ``simlat`` command: thin wrappers that parse, load, call the library and print.

Each command imports its library lazily so ``simlat simulate`` never imports torch.
Errors in the user's input are :class:`simlat.errors.SimlatError`: printed without a traceback,
exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from simlat.errors import SimlatError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no "<bool>" beside flags, no boxes cut to 80 columns when piped
    help="Discrete-event capacity planning for ML inference serving.",
)


def _print_version(value: bool) -> None:
    if value:
        import simlat

        typer.echo(f"simlat {simlat.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """simlat: measure what must be measured, simulate the rest."""


def _with_overrides(exp, assignments: list[str] | None):
    """Apply ``--set path=value`` options (values parsed as YAML: 4, 0.5, bf16, [1, 2], {kind: none})."""
    if not assignments:
        return exp
    import yaml

    from simlat.api import override

    values = {}
    for item in assignments:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise SimlatError(f"--set {item!r}: expected path=value, e.g. --set fleet.replicas=4")
        try:
            values[path.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise SimlatError(f"--set {item!r}: the value is not valid YAML ({err.problem})") from None
    return override(exp, values)


SET_HELP = "Override a field by dotted path, value as YAML: --set fleet.replicas=4 (repeatable)."


def _fail(err: SimlatError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


@app.command()
def simulate(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    requests: Annotated[int | None, typer.Option("--requests", "-n", min=1, help="Requests to simulate (overrides run.requests).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides run.seed).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    records: Annotated[Path | None, typer.Option(help="Write the per-request records (with a warmup column) to this .parquet or .csv file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Simulate one experiment and print latency percentiles with confidence intervals."""
    from simlat.api import run
    from simlat.config import load_experiment

    try:
        if records is not None and records.suffix.lower() not in (".parquet", ".csv"):
            raise SimlatError(f"--records: {str(records)!r} must end in .parquet or .csv (the suffix picks the format)")
        exp = _with_overrides(load_experiment(experiment), set_)
        result = run(exp, requests=requests, seed=seed, progress=not json_out, keep_records=records is not None)
    except SimlatError as err:
        _fail(err)
    from simlat.summary_view import print_summary, summary_json

    if records is not None:
        frame = result.records_frame()  # with replication and warmup columns
        if records.suffix.lower() == ".csv":
            frame.to_csv(records, index=False)
        else:
            frame.to_parquet(records, index=False)
    if json_out:
        import simlat

        meta = {"experiment": exp.name, "seed": exp.run.seed if seed is None else seed, "simlat_version": simlat.__version__}
        typer.echo(summary_json(result.summary, meta))
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
    reports: Annotated[Path, typer.Option(help="Folder for the HTML report <experiment>.html and its charts.")] = Path("reports"),
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write the HTML report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    table: Annotated[Path | None, typer.Option(help="Write one row per configuration (parameters, max rate, percentiles with intervals, cost, headroom, Pareto flag, why not chosen) to a .parquet, .csv or .json file.")] = None,
    top: Annotated[int, typer.Option(min=0, help="Configurations shown in the terminal table (0: none).")] = 10,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Sweep the experiment's grid, find each configuration's max rate under the SLO, and recommend one."""
    from simlat.config import load_experiment
    from simlat.sweep.progress import SweepProgress
    from simlat.sweep.runner import run_sweep

    try:
        exp = _with_overrides(load_experiment(experiment), set_)
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
    except KeyboardInterrupt:
        done = getattr(locals().get("bar"), "done", 0)
        total = getattr(locals().get("bar"), "total", 0)
        where = "no result cache (--no-cache): a rerun starts over" if no_cache else (
            f"finished configurations are in {cache_dir}/: run the same command again to resume")
        typer.echo(f"\ninterrupted after {done} of {total} configurations; {where}", err=True)
        raise typer.Exit(code=130) from None
    result.command = " ".join(["simlat", *sys.argv[1:]])
    n = len(result.points)
    rate = n / result.elapsed_s * 60 if result.elapsed_s > 0 else float("nan")
    typer.echo(
        f"{n} configurations ({result.cached_configs} from cache) in {result.elapsed_s:.1f} s "
        f"({rate:.0f} configurations/minute, {result.executor})"
    )
    failed = result.points[result.points["note"].str.startswith("error:")]
    if len(failed):
        typer.echo(f"warning: {len(failed)} configuration(s) rejected by the simulator, e.g. {failed.iloc[0]['label']}: "
                   f"{failed.iloc[0]['note']}", err=True)
    typer.echo(f"Recommendation: {result.recommendation}")
    for line in result.explanation:
        typer.echo(line)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for warning in result.run_warnings:
        typer.echo(f"warning ({'chosen' if result.chosen else 'closest'} configuration at the target rate): {warning}", err=True)
    if top:
        from simlat.sweep.table import print_top

        print_top(result, top)
    if table is not None:
        from simlat.sweep.table import write_table

        try:
            typer.echo(f"table written to {write_table(result, table)}")
        except SimlatError as err:
            _fail(err)
    if no_report:
        return
    try:
        from simlat.report.writer import write_report
    except ImportError:
        typer.echo("report skipped: simlat.report.writer.write_report is not available in this version")
        return
    reports.mkdir(parents=True, exist_ok=True)
    try:
        html = write_report(result, exp, reports)
    except SimlatError as err:
        _fail(err)
    typer.echo(f"report written to {html}")


@app.command()
def calibrate(
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    model: Annotated[str | None, typer.Option(help="Built-in name (mlp_ranker, dlrm_small, encoder_small; comma-separated or 'builtin' for all), a .pt/.ts/.pt2/.onnx file or package.module:factory.")] = None,
    out: Annotated[Path | None, typer.Option(help="Profile file to write, e.g. calibration/h100-cuda.json.")] = None,
    variants: Annotated[str | None, typer.Option(help="Comma-separated variants (default: all for the device).")] = None,
    batch_sizes: Annotated[str | None, typer.Option(help="Comma-separated batch sizes (default: powers of two per model).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (torch.set_num_threads, OMP/MKL, onnxruntime).")] = None,
    budget: Annotated[str, typer.Option(help="quick, normal or thorough.")] = "normal",
    input_shape: Annotated[str | None, typer.Option(help="Per-item input shape of a user model, e.g. 512 or 3x224x224.")] = None,
    seq_len: Annotated[int, typer.Option(help="Sequence length of encoder_small.")] = 64,
    time_limit: Annotated[float | None, typer.Option(help="Stop measuring after this many seconds (work left is recorded as not measured).")] = None,
    shared_machine: Annotated[bool, typer.Option(help="Record that other work shared the machine during the measurement.")] = False,
    note: Annotated[list[str] | None, typer.Option(help="A note to record in the profile's provenance (repeatable).")] = None,
    cache: Annotated[str | None, typer.Option(help="Measure a Redis cache instead, e.g. redis://127.0.0.1:6379.")] = None,
    value_bytes: Annotated[int, typer.Option(help="With --cache: the cached value size in bytes.")] = 256,
    processes: Annotated[int | None, typer.Option(help="Measuring processes per variant (overrides the budget's; the spread between them is reported).")] = None,
    no_overheads: Annotated[bool, typer.Option("--no-overheads", help="Skip the serialization and copy components.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Measure a model's service times on this machine (or a Redis cache's with --cache) and write a profile."""
    try:
        if out is None:
            raise SimlatError("--out is required: the profile file to write, e.g. calibration/cpu.json")
        if cache is not None:
            from simlat.calibrate.redis import calibrate_redis

            profile = calibrate_redis(cache, out=out, value_bytes=value_bytes, progress=not quiet, note=note or "")
            get, put = profile.get, profile.set
            typer.echo(f"GET p50 {get.p50_ms:.3f} ms, p99 {get.p99_ms:.3f} ms; SET p50 {put.p50_ms:.3f} ms, p99 {put.p99_ms:.3f} ms")
            if profile.throughput is not None:
                tp = profile.throughput
                typer.echo(f"throughput {tp.ops_per_s:,.0f} GET/s with {tp.clients} clients x {tp.pipeline} in flight"
                           + (" (client-bound: a lower bound)" if tp.client_bound else ""))
            for warning in profile.warnings:
                typer.echo(f"warning: {warning}")
            typer.echo(f"profile written to {out}")
            return
        if model is None:
            raise SimlatError("--model is required (or --cache URL to measure a Redis cache)")
        from simlat.calibrate.command import calibrate as run_calibration
        from simlat.calibrate.command import summary_rows

        profile = run_calibration(
            device=device, model=model, out=out, variants=[v for v in variants.split(",") if v] if variants else None,
            batch_sizes=batch_sizes, threads=threads, budget=budget, input_shape=input_shape, seq_len=seq_len,
            time_limit_s=time_limit, shared_machine=shared_machine, notes=note, progress=not quiet,
            overheads=not no_overheads, processes=processes,
        )
    except SimlatError as err:
        _fail(err)
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "variant", "status", "p50 ms, smallest batch", "p50 ms, largest batch", "notes", title=str(out))
    for row in summary_rows(profile):
        table.add_row(*row)
    Console().print(table)
    typer.echo(f"profile written to {out} ({profile.provenance.device_name}, {profile.provenance.elapsed_s} s)")


@app.command()
def validate(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file (its batching policy and model are served).")],
    loads: Annotated[str, typer.Option(help="Load levels as fractions of the measured open-loop capacity.")] = "0.2,0.5,0.7,0.85",
    model: Annotated[str | None, typer.Option(help="Model to serve (default: the experiment's profile model).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    level_s: Annotated[float, typer.Option(min=1.0, help="Seconds of load per level.")] = 10.0,
    warmup_s: Annotated[float, typer.Option(min=0.0, help="Seconds discarded at the start of each level.")] = 2.0,
    probe_s: Annotated[float, typer.Option(min=0.5, help="Seconds per capacity probe.")] = 2.5,
    start_rps: Annotated[float, typer.Option(min=1.0, help="First rate of the capacity search.")] = 100.0,
    max_probes: Annotated[int, typer.Option(min=2, help="Most capacity probes.")] = 11,
    max_lag_ms: Annotated[float, typer.Option(help="A level whose send-lag p99 exceeds this is invalid.")] = 1.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write every raw measurement to this .npz file.")] = None,
) -> None:
    """Run a real server under open-loop load and compare measured with predicted latency."""
    import json

    from simlat.config import load_experiment
    from simlat.validate.runner import validate as run_validate

    try:
        fractions = [float(x) for x in loads.split(",") if x.strip()]
    except ValueError:
        _fail(SimlatError(f"--loads: {loads!r} must be comma-separated fractions, e.g. 0.2,0.5,0.7,0.85"))
    try:
        exp = load_experiment(experiment)
        res = run_validate(exp, loads=fractions, model=model, device=device, level_s=level_s, warmup_s=warmup_s,
                           probe_s=probe_s, start_rps=start_rps, max_probes=max_probes, max_lag_ms=max_lag_ms, log=(lambda m: None) if json_out else typer.echo)
    except SimlatError as err:
        _fail(err)
    if out is not None:
        from simlat.validate.measure import save

        save(res.campaign, out)
    if json_out:
        typer.echo(json.dumps({"capacity_rps": res.campaign["capacity_rps"], "machine": res.campaign["machine"],
                               "levels": [c.to_json() for c in res.rows], "calibration": res.facts}, default=float))
        return
    from rich.console import Console
    from rich.table import Table

    from simlat.validate.compare import TABLE_HEADER, table_rows

    table = Table(*TABLE_HEADER, title=f"{exp.name}: measured open-loop capacity {res.campaign['capacity_rps']:.0f} req/s")
    for row in table_rows(res.rows):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="A run (simulate --json output) or a sweep table (sweep --table).")],
    b: Annotated[Path, typer.Argument(help="The other run or sweep table, of the same kind.")],
    out: Annotated[Path | None, typer.Option(help="Also write the comparison as .csv.")] = None,
) -> None:
    """Two runs or two sweeps side by side (sweeps matched on their shared parameters)."""
    from simlat.compare import compare_runs, compare_sweeps, print_frame, read

    try:
        (kind_a, data_a), (kind_b, data_b) = read(a), read(b)
        if kind_a != kind_b:
            raise SimlatError(f"cannot compare a {kind_a} ({a}) with a {kind_b} ({b})")
        df = compare_runs(data_a, data_b) if kind_a == "run" else compare_sweeps(data_a, data_b)
    except SimlatError as err:
        _fail(err)
    print_frame(df, f"A = {a}, B = {b}")
    if out is not None:
        df.to_csv(out, index=False)
        typer.echo(f"comparison written to {out}")


@app.command()
def schema(
    markdown: Annotated[bool, typer.Option("--markdown", help="The field reference as Markdown (docs/schema.md) instead of JSON Schema.")] = False,
) -> None:
    """Print the experiment file's JSON Schema (for editors), or its field reference as Markdown."""
    import json

    from simlat.config.reference import json_schema, reference_markdown

    typer.echo(reference_markdown() if markdown else json.dumps(json_schema(), indent=2), nl=not markdown)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``warning: ...`` line on stderr, without Python's source path and line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main() -> None:
    """Console-script entry point."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        app()
    except SimlatError as err:  # errors raised outside a command body
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
