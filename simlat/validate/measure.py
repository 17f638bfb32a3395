"""Drive the real server with the real load generator: capacity search and measured load levels.

Everything here runs real processes on loopback: the server (:mod:`simlat.validate.server`) and,
for every load level, a fresh load-generator process (:mod:`simlat.validate.loadgen`), each pinned
to its own CPUs where the machine has enough. Needs numpy, aiohttp and msgpack (no pydantic), so it
runs on a machine that has torch but not the simulator.

A level's result is one flat per-request table (client and server timestamps joined on the request
id) plus the batch table, the CPU seconds of the server's event-loop and model threads, and the
validity checks of :func:`check_level`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np

from simlat.launch import module_command

INPUT_SPEC = {"mlp_ranker": "float32:512", "encoder_small": "int64:64"}
"""What one request carries, per built-in model."""

MAX_LAG_P99_MS = 1.0
"""A level whose send lag p99 exceeds this could not keep its schedule: invalid."""


@dataclass(frozen=True)
class ServerSpec:
    """What the server serves and how it batches."""

    model: str
    device: str = "cpu"
    max_batch: int = 1
    max_wait_ms: float = 0.0
    dispatch: str = "on_free"
    threads: int = 1

    @property
    def label(self) -> str:
        """Short name of the configuration, e.g. ``mlp_ranker b32 w0.0 on_free``."""
        return f"{self.model} b{self.max_batch} w{self.max_wait_ms:g} {self.dispatch}"


def split_cpus() -> tuple[str, str]:
    """CPU sets for the server and the load generator: disjoint halves of what this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "", ""
    if len(cpus) >= 8:  # server: loop thread + model thread (+1 spare); one core per generator process
        return ",".join(map(str, cpus[1:4])), ",".join(map(str, cpus[4:7]))
    half = len(cpus) // 2
    return ",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:]))


class LiveServer:
    """A running server process (context manager): started, warmed, ready, and stopped on exit."""

    def __init__(self, spec: ServerSpec, cpus: str = "", start_timeout_s: float = 180.0):
        self.spec = spec
        cmd = module_command("simlat.validate.server", "--model", spec.model, "--device", spec.device,
                             "--max-batch", str(spec.max_batch), "--max-wait-ms", str(spec.max_wait_ms),
                             "--dispatch", spec.dispatch, "--threads", str(spec.threads))
        if cpus:
            cmd += ["--cpus", cpus]
        # stderr goes to a file: a pipe nobody reads fills up and blocks the server
        self._log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.monotonic() + start_timeout_s
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY") or not line and self.proc.poll() is not None:
                break
        if not line.startswith("READY"):
            self.proc.kill()
            self._log.seek(0)
            err = self._log.read()[-2000:]
            raise RuntimeError(f"validation server did not become ready: {err}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def get(self, path: str) -> dict:
        """GET a msgpack route."""
        with urllib.request.urlopen(self.url + path, timeout=120) as r:
            return msgpack.unpackb(r.read(), strict_map_key=False)

    def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until no request is in flight (a previous overloaded run may leave a backlog)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=10) as r:
                    if int(r.read()) == 0:
                        return True
            except OSError:  # busy with a backlog: ask again
                pass
            time.sleep(0.2)
        return False

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(self.url + "/shutdown", method="POST"), timeout=5).read()
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - the process is killed below whatever went wrong
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def poisson_arrivals(rate_rps: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrival times (s) on [0, duration_s)."""
    n = int(rate_rps * duration_s * 1.2) + 20
    t = np.cumsum(rng.exponential(1.0 / rate_rps, size=n))
    while t[-1] < duration_s:
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate_rps, size=n))])
    return t[t < duration_s]


@dataclass
class LevelRun:
    """One open-loop run at one offered rate: per-request and per-batch tables and checks."""

    rate_rps: float
    duration_s: float
    warmup_s: float
    req: dict[str, np.ndarray]
    batch: dict[str, np.ndarray]
    loop_cpu_s: float
    model_cpu_s: float
    loadgen_cpu_s: float
    loadavg: float
    checks: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain JSON-able form (lists)."""
        return {"rate_rps": self.rate_rps, "duration_s": self.duration_s, "warmup_s": self.warmup_s,
                "req": {k: np.asarray(v).tolist() for k, v in self.req.items()},
                "batch": {k: np.asarray(v).tolist() for k, v in self.batch.items()},
                "loop_cpu_s": self.loop_cpu_s, "model_cpu_s": self.model_cpu_s,
                "loadgen_cpu_s": self.loadgen_cpu_s, "loadavg": self.loadavg, "checks": self.checks}

    @classmethod
    def from_json(cls, d: dict) -> LevelRun:
        """Inverse of :meth:`to_json`."""
        return cls(d["rate_rps"], d["duration_s"], d["warmup_s"],
                   {k: np.asarray(v, dtype=float) for k, v in d["req"].items()},
                   {k: np.asarray(v, dtype=float) for k, v in d["batch"].items()},
                   d["loop_cpu_s"], d["model_cpu_s"], d["loadgen_cpu_s"], d["loadavg"], d.get("checks", {}))

    def kept(self) -> np.ndarray:
        """Mask of requests after the warm-up (by scheduled time)."""
        s = self.req["sched"]
        return s >= s[0] + self.warmup_s if len(s) else np.zeros(0, bool)

    def latency_ms(self) -> np.ndarray:
        """Client-observed latency (reply received - request sent) of kept, successful requests."""
        m = self.kept() & (self.req["ok"] > 0)
        return (self.req["recv"][m] - self.req["sent"][m]) * 1e3


def run_level(server: LiveServer, rate_rps: float, duration_s: float, warmup_s: float, *,
              input_spec: str, loadgen_cpus: str, seed: int, max_s: float | None = None,
              max_lag_ms: float = MAX_LAG_P99_MS) -> LevelRun:
    """Replay Poisson arrivals at ``rate_rps`` for ``duration_s`` through fresh generator processes.

    One generator process per CPU in ``loadgen_cpus`` (one process when empty), each sending a
    random share of the arrivals (a random split of a Poisson process is Poisson), so the
    generator's own event loop is never the bottleneck that the server is measured against.
    """
    server.drain()
    time.sleep(0.3)  # let the model go idle, as it is before any run
    server.get("/trace")  # discard whatever the server recorded before
    t0 = server.get("/trace")
    rng = np.random.default_rng(seed)
    arr = poisson_arrivals(rate_rps, duration_s, rng)
    n = len(arr)
    cpus = loadgen_cpus.split(",") if loadgen_cpus else [""]
    share = rng.integers(0, len(cpus), size=n)
    loadavg = os.getloadavg()[0]
    limit = max_s or duration_s * 3 + 10
    req = {k: np.full(n, np.nan) for k in ("sched", "sent", "recv", "ok")}
    cpu_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        start_at = time.perf_counter() + 1.0 + 0.3 * len(cpus)  # every generator starts at the same instant
        for g, cpu in enumerate(cpus):
            np.save(Path(tmp) / f"arr{g}.npy", arr[share == g])
            cmd = module_command("simlat.validate.loadgen", "--url", server.url, "--arrivals",
                                 str(Path(tmp) / f"arr{g}.npy"), "--input", input_spec, "--out", str(Path(tmp) / f"rec{g}.npz"),
                                 "--max-s", str(limit), "--start-at", repr(start_at), "--id-offset", "0")
            if cpu:
                cmd += ["--cpus", cpu]
            np.save(Path(tmp) / f"ids{g}.npy", np.flatnonzero(share == g))
            cmd += ["--ids", str(Path(tmp) / f"ids{g}.npy")]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for g, pr in enumerate(procs):
            _, err = pr.communicate(timeout=limit + 60)
            if pr.returncode != 0:
                raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
            rec = dict(np.load(Path(tmp) / f"rec{g}.npz"))
            sel = share == g
            for k in ("sched", "sent", "recv", "ok"):
                req[k][sel] = rec[k].astype(float)
            cpu_s += float(rec["cpu_s"])
    server.drain()
    tr = server.get("/trace")
    sreq = {k: np.asarray(v, dtype=float) for k, v in tr["req"].items()}
    idx = sreq["rid"].astype(int)
    good = (idx >= 0) & (idx < n)
    for k in ("t_handler", "t_enq", "batch_id", "t_resume", "t_replied"):
        col = np.full(n, np.nan)
        col[idx[good]] = sreq[k][good]
        req[k] = col
    batch = {k: np.asarray(v, dtype=float) for k, v in tr["batch"].items()}
    run = LevelRun(rate_rps, duration_s, warmup_s, req, batch, tr["loop_cpu_s"] - t0["loop_cpu_s"],
                   tr["model_cpu_s"] - t0["model_cpu_s"], cpu_s, loadavg)
    run.checks = check_level(run, max_lag_ms)
    return run


def check_level(run: LevelRun, max_lag_ms: float = MAX_LAG_P99_MS) -> dict:
    """Validity of one run: did the generator keep its schedule, did every request succeed, and
    did the server keep up (throughput vs offered, backlog at the end)?"""
    r = run.req
    kept = run.kept()
    lag = (r["sent"] - r["sched"]) * 1e3
    lag_k = lag[kept & np.isfinite(lag)]
    lat = (r["recv"] - r["sent"]) * 1e3
    done = np.isfinite(r["recv"]) & (r["ok"] > 0)
    n = len(r["sched"])
    span = (r["sched"][-1] - r["sched"][0]) if n > 1 else 1.0
    tput = float(np.sum(done & (r["recv"] <= r["sched"][-1]))) / max(span, 1e-9)
    q = max(1, n // 4)
    first = np.nanmedian(lat[:q]) if n else np.nan
    last = np.nanmedian(lat[-q:]) if n else np.nan
    c = {
        "requests": int(n),
        "failed": int(n - done.sum()),
        "lag_p50_ms": float(np.percentile(lag_k, 50)) if len(lag_k) else float("nan"),
        "lag_p99_ms": float(np.percentile(lag_k, 99)) if len(lag_k) else float("nan"),
        "lag_max_ms": float(np.max(lag_k)) if len(lag_k) else float("nan"),
        "throughput_rps": tput,
        "offered_rps": n / max(span, 1e-9),
        "latency_trend": float(last / first) if first and np.isfinite(first) else float("nan"),
        "loadavg_before": run.loadavg,
    }
    c["kept_schedule"] = bool(c["lag_p99_ms"] <= max_lag_ms)
    c["max_lag_ms"] = max_lag_ms
    c["complete"] = c["failed"] == 0
    c["stable"] = bool(c["complete"] and tput >= 0.97 * c["offered_rps"] and c["latency_trend"] < 3.0)
    c["valid"] = bool(c["kept_schedule"] and c["complete"])
    return c


def find_capacity(server: LiveServer, *, input_spec: str, loadgen_cpus: str, start_rps: float,
                  step: float = 1.5, probe_s: float = 3.0, max_probes: int = 11, seed: int = 100,
                  max_lag_ms: float = MAX_LAG_P99_MS, log=print) -> tuple[float, list[LevelRun]]:
    """Open-loop capacity: the highest Poisson rate at which a ``probe_s`` run keeps up.

    Rates grow geometrically by ``step`` until a run is unstable, then two bisection probes refine
    the boundary. Returns the capacity and every probe run (the frontend is calibrated from these,
    not from the validation levels).
    """
    probes: list[LevelRun] = []
    good, bad = 0.0, None
    rate = start_rps
    for i in range(max_probes):
        run = run_level(server, rate, probe_s, min(0.5, probe_s / 4), input_spec=input_spec,
                        loadgen_cpus=loadgen_cpus, seed=seed + i, max_s=probe_s * 2 + 5, max_lag_ms=max_lag_ms)
        probes.append(run)
        log(f"  probe {rate:8.0f} rps: stable={run.checks['stable']} tput={run.checks['throughput_rps']:.0f} "
            f"trend={run.checks['latency_trend']:.2f} lag_p99={run.checks['lag_p99_ms']:.2f}ms")
        if run.checks["stable"]:
            good = rate
            if bad is None:
                rate *= step
                continue
        else:
            bad = rate
        if bad is not None:
            if len(probes) >= max_probes or (good > 0 and bad / good < 1.08):
                break
            rate = (good + bad) / 2 if good > 0 else bad / step
    return good, probes


def machine_info(device: str) -> dict:
    """Where the measurements were taken."""
    info = {"cpus": len(os.sched_getaffinity(0)), "python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception as err:  # noqa: BLE001 - provenance only
        info["torch_error"] = str(err)
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return info


def campaign(spec: ServerSpec, loads: list[float], *, level_s: float, warmup_s: float, start_rps: float,
             probe_s: float = 3.0, seed: int = 0, max_probes: int = 11, max_lag_ms: float = MAX_LAG_P99_MS,
             log=print) -> dict:
    """Everything for one configuration: start the server, find capacity, measure each load level.

    Returns a JSON-able dict: spec, machine, server profile, capacity, probe runs and level runs.
    """
    server_cpus, gen_cpus = split_cpus()
    input_spec = INPUT_SPEC[spec.model]
    t_start = time.monotonic()
    with LiveServer(spec, server_cpus) as srv:
        profile = srv.get("/profile")
        log(f"{spec.label}: server ready in {time.monotonic() - t_start:.1f}s; finding open-loop capacity")
        cap, probes = find_capacity(srv, input_spec=input_spec, loadgen_cpus=gen_cpus, start_rps=start_rps,
                                    probe_s=probe_s, seed=seed + 1000, max_probes=max_probes,
                                    max_lag_ms=max_lag_ms, log=log)
        levels = []
        for j, frac in enumerate(loads):
            run = run_level(srv, frac * cap, level_s, warmup_s, input_spec=input_spec, loadgen_cpus=gen_cpus,
                            seed=seed + j, max_lag_ms=max_lag_ms)
            lat = run.latency_ms()
            log(f"  load {frac:.2f} ({frac * cap:.0f} rps): p50 {np.percentile(lat, 50):.2f} ms "
                f"p99 {np.percentile(lat, 99):.2f} ms valid={run.checks['valid']}")
            levels.append({"load": frac, **run.to_json()})
    return {"spec": spec.__dict__, "label": spec.label, "machine": machine_info(spec.device),
            "server_cpus": server_cpus, "loadgen_cpus": gen_cpus, "profile": profile,
            "capacity_rps": cap, "probes": [p.to_json() for p in probes], "levels": levels,
            "wall_s": time.monotonic() - t_start}


def _pack(col: str, v: np.ndarray, base: float) -> np.ndarray:
    """Times as int64 microseconds from ``base`` (missing: INT64 min); other columns as int64."""
    if col in TIME_COLS:
        out = np.full(len(v), np.iinfo(np.int64).min, dtype=np.int64)
        ok = np.isfinite(v)
        out[ok] = np.round((v[ok] - base) * 1e6).astype(np.int64)
        return out
    return np.nan_to_num(v, nan=-1).astype(np.int64)


def _unpack(col: str, v: np.ndarray, base: float) -> np.ndarray:
    if col in TIME_COLS:
        out = v.astype(float) / 1e6 + base
        out[v == np.iinfo(np.int64).min] = np.nan
        return out
    return v.astype(float)


TIME_COLS = {"sched", "sent", "recv", "t_handler", "t_enq", "t_resume", "t_replied", "t_dispatch",
             "t_model_start", "t_model_end", "t_back"}
"""Columns holding clock readings (stored as microseconds from the run's first scheduled send)."""


def save(result: dict, path: str | Path) -> None:
    """Write a campaign result: JSON metadata plus every per-request/per-batch column, in one .npz."""
    arrays: dict[str, np.ndarray] = {}
    meta = dict(result)
    for group in ("probes", "levels"):
        runs = []
        for j, run in enumerate(result[group]):
            r = dict(run)
            base = 0.0
            for table in ("req", "batch"):
                cols = r.pop(table)
                base = float(np.nanmin(cols["sched"])) if table == "req" and len(cols["sched"]) else base
                for col, v in cols.items():
                    arrays[f"{group}.{j}.{table}.{col}"] = _pack(col, np.asarray(v, dtype=float), base)
                r["time_base_s"] = base
            runs.append(r)
        meta[group] = runs
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | Path) -> dict:
    """Read what :func:`save` wrote (the same dict, with numpy columns)."""
    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    for group in ("probes", "levels"):
        for j, run in enumerate(meta[group]):
            for table in ("req", "batch"):
                pre = f"{group}.{j}.{table}."
                base = run.get("time_base_s", 0.0)
                run[table] = {k[len(pre):]: _unpack(k[len(pre):], z[k], base) for k in z.files if k.startswith(pre)}
    return meta


def parse_config(text: str, device: str) -> ServerSpec:
    """``model:max_batch:max_wait_ms[:dispatch]`` -> :class:`ServerSpec`."""
    parts = text.split(":")
    return ServerSpec(model=parts[0], device=device, max_batch=int(parts[1]), max_wait_ms=float(parts[2]),
                      dispatch=parts[3] if len(parts) > 3 else "on_free")


def main(argv: list[str] | None = None) -> None:
    """Measure several configurations in one go and write one ``.npz`` per configuration.

    Example: ``python -m simlat.validate.measure --device cuda --config mlp_ranker:32:0
    --config encoder_small:8:2 --out results/``.
    """
    import argparse

    p = argparse.ArgumentParser(description="Measure the real server under open-loop load.")
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", action="append", required=True, help="model:max_batch:max_wait_ms[:dispatch]")
    p.add_argument("--loads", default="0.2,0.5,0.7,0.85")
    p.add_argument("--level-s", type=float, default=12.0)
    p.add_argument("--warmup-s", type=float, default=2.0)
    p.add_argument("--probe-s", type=float, default=3.0)
    p.add_argument("--start-rps", type=float, default=300.0)
    p.add_argument("--budget-s", type=float, default=540.0, help="start no configuration after this many seconds")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    loads = [float(x) for x in args.loads.split(",")]
    t0 = time.monotonic()
    for k, text in enumerate(args.config):
        if time.monotonic() - t0 > args.budget_s:
            print(f"budget spent: skipping {text}", flush=True)
            continue
        spec = parse_config(text, args.device)
        res = campaign(spec, loads, level_s=args.level_s, warmup_s=args.warmup_s, start_rps=args.start_rps,
                       probe_s=args.probe_s, seed=1000 * k, log=lambda m: print(m, flush=True))
        save(res, out / f"{spec.model}_b{spec.max_batch}_w{spec.max_wait_ms:g}_{spec.dispatch}.npz")
        print(f"{spec.label}: capacity {res['capacity_rps']:.0f} rps, {res['wall_s']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
