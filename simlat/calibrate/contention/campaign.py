"""Running a contention campaign: workers that stay up, the sets in order, one mode after another.

Per mode and per repeat, for each member: its alone window (k = 1), then its k-copy sets; then
the mixed sets (their members' alone windows were measured earlier in the same repeat). Repeats
are the outer loop, so a run cut short by its time limit keeps every set at fewer repeats rather
than losing sets. ``processes`` and ``streams`` share the same worker processes (streams run in
the first); ``mps`` starts its own under the MPS daemon, after the others have exited.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simlat.calibrate.contention import gpu, mps, overlap
from simlat.calibrate.contention.spec import MeasureSet, Member
from simlat.calibrate.models import resolve_model
from simlat.errors import SimlatError
from simlat.launch import module_command

LEAD_S = 0.3
"""Between sending a run and its start time: every worker has its command by then (and keeps its
instance busy until the start, so all start warm and already contending)."""

START_TIMEOUT_S = 180.0
LOAD_TIMEOUT_S = 300.0


class WorkerLost(Exception):
    """A worker died, timed out or answered with an error; the message says which and why."""


class _Worker:
    """A measuring process: commands in on stdin, ``@@reply`` lines out, stderr to a log file."""

    def __init__(self, device: str, env: dict, logdir: Path, threads: int | None):
        self.err = Path(tempfile.mkstemp(dir=logdir, suffix=".stderr")[1])
        args = ["--device", device] + (["--threads", str(threads)] if threads else [])
        self.proc = subprocess.Popen(module_command("simlat.calibrate.contention.worker", *args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err.open("w"), text=True, env=env)
        self.q: queue.Queue = queue.Queue()
        self.loaded: set[str] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@reply "):
                self.q.put(json.loads(line[8:]))
        self.q.put(None)

    def tail(self) -> str:
        """The end of its stderr."""
        try:
            lines = [x for x in self.err.read_text(errors="replace").splitlines() if x.strip()]
        except OSError:
            return ""
        return " | ".join(lines[-4:])[-500:]

    def send(self, msg: dict) -> None:
        """Write one command (a dead worker raises :class:`WorkerLost`)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except OSError as err:
            raise WorkerLost(f"worker exited (code {self.proc.poll()}): {self.tail()}") from err

    def recv(self, timeout_s: float) -> dict:
        """The next reply; a timeout kills the worker. Raises :class:`WorkerLost` unless it says ok."""
        try:
            reply = self.q.get(timeout=timeout_s)
        except queue.Empty:
            self.kill()
            raise WorkerLost(f"worker gave no answer within {timeout_s:.0f} s (killed)") from None
        if reply is None:
            code = self.proc.wait(timeout=10)
            raise WorkerLost(f"worker exited (code {code}): {self.tail()}")
        if not reply.get("ok"):
            raise WorkerLost(str(reply.get("error")))
        return reply

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill it now."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """Ask it to quit; kill it if it does not within 20 s."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except (WorkerLost, OSError):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Settings:
    """How a campaign measures."""

    device: str
    window_s: float = 3.0
    repeats: int = 2
    warmup_s: float = 2.0
    threads: int | None = None
    time_limit_s: float | None = None
    seq_len: int = 64


@dataclass
class Results:
    """What a campaign measured: records per (mode, member) alone and per (mode, set) together
    (only the batches that ran together), by repeat; failures; notes."""

    alone: dict[tuple[str, Member], dict[int, np.ndarray]] = field(default_factory=dict)
    together: dict[tuple[str, MeasureSet], dict[int, list[np.ndarray]]] = field(default_factory=dict)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (mode, set or member label) -> reason
    unavailable: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    clocks: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (mode, alone|together) -> SM MHz


class Campaign:
    """Runs the sets of every mode (see the module docstring)."""

    def __init__(self, settings: Settings, members: list[Member], sets: list[MeasureSet], log: Callable[[str], None]):
        self.s, self.members, self.sets, self.log = settings, members, sets, log
        self.res = Results()
        self.t0 = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="simlat-contention-"))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if settings.threads:
            env.update(OMP_NUM_THREADS=str(settings.threads), MKL_NUM_THREADS=str(settings.threads))
        root = Path(__file__).resolve().parents[3]
        env["PYTHONPATH"] = os.pathsep.join(x for x in [str(root), env.get("PYTHONPATH", "")] if x)
        self.env = env
        self.workers: list[_Worker] = []
        self.out_of_time = False
        self.skipped_windows = 0

    # -- time -------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the campaign started."""
        return time.monotonic() - self.t0

    def _time_left(self, need_s: float) -> bool:
        if self.s.time_limit_s is None:
            return True
        if self.elapsed() + need_s > self.s.time_limit_s:
            self.out_of_time = True
        return not self.out_of_time

    # -- workers ----------------------------------------------------------------------------
    def _close_workers(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    def _worker(self, i: int, env: dict) -> _Worker:
        while len(self.workers) <= i:
            self.workers.append(_Worker(self.s.device, env, self.tmp, self.s.threads))
        if not self.workers[i].alive():
            self.workers[i] = _Worker(self.s.device, env, self.tmp, self.s.threads)
        return self.workers[i]

    def _load(self, pairs: list[tuple[_Worker, Member, int]]) -> list[str]:
        """Load ``(worker, member, copy)`` instances in parallel; their keys."""
        keys, pending = [], []
        for w, m, copy in pairs:
            key = f"{m.label}#{copy}"
            keys.append(key)
            if key in w.loaded:
                continue
            ref = resolve_model(m.model, seq_len=self.s.seq_len)
            w.send({"cmd": "load", "key": key, "model": ref.to_json(), "variant": m.variant, "batch_size": m.batch_size,
                    "copy": copy, "warmup_s": self.s.warmup_s})
            pending.append((w, key, m))
        errors = []
        for w, key, m in pending:
            try:
                rep = w.recv(LOAD_TIMEOUT_S)
            except WorkerLost as err:
                errors.append(f"{m.label}: {err}")
                continue
            w.loaded.add(key)
            if not rep.get("steady", True):
                self._note(f"{m.label}: timings not steady after {rep.get('calls')} warm-up calls")
        if errors:
            raise WorkerLost("; ".join(errors))
        return keys

    def _note(self, text: str) -> None:
        if text not in self.res.notes:
            self.res.notes.append(text)

    def _window(self, runs: list[tuple[_Worker, list[str]]], streams: bool, clocks: list[float] | None = None) -> list[np.ndarray]:
        """One measuring window: each worker runs its keys from a common start; the records, in order.
        On cuda the SM clock is read once, in the middle of the window, into ``clocks``."""
        start_ns = time.monotonic_ns() + int(LEAD_S * 1e9)
        outs = []
        for j, (w, keys) in enumerate(runs):
            out = self.tmp / f"w{j}-{time.monotonic_ns()}.npz"
            outs.append((w, out, len(keys)))
            w.send({"cmd": "run", "keys": keys, "start_ns": start_ns, "window_s": self.s.window_s, "streams": streams,
                    "out": str(out)})
        if clocks is not None and self.s.device == "cuda":
            time.sleep(max(start_ns / 1e9 + self.s.window_s / 2 - time.monotonic(), 0.0))
            mhz = gpu.sm_clock_mhz()
            if mhz is not None:
                clocks.append(mhz)
        records: list[np.ndarray] = []
        errors = []
        for w, out, n in outs:
            try:
                w.recv(LEAD_S + self.s.window_s + 120.0)
            except WorkerLost as err:
                errors.append(str(err))
                continue
            with np.load(out) as z:
                records += [z[f"r{i}"] for i in range(n)]
            out.unlink()
        if errors:
            raise WorkerLost("; ".join(errors))
        return records

    # -- the campaign -----------------------------------------------------------------------
    def env_info(self) -> dict:
        """Start the first worker and read the device's provenance (refuses cuda without a GPU)."""
        w = self._worker(0, self.env)
        w.send({"cmd": "env"})
        try:
            info = w.recv(START_TIMEOUT_S)
        except WorkerLost as err:
            self.close()
            raise SimlatError(f"could not start a measuring process: {err}") from err
        if self.s.device == "cuda" and not info.get("cuda_available"):
            self.close()
            raise SimlatError(f"--device cuda: no CUDA GPU is visible here (torch {info.get('torch', '?')} reports none)")
        self.res.env = info
        return info

    def close(self) -> None:
        """Let every worker exit and remove the campaign's temporary folder."""
        self._close_workers()
        if self.tmp.exists():
            for p in self.tmp.glob("*"):
                p.unlink(missing_ok=True)
            self.tmp.rmdir()

    def run(self, modes: list[str]) -> Results:
        """Measure every mode in ``modes`` (processes and streams first, mps last)."""
        try:
            if not self.res.env:
                self.env_info()
            order = [m for m in ("processes", "streams", "mps") if m in modes]
            for mode in order:
                if mode == "streams" and self.s.device != "cuda":
                    self.res.unavailable.append({"mode": "streams", "reason": "CUDA streams need --device cuda"})
                    continue
                if mode == "mps":
                    self._close_workers()
                    self._run_mps()
                    continue
                self._run_mode(mode, self.env)
        finally:
            self.close()
        if self.skipped_windows:
            self._note(f"the time limit ({self.s.time_limit_s:g} s) was spent: {self.skipped_windows} measuring windows not run")
        return self.res

    def _run_mps(self) -> None:
        if self.s.device != "cuda":
            self.res.unavailable.append({"mode": "mps", "reason": "MPS needs --device cuda"})
            return
        if not self._time_left(self.s.window_s):
            self.res.unavailable.append({"mode": "mps", "reason": "not measured: the time limit was spent"})
            return
        try:
            daemon = mps.start()
        except mps.MpsUnavailable as err:
            self.res.unavailable.append({"mode": "mps", "reason": str(err)})
            self.log(f"mps: unavailable: {err}")
            return
        self.log("mps: control daemon started")
        try:
            ok = self._run_mode("mps", daemon.env, daemon=daemon)
            if not ok:
                tail = daemon.log_tail()
                if tail:
                    self._note(f"mps logs: {tail}")
        finally:
            self._close_workers()
            problem = daemon.stop()
            if problem:
                self._note(problem)
            self.log("mps: control daemon stopped")

    def _preload(self, mode: str, env: dict) -> None:
        """Start every worker the mode needs and load every instance at once, in parallel (CUDA
        start-up and model builds overlap); a failure here is left to the set that needs it."""
        plan: dict[tuple[int, str], tuple[_Worker, Member, int]] = {}
        for s in self.sets:
            for j, m in enumerate(s.members):
                w = self._worker(0 if mode == "streams" else j, env)
                copy = j if mode == "streams" else 0
                plan.setdefault((id(w), f"{m.label}#{copy}"), (w, m, copy))
        t0 = time.monotonic()
        try:
            self._load(list(plan.values()))
        except WorkerLost as err:
            self.log(f"{mode}: loading failed (each set retries): {err}")
            if mode == "mps":
                self.res.failed[("mps", "loading")] = str(err)
        self.log(f"[{self.elapsed():6.1f} s] {mode}: {len(plan)} instances loaded in {time.monotonic() - t0:.1f} s")

    def _run_mode(self, mode: str, env: dict, daemon: mps.MpsDaemon | None = None) -> bool:
        """All repeats of one mode; whether anything was measured."""
        measured_any = False
        if not self._time_left(self.s.window_s + LEAD_S):
            self.res.unavailable.append({"mode": mode, "reason": "not measured: the time limit was spent"})
            return False
        self._preload(mode, env)
        if mode == "mps" and not any(w.loaded for w in self.workers):
            tail = daemon.log_tail() if daemon is not None else ""
            self.res.unavailable.append({"mode": "mps", "reason": f"no instance could be loaded under MPS {tail}".strip()})
            return False
        mixed = [s for s in self.sets if len(set(s.members)) > 1]
        for r in range(self.s.repeats):
            for m in self.members:
                if self._alone(mode, m, r, env):
                    measured_any = True
                    if daemon is not None and r == 0 and m is self.members[0]:
                        try:
                            servers = daemon.query("get_server_list")
                        except (OSError, subprocess.SubprocessError) as err:
                            servers = None
                            self._note(f"mps: the daemon did not answer get_server_list ({type(err).__name__})")
                        if servers == "":
                            self.res.unavailable.append({"mode": "mps", "reason": "the measuring processes ran, but the MPS "
                                                         "daemon lists no server: they did not run under MPS"})
                            return False
                        if servers:
                            self._note(f"mps: measured under an MPS server (pid {servers.split()[0]})")
                for s in self.sets:
                    if s.members[0] == m and s.k > 1 and len(set(s.members)) == 1:
                        self._together(mode, s, r, env)
            for s in mixed:
                self._together(mode, s, r, env)
            if not measured_any and self.out_of_time:
                self.res.unavailable.append({"mode": mode, "reason": "not measured: the time limit was spent"})
                return False
            if mode == "mps" and not measured_any:
                reasons = sorted({v for (md, _), v in self.res.failed.items() if md == "mps"})
                reason = "; ".join(reasons)[:500] or "nothing could be measured"
                tail = daemon.log_tail() if daemon is not None else ""
                self.res.unavailable.append({"mode": "mps", "reason": f"{reason} {tail}".strip()})
                return False
        return measured_any

    def _alone(self, mode: str, m: Member, r: int, env: dict) -> bool:
        if (mode, m.label) in self.res.failed:
            return False
        if not self._time_left(self.s.window_s + LEAD_S):
            self.skipped_windows += 1
            return False
        try:
            w = self._worker(0, env)
            keys = self._load([(w, m, 0)])
            rec = self._window([(w, keys)], streams=mode == "streams", clocks=self.res.clocks.setdefault((mode, "alone"), []))[0]
        except WorkerLost as err:
            self.res.failed[(mode, m.label)] = str(err)
            self.log(f"[{self.elapsed():6.1f} s] {mode} {m.label} alone: failed: {err}")
            return False
        self.res.alone.setdefault((mode, m), {})[r] = rec
        ms = overlap.durations_ms(rec)
        mean = f"mean {ms.mean():.4g} ms" if ms.size else "no batches"
        self.log(f"[{self.elapsed():6.1f} s] {mode} repeat {r + 1}/{self.s.repeats} {m.label} alone: {ms.size} batches, {mean}")
        return True

    def _together(self, mode: str, s: MeasureSet, r: int, env: dict) -> None:
        if (mode, s.label) in self.res.failed or any((mode, m.label) in self.res.failed for m in s.members):
            return
        if any(r not in self.res.alone.get((mode, m), {}) for m in set(s.members)):
            return  # an alone window of this repeat was not measured: no slowdown to compare with
        if not self._time_left(self.s.window_s + LEAD_S):
            self.skipped_windows += 1
            return
        try:
            if mode == "streams":
                w = self._worker(0, env)
                keys = self._load([(w, m, j) for j, m in enumerate(s.members)])
                recs = self._window([(w, keys)], streams=True, clocks=self.res.clocks.setdefault((mode, "together"), []))
            else:
                ws = [self._worker(j, env) for j in range(s.k)]
                keys = self._load([(w, m, 0) for w, m in zip(ws, s.members, strict=True)])
                recs = self._window([(w, [k]) for w, k in zip(ws, keys, strict=True)], streams=False,
                                    clocks=self.res.clocks.setdefault((mode, "together"), []))
        except WorkerLost as err:
            self.res.failed[(mode, s.label)] = str(err)
            self.log(f"[{self.elapsed():6.1f} s] {mode} {s.label}: failed: {err}")
            return
        tog = overlap.together(recs)
        if any(t.shape[0] == 0 for t in tog):
            self._note(f"{mode} {s.label} repeat {r + 1}: some member ran no batch while all were measuring (window too short?)")
            return
        self.res.together.setdefault((mode, s), {})[r] = tog
        means = ", ".join(f"{overlap.durations_ms(t).mean():.4g}" for t in tog)
        self.log(f"[{self.elapsed():6.1f} s] {mode} repeat {r + 1}/{self.s.repeats} {s.label}: together means {means} ms")
