"""The bad-input corpus: every command, fed what a careless or hostile user would give it.

Each case asserts exit code 2, no traceback, and a message naming the culprit (the field, flag or
file). The commands run in-process through typer's CliRunner (fast); a few run as real
subprocesses to prove the exit code and the absence of a traceback end to end. Runs that get as far
as simulating are kept small.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simlat.cli import app

REPO = Path(__file__).resolve().parent.parent
PROFILE = REPO / "calibration" / "ci-cpu2.json"
H100 = REPO / "calibration" / "h100-cuda.json"

BASE = {
    "name": "corpus",
    "workload": {"arrivals": {"kind": "poisson", "rate_rps": 100.0}},
    "service": {"kind": "deterministic", "ms": 1.0},
    "slo": {"latency_ms": 10.0},
    "run": {"requests": 500},
}
SWEEP = {"grid": {"fleet.replicas": [1, 2]}, "cost_per_replica_hour": 1.0, "min_requests": 500, "max_requests": 1000,
         "rate_search": None}


def with_(data: dict, path: str, value) -> dict:
    """A copy of ``data`` with one dotted path set (``None`` as value deletes the key)."""
    out = copy.deepcopy(data)
    *parents, leaf = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return out


def profile_service(**over) -> dict:
    return {"kind": "profile", "path": str(PROFILE), "model": "mlp_ranker", "variant": "fp32", **over}


# Each case: (id, setup(tmp) -> argv, needles). ``setup`` writes what it needs under tmp.

def exp_case(data, *extra: str, text: str | None = None):
    def setup(tmp: Path) -> list[str]:
        p = tmp / "exp.yaml"
        p.write_text(text if text is not None else yaml.safe_dump(data))
        return ["simulate", str(p), *extra]
    return setup


def raw_case(content: bytes, name: str = "exp.yaml", command: str = "simulate"):
    def setup(tmp: Path) -> list[str]:
        p = tmp / name
        p.write_bytes(content)
        return [command, str(p)]
    return setup


def trace_case(content: bytes | None, **arrivals):
    def setup(tmp: Path) -> list[str]:
        if content is not None:
            (tmp / "t.csv").write_bytes(content)
        data = with_(BASE, "workload.arrivals", {"kind": "trace", "path": "t.csv", **arrivals})
        p = tmp / "exp.yaml"
        p.write_text(yaml.safe_dump(data))
        return ["simulate", str(p)]
    return setup


def profile_case(content: bytes | None, **service):
    def setup(tmp: Path) -> list[str]:
        path = PROFILE
        if content is not None:
            path = tmp / "prof.json"
            path.write_bytes(content)
        data = with_(BASE, "service", profile_service(**{"path": str(path), **service}))
        p = tmp / "exp.yaml"
        p.write_text(yaml.safe_dump(data))
        return ["simulate", str(p)]
    return setup


def sweep_case(sweep: dict | None, *extra: str, base: dict | None = None, reports_file: bool = False,
               cache_file: bool = False):
    def setup(tmp: Path) -> list[str]:
        data = copy.deepcopy(base or BASE)
        if sweep is not None:
            data["sweep"] = sweep
        p = tmp / "exp.yaml"
        p.write_text(yaml.safe_dump(data))
        argv = ["sweep", str(p), "--workers", "1", "-q"]
        if reports_file:
            (tmp / "reports").write_text("a file")
            argv += ["--reports", str(tmp / "reports")]
        else:
            argv += ["--reports", str(tmp / "rep")]
        if cache_file:
            (tmp / "cache").write_text("a file")
            argv += ["--cache-dir", str(tmp / "cache")]
        else:
            argv += ["--cache-dir", str(tmp / "c")]
        return [*argv, *extra]
    return setup


DAY_KPA = {"kind": "target_concurrency", "target": 2, "max_replicas": 4, "day_s": 120, "window_s": 60,
           "requests_per_window": 200}


def day_case(autoscaling: dict | None, *extra: str):
    def setup(tmp: Path) -> list[str]:
        data = copy.deepcopy(BASE)
        data["fleet"] = {"replicas": 1, **({"autoscaling": autoscaling} if autoscaling is not None else {})}
        p = tmp / "exp.yaml"
        p.write_text(yaml.safe_dump(data))
        return ["day", str(p), *[a.replace("{tmp}", str(tmp)) for a in extra]]
    return setup


def argv_case(*argv: str):
    def setup(tmp: Path) -> list[str]:
        return [a.replace("{tmp}", str(tmp)) for a in argv]
    return setup


def laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join(["*" + prev] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\nname: *i\n"


DUPLICATE = """\
name: dup
workload: {arrivals: {kind: poisson, rate_rps: 100, rate_rps: 2000}}
service: {kind: deterministic, ms: 1}
slo: {latency_ms: 10}
"""

PROFILE_LIST = b"[1, 2, 3]"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = [
    # --- the experiment file itself
    ("missing-file", argv_case("simulate", "{tmp}/nope.yaml"), ["nope.yaml", "no such file"]),
    ("a-directory", argv_case("simulate", "{tmp}"), ["is a directory"]),
    ("invalid-yaml", exp_case(None, text="name: x\nworkload: [unclosed\n"), ["invalid YAML", "line"]),
    ("non-utf8", raw_case(b"name: \xff\xfe\n"), ["not a UTF-8"]),
    ("top-level-list", exp_case(None, text="- 1\n- 2\n"), ["top level must be a mapping"]),
    ("empty-file", exp_case(None, text=""), ["top level must be a mapping"]),
    ("duplicate-key", exp_case(None, text=DUPLICATE), ["duplicate key 'rate_rps'"]),
    ("billion-laughs", exp_case(None, text=laughs()), ["expands to more than", "SIMLAT_MAX_YAML_NODES"]),
    ("unknown-top-key", exp_case(with_(BASE, "fleets", {"replicas": 2})), ["fleets", "unknown key"]),
    ("unknown-nested-key", exp_case(with_(BASE, "fleet.replica", 2)), ["fleet.replica", "unknown key"]),
    ("missing-name", exp_case(with_(BASE, "name", None)), ["name: required field is missing"]),
    ("name-traversal", exp_case(with_(BASE, "name", "../../x")), ["name: '../../x'", "plain file name"]),
    ("name-absolute", exp_case(with_(BASE, "name", "/tmp/x")), ["name: '/tmp/x'", "plain file name"]),
    ("replicas-bool", exp_case(with_(BASE, "fleet.replicas", True)), ["fleet.replicas", "not the boolean true"]),
    ("replicas-zero", exp_case(with_(BASE, "fleet.replicas", 0)), ["fleet.replicas", "greater than 0"]),
    ("replicas-text", exp_case(with_(BASE, "fleet.replicas", "many")), ["fleet.replicas", "'many'"]),
    ("balancer-unknown", exp_case(with_(BASE, "fleet.balancer", "psychic")), ["fleet.balancer", "'psychic'"]),
    ("gpus-and-replicas-disagree", exp_case(with_(with_(BASE, "fleet.gpus", 2), "fleet.replicas", 3)),
     ["fleet", "replicas: 3 must equal gpus x instances_per_gpu"]),
    ("instances-per-gpu-without-contention", exp_case(with_(BASE, "fleet", {"gpus": 1, "instances_per_gpu": 2})),
     ["fleet", "contention: required when instances_per_gpu is 2"]),
    ("contention-file-absent", exp_case(with_(BASE, "fleet", {"gpus": 1, "instances_per_gpu": 2, "contention": {
        "path": "absent.json", "model": "m", "variant": "v"}})),
     ["fleet.contention.path", "absent.json", "not found"]),
    ("contention-not-a-contention-profile", exp_case(with_(BASE, "fleet", {"gpus": 1, "instances_per_gpu": 2, "contention": {
        "path": str(H100), "model": "m", "variant": "v"}})),
     ["is a service profile, expected a contention profile"]),
    ("colocated-separate-without-gpus", exp_case(with_(with_(BASE, "fleet.contention", {"path": "c.json"}), "colocated", {
        "placement": "separate", "tenants": {"ads": {k: BASE[k] for k in ("workload", "service", "slo")}}})),
     ["colocated", "tenants.ads.gpus: required with placement: separate"]),
    ("rate-inf", exp_case(with_(BASE, "workload.arrivals.rate_rps", float("inf"))), ["workload.arrivals.rate_rps", "finite"]),
    ("rate-negative", exp_case(with_(BASE, "workload.arrivals.rate_rps", -5)), ["workload.arrivals.rate_rps", "-5"]),
    ("rate-1e-300", exp_case(with_(BASE, "workload.arrivals.rate_rps", 1e-300)), ["workload.arrivals", "years of simulated time"]),
    ("service-nan", exp_case(with_(BASE, "service.ms", float("nan"))), ["service.ms", "finite"]),
    ("service-mean-inf", exp_case(with_(BASE, "service", {"kind": "exponential", "mean_ms": float("inf")})), ["service.mean_ms", "finite"]),
    ("kind-missing", exp_case(with_(BASE, "workload.arrivals", {"rate_rps": 5})), ["workload.arrivals.kind", "one of: poisson", "closed_loop"]),
    ("kind-unknown", exp_case(with_(BASE, "workload.arrivals", {"kind": "poison", "rate_rps": 5})), ["workload.arrivals", "'poison'", "'poisson'"]),
    ("service-kind-missing", exp_case(with_(BASE, "service", {"ms": 1})), ["service.kind", "one of: deterministic"]),
    ("items-zero", exp_case(with_(BASE, "workload.items_per_request", 0)), ["workload.items_per_request: 0", "greater than 0"]),
    ("items-text", exp_case(with_(BASE, "workload.items_per_request", "lots")), ["workload.items_per_request", "'lots'", "expected"]),
    ("hit-ratio-1.5", exp_case(with_(BASE, "cache", {"hit_ratio": {"l1": 1.5}})), ["cache.hit_ratio.l1: 1.5", "less than or equal to 1"]),
    ("seed-negative", exp_case(with_(BASE, "run.seed", -1)), ["run.seed: -1", "greater than or equal to 0"]),
    ("requests-1e30", exp_case(with_(BASE, "run.requests", 1e30)), ["run.requests"]),
    ("requests-one", exp_case(with_(BASE, "run.requests", 1)), ["run.requests: 1 is invalid", "at least 100"]),
    ("too-few-arrivals", exp_case(with_(with_(BASE, "run", {"duration_s": 0.1}), "workload.arrivals.rate_rps", 1.0)), ["run.duration_s: 0.1 s", "0 request(s)"]),
    ("frontend-no-arrivals", exp_case(with_(with_(with_(BASE, "run", {"duration_s": 0.1}), "workload.arrivals.rate_rps", 1.0), "frontend", {"kind": "event_loop"})), ["run.duration_s", "0 request(s)"]),
    ("warmup-one", exp_case(with_(BASE, "run.warmup_fraction", 1)), ["run.warmup_fraction", "less than 1"]),
    ("slo-percentile-100", exp_case(with_(BASE, "slo.percentile", 100)), ["slo.percentile", "less than 100"]),
    ("max-wait-negative", exp_case(with_(BASE, "batching", {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": -1})), ["batching.max_wait_ms", "-1"]),
    ("buckets-unsorted", exp_case(with_(BASE, "batching", {"kind": "dynamic", "max_batch_size": 8, "max_wait_ms": 1, "buckets": [4, 2]})), ["batching", "strictly increasing"]),
    ("adaptive-order", exp_case(with_(BASE, "batching", {"kind": "adaptive", "max_batch_size": 8, "min_wait_ms": 3, "max_wait_ms": 1})), ["min_wait_ms (3.0) must be <= max_wait_ms"]),
    ("mmpp-lengths", exp_case(with_(BASE, "workload.arrivals", {"kind": "mmpp", "rates_rps": [1, 2], "mean_durations_s": [1, 2, 3]})), ["workload.arrivals", "same length"]),
    ("rate-curve-narrow", exp_case(with_(BASE, "workload.arrivals", {"kind": "rate_curve", "points": [[0, 100], [1e-10, 200], [2e-10, 100]]})), ["workload.arrivals", "longer than a nanosecond"]),
    ("rate-curve-backwards", exp_case(with_(BASE, "workload.arrivals", {"kind": "rate_curve", "points": [[0, 100], [2, 200], [1, 100]]})), ["workload.arrivals", "increasing"]),
    ("cache-capacity-zero", exp_case(with_(with_(BASE, "cache", {"l1": {"capacity": 0}}), "workload.keys", {"kind": "zipf"})), ["cache.l1.capacity", "greater than 0"]),
    ("trace-keys-without-column", exp_case(with_(BASE, "workload.keys", {"kind": "trace"})), ["keys.kind 'trace'", "key_column"]),
    ("memory-over-cap", exp_case(with_(BASE, "run.requests", 900_000_000)), ["run.max_memory_gb", "GB of memory"]),
    ("memory-cap-text", exp_case(with_(BASE, "run.max_memory_gb", "lots")), ["run.max_memory_gb", "'lots'"]),
    # --- traces
    ("trace-missing", trace_case(None), ["t.csv"]),
    ("trace-etc-passwd", argv_case(), []),  # replaced below (needs the file's first line)
    ("trace-non-utf8", trace_case(b"timestamp\n1.0\n\xff\xfe\n3.0\n", unit="s"), ["t.csv", "not UTF-8 text"]),
    ("trace-unsorted", trace_case(b"timestamp\n0.0\n1.0\n0.5\n2.0\n", unit="s"), ["t.csv", "0.5"]),
    ("trace-empty", trace_case(b"timestamp\n", unit="s"), ["t.csv", "empty"]),
    ("trace-no-column", trace_case(b"time\n0.0\n1.0\n", unit="s"), ["workload.arrivals.column", "'timestamp'", "'time'"]),
    # --- profiles
    ("profile-missing", profile_case(None, path="/nonexistent/prof.json"), ["service.path", "prof.json"]),
    ("profile-non-utf8", profile_case(b'{"schema_version": 1, "x": "\xff"}'), ["prof.json", "UTF-8"]),
    ("profile-bad-json", profile_case(b'{"schema_version": '), ["prof.json", "invalid JSON"]),
    ("profile-not-object", profile_case(PROFILE_LIST), ["prof.json", "not a simlat profile"]),
    ("profile-unknown-model", profile_case(None, model="gpt9"), ["service.model: 'gpt9'", "ci-cpu2.json", "mlp_ranker"]),
    ("profile-unknown-variant", profile_case(None, variant="fp128"), ["service.variant: 'fp128'", "ci-cpu2.json"]),
    ("profile-unknown-component", profile_case(None, add_components=["warp_drive"]), ["service.add_components: 'warp_drive'"]),
    # --- simulate flags
    ("flag-seed-negative", exp_case(BASE, "--seed", "-1"), ["--seed", "greater than or equal to 0"]),
    ("flag-requests-zero", exp_case(BASE, "--requests", "0"), ["--requests", "greater than or equal"]),
    ("flag-requests-few", exp_case(BASE, "--requests", "5"), ["run.requests: 5 is invalid", "at least 100"]),
    ("flag-records-missing-folder", exp_case(BASE, "--records", "/nonexistent-folder/r.parquet"), ["--records", "does not exist"]),
    ("flag-records-onto-folder", argv_case(), []),  # replaced below
    # --- sweep
    ("sweep-no-block", sweep_case(None), ["has no sweep block"]),
    ("sweep-grid-too-large", sweep_case({"grid": {"fleet.replicas": list(range(1, 101)), "run.seed": list(range(200))}}), ["20,000 configurations", "sweep.max_configs"]),
    ("sweep-unknown-path", sweep_case({**SWEEP, "grid": {"fleet.replica": [1, 2]}}), ["sweep.grid.fleet.replica", "unknown key"]),
    ("sweep-bad-value", sweep_case({**SWEEP, "grid": {"fleet.replicas": [1, -2]}}), ["sweep.grid.fleet.replicas[1]", "-2"]),
    ("sweep-empty-values", sweep_case({**SWEEP, "grid": {"fleet.replicas": []}}), ["fleet.replicas", "at least one value"]),
    ("sweep-min-over-max", sweep_case({**SWEEP, "min_requests": 5000, "max_requests": 1000}), ["min_requests (5000) must be <= max_requests (1000)"]),
    ("sweep-objective", sweep_case({**SWEEP, "objective": "max_fun"}), ["sweep.objective", "'max_fun'"]),
    ("sweep-no-price", sweep_case({"grid": {"fleet.replicas": [1, 2]}, "min_requests": 500, "max_requests": 1000}), ["price"]),
    ("sweep-reports-is-file", sweep_case(SWEEP, reports_file=True), ["--reports", "is a file"]),
    ("sweep-cache-dir-is-file", sweep_case(SWEEP, cache_file=True), ["--cache-dir", "is a file"]),
    ("sweep-cluster-malformed", sweep_case(SWEEP, "--cluster", "tcp://host:notaport"), ["--cluster", "not a scheduler address"]),
    ("sweep-cluster-port-range", sweep_case(SWEEP, "--cluster", "tcp://127.0.0.1:99999"), ["--cluster", "not a scheduler address"]),
    ("sweep-cluster-nothing-listening", argv_case(), []),  # replaced below (needs a free port)
    ("sweep-workers-zero", sweep_case(SWEEP, "--workers", "0"), ["--workers"]),
    # --- calibrate (all refused before any worker starts)
    ("calibrate-no-out", argv_case("calibrate", "--model", "mlp_ranker"), ["--out is required"]),
    ("calibrate-no-model", argv_case("calibrate", "--out", "{tmp}/p.json"), ["--model is required"]),
    ("calibrate-factory-missing", argv_case("calibrate", "--model", "nosuchpkg:make", "--input-shape", "4", "--out", "{tmp}/p.json"), ["--model", "'nosuchpkg'", "cannot be imported"]),
    ("calibrate-batch-huge", argv_case("calibrate", "--model", "mlp_ranker", "--batch-sizes", "1000000000000", "--out", "{tmp}/p.json"), ["--batch-sizes", "too large"]),
    ("calibrate-batch-text", argv_case("calibrate", "--model", "mlp_ranker", "--batch-sizes", "one,two", "--out", "{tmp}/p.json"), ["--batch-sizes", "'one,two'"]),
    ("calibrate-out-folder", argv_case("calibrate", "--model", "mlp_ranker", "--out", "{tmp}"), ["--out", "is a folder"]),
    ("calibrate-out-not-json", argv_case("calibrate", "--model", "mlp_ranker", "--out", "{tmp}/p.yaml"), ["--out", ".json"]),
    ("calibrate-device", argv_case("calibrate", "--model", "mlp_ranker", "--device", "tpu", "--out", "{tmp}/p.json"), ["--device: 'tpu'"]),
    ("calibrate-unknown-model", argv_case("calibrate", "--model", "resnet9000", "--out", "{tmp}/p.json"), ["'resnet9000' is not a known model"]),
    ("calibrate-budget", argv_case("calibrate", "--model", "mlp_ranker", "--budget", "lavish", "--out", "{tmp}/p.json"), ["--budget: 'lavish'"]),
    ("calibrate-threads", argv_case("calibrate", "--model", "mlp_ranker", "--threads", "0", "--out", "{tmp}/p.json"), ["--threads: 0"]),
    ("calibrate-model-file-missing", argv_case("calibrate", "--model", "{tmp}/m.onnx", "--out", "{tmp}/p.json"), ["m.onnx", "is not a file"]),
    # --- profile merge / describe
    ("describe-missing", argv_case("profile", "describe", "{tmp}/none.json"), ["none.json", "is not a profile file"]),
    ("describe-not-json", raw_case(b"not json", name="p.json", command="profile describe"), ["p.json", "invalid JSON"]),
    ("merge-device-differs", argv_case("profile", "merge", str(PROFILE), str(H100), "--out", "{tmp}/m.json"), ["device differs"]),
    ("merge-out-folder", argv_case("profile", "merge", str(PROFILE), str(PROFILE), "--out", "{tmp}"), ["--out", "is a folder"]),
    ("merge-missing-other", argv_case("profile", "merge", str(PROFILE), "{tmp}/o.json", "--out", "{tmp}/m.json"), ["o.json", "is not a profile file"]),
    # --- day (autoscaling policies and their sweep)
    ("day-min-over-max", day_case({**DAY_KPA, "min_replicas": 5}), ["fleet.autoscaling", "min_replicas (5) must be <= max_replicas (4)"]),
    ("day-target-zero", day_case({**DAY_KPA, "target": 0}), ["fleet.autoscaling.target", "greater than 0"]),
    ("day-utilization-target-over-1", day_case({**DAY_KPA, "kind": "target_utilization", "target": 1.5}),
     ["fleet.autoscaling", "target: 1.5 is a utilisation", "(0, 1]"]),
    ("day-schedule-gap", day_case({"kind": "schedule", "replicas": [[6, 1]], "max_replicas": 2}),
     ["fleet.autoscaling", "starts at hour 6", "must start at hour 0 to cover the day"]),
    ("day-panic-threshold-one", day_case({**DAY_KPA, "panic_threshold": 1.0}), ["fleet.autoscaling", "panic_threshold: 1 must be > 1"]),
    ("day-scale-down-rate-one", day_case({**DAY_KPA, "max_scale_down_rate": 0.5}), ["fleet.autoscaling", "max_scale_down_rate: 0.5 must be > 1"]),
    ("day-panic-window-over-stable", day_case({**DAY_KPA, "panic_window_s": 90}),
     ["fleet.autoscaling", "panic_window_s: 90 must be <= stable_window_s (60)"]),
    ("day-hpa-metric-unknown", day_case({**DAY_KPA, "kind": "target_utilization", "target": 0.5, "metric": "cpu"}),
     ["fleet.autoscaling.metric", "'cpu'"]),
    ("day-sweep-unknown-field", day_case({**DAY_KPA, "sweep": {"grid": {"targett": [1, 2]}}}),
     ["fleet.autoscaling", "sweep.grid.targett: not a field of a 'target_concurrency' policy"]),
    ("day-sweep-invalid-point", day_case({**DAY_KPA, "sweep": {"grid": {"min_replicas": [1, 9]}}}),
     ["fleet.autoscaling", "sweep.grid: the policy min_replicas=9 is invalid", "must be <= max_replicas (4)"]),
    ("day-sweep-empty-values", day_case({**DAY_KPA, "sweep": {"grid": {"target": []}}}), ["fleet.autoscaling.sweep", "grid.target: needs at least one value"]),
    ("day-sweep-compliance-zero", day_case({**DAY_KPA, "sweep": {"grid": {"target": [1]}, "compliance_target": 0}}),
     ["fleet.autoscaling.sweep.compliance_target", "greater than 0"]),
    ("day-sweep-absent", day_case(DAY_KPA, "--sweep"), ["fleet.autoscaling.sweep: absent"]),
    ("day-table-without-sweep", day_case(DAY_KPA, "--table", "{tmp}/t.csv"), ["--table", "add --sweep"]),
    ("day-table-suffix", day_case({**DAY_KPA, "sweep": {"grid": {"target": [1]}}}, "--sweep", "--table", "{tmp}/t.txt"),
     ["--table", "t.txt", "must end in .parquet, .csv, .json"]),
    ("day-report-dir-is-file", day_case(DAY_KPA, "--report-dir", "{tmp}/exp.yaml"), ["--report-dir", "is a file"]),
    # --- validate (refused before any server starts)
    ("validate-missing", argv_case("validate", "{tmp}/none.yaml"), ["none.yaml", "no such file"]),
    ("validate-loads-text", argv_case("validate", "{tmp}/none.yaml", "--loads", "half,most"), ["--loads", "'half,most'"]),
    ("validate-no-model", exp_case(BASE), []),  # replaced below
]


def _passwd_case(tmp: Path) -> list[str]:
    secret = "root:x:0:0:" + "s3cr3t-looking-first-line-" * 4 + ":/root:/bin/bash\n"
    (tmp / "passwd").write_text(secret + "daemon:x:1:1\n")
    data = with_(BASE, "workload.arrivals", {"kind": "trace", "path": str(tmp / "passwd")})
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(data))
    return ["simulate", str(p)]


def _records_onto_folder(tmp: Path) -> list[str]:
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    return ["simulate", str(p), "--records", str(tmp)]


def _cluster_nothing_listening(tmp: Path) -> list[str]:
    return sweep_case(SWEEP, "--cluster", f"tcp://127.0.0.1:{_closed_port()}")(tmp)


def _validate_no_model(tmp: Path) -> list[str]:
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    return ["validate", str(p)]


_REPLACED = {
    "trace-etc-passwd": (_passwd_case, ["workload.arrivals.column", "'timestamp'", "available columns"]),
    "flag-records-onto-folder": (_records_onto_folder, ["--records", "is a folder"]),
    "sweep-cluster-nothing-listening": (_cluster_nothing_listening, ["--cluster", "nothing is listening"]),
    "validate-no-model": (_validate_no_model, ["model"]),
}
CASES = [(cid, *_REPLACED[cid]) if cid in _REPLACED else (cid, setup, needles) for cid, setup, needles in CASES]


def invoke(argv: list[str]):
    if argv and argv[0] == "profile describe":  # raw_case's command with a space
        argv = ["profile", "describe", *argv[1:]]
    return CliRunner().invoke(app, argv, catch_exceptions=True)


@pytest.mark.parametrize(("setup", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_message(tmp_path, setup, needles):
    argv = setup(tmp_path)
    result = invoke(argv)
    text = result.output
    assert result.exit_code == 2, (result.exit_code, text, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


def test_corpus_size():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def test_a_path_field_quotes_at_most_a_short_excerpt(tmp_path):
    """A path field pointing at some other readable file must not echo its first line."""
    result = invoke(_passwd_case(tmp_path))
    assert result.exit_code == 2
    assert "s3cr3t-looking-first-line-" * 2 not in result.output
    assert ":/root:/bin/bash" not in result.output


def test_cluster_with_nothing_listening_fails_fast(tmp_path):
    t0 = time.monotonic()
    result = invoke(_cluster_nothing_listening(tmp_path))
    assert result.exit_code == 2 and "nothing is listening" in result.output
    assert time.monotonic() - t0 < 15  # it took 20 s; a refused connection is answered at once


def test_output_paths_are_checked_before_the_run(tmp_path, monkeypatch):
    """A bad --records or --reports is reported before any simulation starts."""
    import simlat.api
    import simlat.sweep.runner

    def boom(*a, **k):
        raise AssertionError("the simulation started")

    monkeypatch.setattr(simlat.api, "run", boom)
    monkeypatch.setattr(simlat.sweep.runner, "run_sweep", boom)
    assert invoke(_records_onto_folder(tmp_path)).exit_code == 2
    assert invoke(sweep_case(SWEEP, reports_file=True)(tmp_path)).exit_code == 2


@pytest.mark.parametrize("which", ["experiment", "profile", "trace"])
def test_unreadable_file(tmp_path, monkeypatch, which):
    """Permission denied (simulated: the tests may run as root, whom permissions do not stop)."""
    import builtins
    import pathlib

    setup = {"experiment": exp_case(BASE), "profile": profile_case(b"{}"), "trace": trace_case(b"timestamp\n1\n2\n")}
    argv = setup[which](tmp_path)
    target = {"experiment": "exp.yaml", "profile": "prof.json", "trace": "t.csv"}[which]
    real_read_text, real_open = pathlib.Path.read_text, builtins.open

    def denied(path):
        if str(path).endswith(target):
            raise PermissionError(13, "Permission denied", str(path))

    def read_text(self, *a, **k):
        denied(self)
        return real_read_text(self, *a, **k)

    def open_(file, *a, **k):
        denied(file)
        return real_open(file, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    monkeypatch.setattr(builtins, "open", open_)
    result = invoke(argv)
    assert result.exit_code == 2, (result.output, result.exception)
    assert target in result.output and "Permission denied" in result.output


# --- end to end, as real processes: exit code 2, nothing on stdout, no traceback

SUBPROCESS_CASES = ["non-utf8", "seed-negative", "flag-records-missing-folder", "name-traversal",
                    "sweep-cluster-malformed", "calibrate-factory-missing"]


@pytest.mark.parametrize("cid", SUBPROCESS_CASES)
def test_bad_input_end_to_end(tmp_path, cid):
    setup, needles = next(c[1:] for c in CASES if c[0] == cid)
    argv = setup(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "simlat.cli", *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for needle in needles:
        assert needle in proc.stderr


# --- inputs that used to crash now run

def _run_cli(tmp_path: Path, data: dict) -> dict:
    import json

    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(data))
    result = invoke(["simulate", str(p), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


@pytest.mark.parametrize("cache", [{"l1": {"capacity": 100}}, {"l1": {"capacity": 100}, "hit_ratio": {"l1": 0.5}}],
                         ids=["all-hits", "fixed-ratio"])
def test_frontend_with_a_cache_runs(tmp_path, cache):
    data = with_(BASE, "workload.keys", {"kind": "zipf", "exponent": 1.0, "key_space": 50})
    data["cache"] = cache
    data["frontend"] = {"kind": "event_loop", "ingress_ms": {"kind": "constant", "value": 0.1},
                        "reply_ms": {"kind": "constant", "value": 0.05}}
    out = _run_cli(tmp_path, data)
    assert out["completed"] == out["requests"]
    # a request answered by the cache still pays the loop's ingress and reply
    assert out["p50_ms"] >= 0.15 - 1e-9


def test_a_run_at_exactly_capacity_is_never_stable(tmp_path):
    data = with_(BASE, "workload.arrivals.rate_rps", 1000.0)
    for seed in range(3):
        out = _run_cli(tmp_path, with_(with_(data, "run.seed", seed), "run.requests", 5000))
        assert out["stable"] is False and out["p99_ms"] is None


def test_cache_entry_copied_over_another_key_is_not_trusted(tmp_path):
    from simlat.config import parse_experiment
    from simlat.sweep.runner import run_sweep

    exp = parse_experiment({**BASE, "sweep": {**SWEEP, "grid": {"fleet.replicas": [1, 3]}}})
    first = run_sweep(exp, cache_dir=tmp_path, workers=1, details=False)
    files = sorted((tmp_path / "corpus").glob("*.parquet"))
    assert len(files) == 2
    files[1].write_bytes(files[0].read_bytes())  # a valid file, under the other configuration's key
    again = run_sweep(exp, cache_dir=tmp_path, workers=1, details=False)
    assert again.cached_configs == 1
    assert again.points.sort_values("config_id")["max_rate_rps"].tolist() == pytest.approx(
        first.points.sort_values("config_id")["max_rate_rps"].tolist(), nan_ok=True)


def test_a_large_run_says_what_it_needs_before_it_starts(tmp_path, monkeypatch):
    import simlat.memory
    from simlat.config import parse_experiment
    from simlat.memory import estimate_bytes

    exp = parse_experiment(BASE)
    assert estimate_bytes(exp, 10_000_000) == pytest.approx(2.2e9, rel=0.1)  # measured: about 190 B per request
    cached = parse_experiment({**BASE, "workload": {**BASE["workload"], "keys": {"kind": "zipf"}},
                               "cache": {"l1": {"capacity": 10}}})
    assert estimate_bytes(cached, 10_000_000) > estimate_bytes(exp, 10_000_000)
    monkeypatch.setattr(simlat.memory, "ANNOUNCE_BYTES", 1000)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    result = invoke(["simulate", str(p), "--json"])
    assert result.exit_code == 0
    assert "this run needs about 0.0 GB of memory" in result.stderr


def test_every_cap_can_be_raised(tmp_path, monkeypatch):
    from simlat.config import load_experiment, parse_experiment
    from simlat.errors import SimlatError
    from simlat.memory import check_memory

    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv("SIMLAT_MAX_YAML_NODES", "5")
    with pytest.raises(SimlatError, match="expands to more than 5 values"):
        load_experiment(p)
    monkeypatch.setenv("SIMLAT_MAX_YAML_NODES", "100")
    assert load_experiment(p).name == "corpus"
    big = {"grid": {"fleet.replicas": list(range(1, 101)), "run.seed": list(range(200))}}
    assert parse_experiment({**BASE, "sweep": {**big, "max_configs": 20_000}}).sweep.size == 20_000
    huge = with_(BASE, "run.requests", 900_000_000)
    with pytest.raises(SimlatError, match="run.max_memory_gb"):
        check_memory(parse_experiment(huge))
    assert check_memory(parse_experiment(with_(huge, "run.max_memory_gb", 1000))) > 1e11


def test_an_unexpected_exception_in_one_configuration_does_not_abort_the_sweep(monkeypatch):
    import simlat.sweep.search as search_mod
    from simlat.config import parse_experiment
    from simlat.sweep.runner import run_sweep

    real = search_mod._search
    calls = []

    def flaky(task):
        calls.append(task.config_id)
        if len(calls) == 1:
            raise IndexError("index -1 is out of bounds for axis 0 with size 0")
        return real(task)

    monkeypatch.setattr(search_mod, "_search", flaky)
    result = run_sweep(parse_experiment({**BASE, "sweep": SWEEP}), cache_dir=None, workers=1, details=False)
    notes = result.points["note"].tolist()
    assert len(notes) == 2 and sum(n.startswith("error: internal error in simlat") for n in notes) == 1
