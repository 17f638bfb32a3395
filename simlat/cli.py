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
    requests: Annotated[int | None, typer.Option("--requests", "-n", min=1, max=1_000_000_000, help="Requests to simulate (overrides run.requests).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=2**63 - 1, help="Random seed (overrides run.seed).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    records: Annotated[Path | None, typer.Option(help="Write the per-request records (with a warmup column) to this .parquet or .csv file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Simulate one experiment and print latency percentiles with confidence intervals."""
    from simlat.api import run
    from simlat.config import load_experiment
    from simlat.memory import ANNOUNCE_BYTES, describe, estimate_bytes
    from simlat.outputs import check_output_file, write_frame

    try:
        if records is not None:
            check_output_file(records, "--records")
            if records.suffix.lower() not in (".parquet", ".csv"):
                raise SimlatError(f"--records: {str(records)!r} must end in .parquet or .csv (the suffix picks the format)")
        exp = _with_overrides(load_experiment(experiment), set_)
        need = estimate_bytes(exp, requests)
        if need is not None and ANNOUNCE_BYTES < need <= exp.run.max_memory_gb * 1e9:
            typer.echo(f"this run needs {describe(need)} of memory (run.max_memory_gb: {exp.run.max_memory_gb:g})", err=True)
        result = run(exp, requests=requests, seed=seed, progress=not json_out, keep_records=records is not None)
    except SimlatError as err:
        _fail(err)
    from simlat.summary_view import print_summary, summary_json

    if records is not None:
        frame = result.records_frame()  # with replication and warmup columns
        try:
            write_frame(frame, records, "--records")
        except OSError as err:
            _fail(SimlatError(f"--records: cannot write {str(records)!r}: {err.strerror or err}"))
    if json_out:
        import simlat

        meta = {"experiment": exp.name, "seed": exp.run.seed if seed is None else seed, "simlat_version": simlat.__version__}
        typer.echo(summary_json(result.summary, meta))
    else:
        print_summary(exp, result.summary)
        if records is not None:
            typer.echo(f"records written to {records}")


@app.command()
def day(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file (fleet.autoscaling gives the policy; without it, fleet.replicas all day).")],
    window_s: Annotated[float | None, typer.Option("--window-s", min=0.001, help="Window length in seconds (overrides fleet.autoscaling.window_s, default 60).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write one row per window (of the chosen policy with --sweep) to this .parquet, .csv or .json file.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the day summary (with --sweep: and the policy table) as one JSON object.")] = False,
    sweep_: Annotated[bool, typer.Option("--sweep", help="Run every policy of fleet.autoscaling.sweep and choose the cheapest meeting its compliance target.")] = False,
    table: Annotated[Path | None, typer.Option(help="With --sweep: write one row per policy to a .parquet, .csv or .json file.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", min=1, help="With --sweep: local worker processes (default: all cores).")] = None,
    report_dir: Annotated[Path | None, typer.Option("--report-dir", help="Write the HTML day report <experiment>_day.html to this folder.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    engine: Annotated[str, typer.Option("--engine", help="quasi-static (each window alone at its mean rate) or exact "
                                        "(one event-level run through the day; queues carry over).")] = "quasi-static",
    hours: Annotated[float | None, typer.Option("--hours", help="Simulate the first HOURS of the day only (--engine exact).")] = None,
) -> None:
    """Simulate a day under the fleet's autoscaling policy: SLO compliance, replica-hours, cost and
    recovery (--engine exact: one event-level run through the day, queues carried over; default: each
    window alone at its mean rate); with --sweep, choose the policy parameters."""
    from simlat.autoscale import simulate_day
    from simlat.autoscale.stream import simulate_day_exact, simulate_day_exact_result
    from simlat.autoscale.view import day_lines, sweep_json
    from simlat.autoscale.view import summary_json as day_json
    from simlat.config import load_experiment
    from simlat.outputs import check_output_dir, check_table_file, write_frame

    swept = None
    try:
        if out is not None:
            check_table_file(out, "--out")
        if engine not in ("quasi-static", "exact"):
            raise SimlatError(f"--engine: {engine!r} is invalid: use quasi-static or exact")
        if hours is not None and (engine != "exact" or sweep_):
            raise SimlatError("--hours: only with --engine exact and without --sweep (the quasi-static day is bounded per window instead)")
        if table is not None:
            if not sweep_:
                raise SimlatError("--table: writes the policy table of a sweep; add --sweep")
            check_table_file(table, "--table")
        if report_dir is not None:
            check_output_dir(report_dir, "--report-dir")
        exp = _with_overrides(load_experiment(experiment), set_)
        if sweep_:
            from simlat.autoscale.sweep import run_day_sweep

            def said(done: int, total: int) -> None:
                if not json_out:
                    typer.echo(f"policies simulated: {done}/{total}", err=True)

            swept = run_day_sweep(exp, window_s=window_s, workers=workers, progress=said,
                                  simulate=simulate_day_exact_result if engine == "exact" else simulate_day)
            best = swept.chosen if swept.chosen is not None else int(swept.table["compliance"].idxmax())
            result = swept.days[best]
        elif engine == "exact":
            result, _ = simulate_day_exact(exp, window_s=window_s, hours=hours)
        else:
            result = simulate_day(exp, window_s=window_s)
    except SimlatError as err:
        _fail(err)
    try:
        if out is not None:
            write_frame(result.windows, out, "--out")
        if table is not None and swept is not None:
            from simlat.autoscale.sweep import write_day_table

            write_day_table(swept.table, table)
    except OSError as err:
        _fail(SimlatError(f"cannot write {err.filename!r}: {err.strerror or err}"))
    report = None
    if report_dir is not None:
        from simlat.report.day import write_day_report

        try:
            report = write_day_report(result, exp, report_dir, swept)
        except OSError as err:
            _fail(SimlatError(f"--report-dir: cannot write {str(report_dir)!r}: {err.strerror or err}"))
    if json_out:
        import simlat

        meta = {"seed": exp.run.seed, "simlat_version": simlat.__version__}
        typer.echo(day_json(result, meta) if swept is None else sweep_json(swept, result, meta))
        return
    for line in day_lines(result, swept, f"p{exp.slo.percentile:g} <= {exp.slo.latency_ms:g} ms"):
        typer.echo(line)
    if out is not None:
        typer.echo(f"windows written to {out}")
    if table is not None:
        typer.echo(f"policies written to {table}")
    if report is not None:
        typer.echo(f"report written to {report}")


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
    from simlat.outputs import check_output_dir
    from simlat.sweep.executor import check_cluster_address
    from simlat.sweep.progress import SweepProgress
    from simlat.sweep.runner import run_sweep

    try:
        if not no_report:
            check_output_dir(reports, "--reports")
        if not no_cache:
            check_output_dir(cache_dir, "--cache-dir")
        if cluster is not None:
            check_cluster_address(cluster)
        exp = _with_overrides(load_experiment(experiment), set_)
        if exp.sweep is not None:  # the largest run each worker may hold at once
            from simlat.memory import ANNOUNCE_BYTES, describe, estimate_bytes
            from simlat.sweep.executor import default_workers

            per = estimate_bytes(exp, exp.sweep.max_requests)
            n = 1 if cluster else min(workers or default_workers(), exp.sweep.size)
            if per is not None and per * n > ANNOUNCE_BYTES:
                typer.echo(f"this sweep may need {describe(per * n)} of memory ({n} worker(s), up to "
                           f"{exp.sweep.max_requests:,} requests per run)", err=True)
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
    try:
        reports.mkdir(parents=True, exist_ok=True)
        html = write_report(result, exp, reports)
    except SimlatError as err:
        _fail(err)
    except OSError as err:
        _fail(SimlatError(f"--reports: cannot write the report under {str(reports)!r}: {err.strerror or err}"))
    typer.echo(f"report written to {html}")


@app.command()
def calibrate(
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    model: Annotated[str | None, typer.Option(help="Built-in name (mlp_ranker, dlrm_small, encoder_small; comma-separated or 'builtin' for all), a .pt/.ts/.pt2/.onnx file or package.module:factory.")] = None,
    out: Annotated[Path | None, typer.Option(help="Profile file to write, e.g. calibration/h100-cuda.json.")] = None,
    variants: Annotated[str | None, typer.Option(help="Comma-separated variants (default: all for the device).")] = None,
    batch_sizes: Annotated[str | None, typer.Option(help="Comma-separated batch sizes (default: powers of two per model).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (torch.set_num_threads, OMP/MKL, onnxruntime).")] = None,
    budget: Annotated[str, typer.Option(help="quick, normal, thorough or adaptive (batch sizes chosen where the curve needs them, samples until the median is known within 2%, 540 s limit unless --time-limit).")] = "normal",
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
    endpoint: Annotated[str | None, typer.Option(help="Measure a running inference endpoint from outside instead (open-loop probes), e.g. http://127.0.0.1:8000, and write a serving profile.")] = None,
    protocol: Annotated[str, typer.Option(help="With --endpoint: kserve_v2 (Triton, KServe) or json (plain JSON POST to the URL).")] = "kserve_v2",
    model_name: Annotated[str, typer.Option(help="With --endpoint: the served model's name (KServe v2 path).")] = "model",
    input_name: Annotated[str, typer.Option(help="With --endpoint: the input tensor's name.")] = "x",
    input: Annotated[str, typer.Option(help="With --endpoint: one request's input as DTYPE:SIZE.")] = "float32:512",
    metrics_url: Annotated[str | None, typer.Option(help="With --endpoint: the server's Prometheus metrics (Triton: http://host:8002/metrics).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="With --endpoint: the server's max batch size.")] = 1,
    max_wait_ms: Annotated[float, typer.Option(min=0.0, help="With --endpoint: the server's max batching delay (ms).")] = 0.0,
    model_profile: Annotated[str | None, typer.Option(help="With --endpoint: PATH:MODEL:VARIANT of the served model's calibration profile (the stack is fitted beyond it).")] = None,
    server_cmd: Annotated[str | None, typer.Option(help="With --endpoint: a shell command that starts the server; it is restarted between repeats.")] = None,
    start_rps: Annotated[float, typer.Option(min=0.1, help="With --endpoint: first rate of the capacity search.")] = 200.0,
    max_probes: Annotated[int, typer.Option(min=2, help="With --endpoint: most capacity probes.")] = 14,
    probe_s: Annotated[float, typer.Option(min=0.5, help="With --endpoint: seconds per probe.")] = 3.0,
    repeats: Annotated[int | None, typer.Option(min=1, help="With --endpoint: repeats of the latency-vs-rate probes (run-to-run spread; default 3). With --contention: windows per set (default 2).")] = None,
    max_lag_ms: Annotated[float, typer.Option(help="With --endpoint: a probe whose send-lag p99 exceeds this did not keep its schedule.")] = 1.0,
    campaign: Annotated[Path | None, typer.Option(help="Fit a serving profile from a saved endpoint campaign (.npz, e.g. measured on a GPU host with validate --measure-only) instead of measuring.")] = None,
    contention: Annotated[str | None, typer.Option(help="Measure the slowdown of instances sharing the device instead: model/variant@batch entries, comma-separated (e.g. mlp_ranker/bf16@32,dlrm_small/bf16@64), and write a contention profile.")] = None,
    instances: Annotated[str, typer.Option(help="With --contention: copies of each entry run at once.")] = "1,2,3,4",
    pairs: Annotated[bool, typer.Option("--pairs", help="With --contention: also every mixed pair of entries.")] = False,
    modes: Annotated[str, typer.Option(help="With --contention: processes (time slicing), mps (CUDA MPS), streams (CUDA streams of one process).")] = "processes,mps,streams",
    window_s: Annotated[float, typer.Option(help="With --contention: seconds per measuring window.")] = 3.0,
    source_profile: Annotated[str | None, typer.Option(help="With --contention: the model profile of the same device, recorded in the file.")] = None,
) -> None:
    """Measure a model's service times on this machine (or a Redis cache's with --cache, or a serving
    endpoint's with --endpoint) and write a profile."""
    from simlat.outputs import check_output_file

    try:
        if out is None:
            raise SimlatError("--out is required: the profile file to write, e.g. calibration/cpu.json")
        check_output_file(out, "--out", create_folder=True)
        if campaign is not None:
            from simlat.endpoint.command import profile_from_campaign

            profile_from_campaign(campaign, out, log=typer.echo)
            return
        if endpoint is not None:
            from simlat.endpoint.command import calibrate_endpoint

            calibrate_endpoint(endpoint, protocol=protocol, model_name=model_name, input_name=input_name,
                               input_spec=input, metrics_url=metrics_url, max_batch=max_batch, max_wait_ms=max_wait_ms,
                               model_profile=model_profile, server_cmd=server_cmd, start_rps=start_rps,
                               max_probes=max_probes, probe_s=probe_s, repeats=repeats or 3, out=out, max_lag_ms=max_lag_ms,
                               log=typer.echo)
            return
        if contention is not None:
            from simlat.calibrate.contention.command import contention as run_contention
            from simlat.calibrate.contention.command import summary_lines

            data = run_contention(device=device, spec=contention, out=out, instances=instances, pairs=pairs, modes=modes,
                                  window_s=window_s, repeats=repeats or 2, threads=threads, time_limit_s=time_limit,
                                  seq_len=seq_len, source_profile=source_profile, notes=note,
                                  log=(lambda _line: None) if quiet else (lambda line: typer.echo(line, err=True)))
            for line in summary_lines(data):
                typer.echo(line)
            typer.echo(f"contention profile written to {out}")
            return
        if cache is not None:
            from simlat.calibrate.redis import calibrate_redis

            redis_profile = calibrate_redis(cache, out=out, value_bytes=value_bytes, progress=not quiet, note=note or "")
            get, put = redis_profile.get, redis_profile.set
            typer.echo(f"GET p50 {get.p50_ms:.3f} ms, p99 {get.p99_ms:.3f} ms; SET p50 {put.p50_ms:.3f} ms, p99 {put.p99_ms:.3f} ms")
            if redis_profile.throughput is not None:
                tp = redis_profile.throughput
                typer.echo(f"throughput {tp.ops_per_s:,.0f} GET/s with {tp.clients} clients x {tp.pipeline} in flight"
                           + (" (client-bound: a lower bound)" if tp.client_bound else ""))
            for warning in redis_profile.warnings:
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
    if profile is None:  # written without the schema check (no pydantic here): nothing parsed to print
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "variant", "status", "p50 ms, smallest batch", "p50 ms, largest batch", "notes", title=str(out))
    for row in summary_rows(profile):
        table.add_row(*row)
    Console().print(table)
    typer.echo(f"profile written to {out} ({profile.provenance.device_name}, {profile.provenance.elapsed_s} s)")


profile_app = typer.Typer(no_args_is_help=True, help="Work with calibration profiles: merge two runs, describe one, project one onto another device, compare two, probe this machine.")
app.add_typer(profile_app, name="profile")

inside_app = typer.Typer(no_args_is_help=True, help="The first validation: simlat's own server measured from inside "
                         "(in-server timestamps): measure campaigns, replay them offline, print the table.")
app.add_typer(inside_app, name="validate-inside")
_PASS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _inside(module: str, ctx: typer.Context) -> None:
    import importlib

    try:
        importlib.import_module(f"simlat.validate.{module}").main(list(ctx.args))
    except SimlatError as err:
        _fail(err)


@inside_app.command("measure", context_settings=_PASS)
def inside_measure(ctx: typer.Context) -> None:
    """Measure campaigns (--device, --config MODEL:BATCH:WAIT, --loads, --out DIR); --help for all options."""
    _inside("measure", ctx)


@inside_app.command("replay", context_settings=_PASS)
def inside_replay(ctx: typer.Context) -> None:
    """Fit on the probes and compare the levels of saved campaigns: DIR [--slowdown ...] [--probes]."""
    _inside("replay", ctx)


@inside_app.command("report", context_settings=_PASS)
def inside_report(ctx: typer.Context) -> None:
    """The Markdown validation table of saved campaigns: DIR."""
    _inside("report", ctx)


@profile_app.command("merge")
def profile_merge(
    base: Annotated[Path, typer.Argument(help="The profile to merge into.")],
    other: Annotated[Path, typer.Argument(help="A second run on the same device, or a replica cold-start file (simlat validate --cold-start).")],
    out: Annotated[Path, typer.Option(help="Merged profile file to write.")],
    replace: Annotated[str, typer.Option(help="Comma-separated variants to take whole from OTHER.")] = "",
) -> None:
    """Merge a second calibration run of the same device, or measured replica cold starts, into a
    profile (device mismatches are refused)."""
    from simlat.calibrate.merge import merge
    from simlat.calibrate.replica_start import fold_cold_start, is_cold_start_file, read_cold_start
    from simlat.outputs import check_output_file
    from simlat.profiles.schema import load_profile, save_profile

    try:
        check_output_file(out, "--out", create_folder=True)
        if is_cold_start_file(other):
            merged, notes = fold_cold_start(load_profile(base), read_cold_start(other))
            for n in notes:
                typer.echo(n)
        else:
            merged = merge(load_profile(base), load_profile(other), {v for v in replace.split(",") if v})
        save_profile(merged, out)
    except SimlatError as err:
        _fail(err)
    except OSError as err:
        _fail(SimlatError(f"--out: cannot write {str(out)!r}: {err.strerror or err}"))
    typer.echo(f"merged profile written to {out}")


@profile_app.command("project")
def profile_project(
    source: Annotated[Path, typer.Argument(help="A measured service profile.")],
    out: Annotated[Path, typer.Option(help="Projected profile file to write.")],
    to: Annotated[str | None, typer.Option("--to", help="Target device from the device table (simlat/profiles/devices.py), e.g. h200, a100, l4, ci-cpu2.")] = None,
    probe: Annotated[Path | None, typer.Option(help="Instead of --to: a target measured by simlat profile probe (its JSON file; a GPU with --device cuda).")] = None,
    source_probe: Annotated[Path | None, typer.Option(help="A probe of the machine the source profile was measured on: the host ratio then compares probe with probe (a GPU's launch cost, a CPU's serialization components).")] = None,
    from_device: Annotated[str | None, typer.Option("--from", help="The source's device in the table, when its recorded device name does not say.")] = None,
    host_speed: Annotated[float | None, typer.Option(help="Target host CPU per-core speed relative to the source's (default: from the table).")] = None,
    uncertainty: Annotated[float | None, typer.Option(help="sd of log of the projection's error added to each point (default: 0.35 for a GPU, 2.0 for a CPU).")] = None,
    check: Annotated[Path | None, typer.Option(help="A profile measured on the target: print the projection's error against it, per model and variant.")] = None,
) -> None:
    """Project a measured profile onto a device it was not measured on (marked projected, with a wider uncertainty)."""
    from simlat.outputs import check_output_file
    from simlat.profiles.devices import device, from_probe
    from simlat.profiles.project import check_table, compare, project_file
    from simlat.profiles.schema import load_profile, save_profile

    try:
        if (to is None) == (probe is None):
            raise SimlatError("give the target either as --to DEVICE (the device table) or as --probe FILE (simlat profile probe), not both")
        if probe is not None:
            target = from_probe(_read_json(probe, "--probe"), str(probe))
        else:
            assert to is not None
            target = device(to)
        src = device(from_device) if from_device else None
        src_probe = from_probe(_read_json(source_probe, "--source-probe"), str(source_probe)) if source_probe is not None else None
        check_output_file(out, "--out", create_folder=True)
        command = "simlat profile project " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else f"simlat profile project --to {to or probe}"
        projected = project_file(source, target, source=src, host_speed=host_speed, sd_log=uncertainty, command=command,
                                 source_probe=src_probe)
        measured = load_profile(check, field="--check") if check is not None else None
        save_profile(projected, out)
    except SimlatError as err:
        _fail(err)
    except OSError as err:
        _fail(SimlatError(f"--out: cannot write {str(out)!r}: {err.strerror or err}"))
    prj = projected.provenance.projection
    assert prj is not None
    typer.echo(f"projected profile written to {out} ({projected.provenance.device_name}; host x{prj.host_ratio:g},"
               f" uncertainty sd(log) {prj.uncertainty_sd_log:g})")
    if measured is not None:
        typer.echo(check_table(compare(projected, measured)))


def _read_json(path: Path, option: str) -> dict:
    import json

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SimlatError(f"{option}: {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SimlatError(f"{option}: {str(path)!r} is not a JSON file: {err}") from None
    return data


@profile_app.command("probe")
def profile_probe(
    out: Annotated[Path, typer.Option(help="Probe result to write (JSON), for simlat profile project --probe.")],
    threads: Annotated[int | None, typer.Option(min=1, help="The threads the target will run with (default: torch's default here).")] = None,
    seconds: Annotated[float, typer.Option(min=1.0, max=120.0, help="About how long the probe runs.")] = 6.0,
    device: Annotated[str, typer.Option(help="cpu, or cuda to probe the GPU too (peaks, launch and round-trip costs).")] = "cpu",
) -> None:
    """Measure this machine as a projection target: CPU matmul rates (all threads and one), copy
    bandwidth, a tiny op's dispatch time and the serialization components (~5-10 s); with --device
    cuda also the GPU's peaks and its launch and round-trip costs (~10 s more)."""
    import json

    from simlat.outputs import check_output_file

    try:
        if device not in ("cpu", "cuda"):
            raise SimlatError(f"--device: {device!r} is not a device simlat probes: use cpu or cuda")
        check_output_file(out, "--out", create_folder=True)
        from simlat.calibrate.probe import run_probe

        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise SimlatError("--device cuda: torch sees no CUDA device on this machine")
        result = run_probe(threads, seconds=seconds, device=device)
        out.write_text(json.dumps(result, indent=1) + "\n")
    except SimlatError as err:
        _fail(err)
    except OSError as err:
        _fail(SimlatError(f"--out: cannot write {str(out)!r}: {err.strerror or err}"))
    mm = result["matmul_flops_per_s"]
    typer.echo(f"probe written to {out}: {result['device_name']}, {result['threads']} threads, fp32 {mm.get('fp32', 0) / 1e9:.0f} GFLOP/s,"
               f" copy {result['copy_bytes_per_s'] / 1e9:.1f} GB/s, tiny op {result['op_overhead_us']['threads']:.1f} us ({result['elapsed_s']} s)")
    if "gpu" in result:
        g = result["gpu"]
        typer.echo(f"  GPU {g['device_name']}: bf16 {g['matmul_flops_per_s'].get('bf16', 0) / 1e12:.0f} TFLOP/s, copy"
                   f" {g['copy_bytes_per_s'] / 1e9:.0f} GB/s, launch {g['launch_us']:.1f} us, op + sync {g['op_sync_us']:.1f} us,"
                   f" Linear + sync {g['linear_sync_us']:.1f} us")


@profile_app.command("compare")
def profile_compare(
    predicted: Annotated[Path, typer.Argument(help="The profile that predicts (usually projected).")],
    measured: Annotated[Path, typer.Argument(help="A profile measured on the device it predicts.")],
    table: Annotated[Path | None, typer.Option(help="Also write the comparison: .md (the table), .csv (one line per point) or .json.")] = None,
    condition: Annotated[str, typer.Option(help="steady (back-to-back) or idle curves.")] = "steady",
) -> None:
    """Compare two profiles point by point: per model and variant the median and worst error of the
    median per batch size, and how often the predicted 95% interval covers the measured median."""
    from simlat.outputs import check_output_file
    from simlat.profiles.accuracy import compare_profiles, markdown, write_table
    from simlat.profiles.schema import load_profile

    try:
        if table is not None:
            check_output_file(table, "--table", create_folder=True)
            if table.suffix.lower() not in (".md", ".csv", ".json"):
                raise SimlatError(f"--table: {str(table)!r} is invalid: the file must end in .md, .csv or .json")
        rows = compare_profiles(load_profile(predicted, field="PREDICTED"), load_profile(measured, field="MEASURED"),
                                condition=condition)
        title = f"{predicted.name} against {measured.name} ({condition})"
        if table is not None:
            write_table(rows, table, title)
    except SimlatError as err:
        _fail(err)
    except OSError as err:
        _fail(SimlatError(f"--table: cannot write {str(table)!r}: {err.strerror or err}"))
    typer.echo(markdown(rows, title))


@profile_app.command("describe")
def profile_describe(
    files: Annotated[list[Path], typer.Argument(help="Profile files.")],
) -> None:
    """Print what profiles say, as Markdown: latency vs batch size per variant, and the extremes."""
    from simlat.calibrate.describe import describe

    try:
        text = "\n".join(describe(str(f)) for f in files)
    except SimlatError as err:
        _fail(err)
    typer.echo(text)


@app.command()
def validate(
    experiment: Annotated[Path | None, typer.Argument(help="Experiment YAML file (its batching policy and model are served).")] = None,
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
    endpoint: Annotated[str | None, typer.Option(help="Validate against a server already running at this URL (measured from outside, KServe v2 or JSON).")] = None,
    server: Annotated[str | None, typer.Option(help="Start the server to validate, fresh for every repeat: triton (NVIDIA Triton, --tritonserver) or simlat (simlat's own).")] = None,
    tritonserver: Annotated[str | None, typer.Option(help="Path of the tritonserver binary (with --server triton).")] = None,
    variant: Annotated[str | None, typer.Option(help="Variant to serve (default: the experiment's).")] = None,
    server_cmd: Annotated[str | None, typer.Option(help="With --endpoint: a shell command that (re)starts the server for every repeat.")] = None,
    protocol: Annotated[str, typer.Option(help="With --endpoint: kserve_v2 or json.")] = "kserve_v2",
    model_name: Annotated[str, typer.Option(help="With --endpoint: the served model's name.")] = "model",
    input: Annotated[str, typer.Option(help="With --endpoint: one request's input as DTYPE:SIZE.")] = "float32:512",
    metrics_url: Annotated[str | None, typer.Option(help="With --endpoint: Prometheus metrics URL.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="With --endpoint/--server: repeats of every level (fresh server each).")] = 3,
    replay: Annotated[list[Path] | None, typer.Option(help="Compare saved campaigns (.npz) offline instead of measuring (repeatable).")] = None,
    measure_only: Annotated[bool, typer.Option("--measure-only", help="With --server/--endpoint: measure and save --out only (needs numpy, aiohttp and torch, not the simulator).")] = False,
    max_batch: Annotated[int | None, typer.Option(help="With --measure-only: the served max batch size.")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(help="With --measure-only: the served max wait (ms).")] = None,
    model_profile: Annotated[str | None, typer.Option(help="PATH:MODEL:VARIANT of the served model's profile (recorded for the fit).")] = None,
    instances: Annotated[int, typer.Option(min=1, max=16, help="With --server triton: model instances on the one device (instance_group count), sharing its GPU.")] = 1,
    cold_start: Annotated[str | None, typer.Option(help="With --server: measure the cold start of these variants instead (comma-separated): process start to first response, then the first --first requests against steady state; writes --out JSON.")] = None,
    predict_with: Annotated[Path | None, typer.Option(help="With --replay: predict every probe of the campaigns from this experiment (its fleet set to the campaign's instances on one GPU), fitting nothing on them.")] = None,
    first: Annotated[int, typer.Option(min=10, help="With --cold-start: requests measured after the first response (and again as the steady reference).")] = 1000,
    cold_rate: Annotated[float, typer.Option(min=1.0, help="With --cold-start: open-loop rate of those requests (req/s).")] = 500.0,
) -> None:
    """Run a real server under open-loop load and compare measured with predicted latency.

    With --endpoint or --server, the server is measured from outside only (simlat's serving-profile
    fit, prediction intervals, repeats with fresh servers); without them, simlat's own server is
    measured from inside (docs/validation.md).
    """
    import json

    try:
        if replay or endpoint or server:
            from simlat.endpoint.command import validate_cli

            validate_cli(experiment=experiment, loads=loads, model=model, device=device, level_s=level_s,
                         warmup_s=warmup_s, probe_s=probe_s, start_rps=start_rps, max_probes=max_probes,
                         max_lag_ms=max_lag_ms, json_out=json_out, out=out, endpoint=endpoint, server=server,
                         tritonserver=tritonserver, variant=variant, server_cmd=server_cmd, protocol=protocol,
                         model_name=model_name, input_spec=input, metrics_url=metrics_url, repeats=repeats,
                         replay=replay or [], measure_only=measure_only, max_batch=max_batch,
                         max_wait_ms=max_wait_ms, model_profile=model_profile, instances=instances,
                         cold_start=cold_start, first=first, cold_rate=cold_rate, predict_with=predict_with,
                         log=typer.echo)
            return
        if experiment is None:
            raise SimlatError("validate: name an experiment file (or --replay campaign.npz)")
        from simlat.config import load_experiment
        from simlat.validate.runner import validate as run_validate

        try:
            fractions = [float(x) for x in loads.split(",") if x.strip()]
        except ValueError:
            raise SimlatError(f"--loads: {loads!r} must be comma-separated fractions, e.g. 0.2,0.5,0.7,0.85") from None
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
        df = (compare_runs(data_a, data_b) if kind_a == "run"  # type: ignore[arg-type]
              else compare_sweeps(data_a, data_b))
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
