"""Running the tasks of a calibration, each in its own worker process, within a time limit.

Each task gets a share of the remaining time in proportion to its weight (compiling variants
weigh more); its worker paces its batch sizes to fit that share (every size gets measured, with
fewer samples if need be), stops starting new sizes shortly before it would be killed, at about
twice its share (later tasks' shares shrink to make up) (what it measured so far is kept: the worker rewrites its result file after each
batch size). On cuda the next worker is started while the current one measures, so importing
torch and initialising CUDA overlap the measurement (on cpu it is not, to keep the cores quiet).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simlat.calibrate.budget import Budget
from simlat.calibrate.plan import Task

NO_LIMIT_TASK_S = 1800.0
"""Deadline of one task when the run has no time limit."""


@dataclass
class Outcome:
    """A task and what its worker returned (a ``status: skipped`` dict with the reason on failure)."""

    task: Task
    result: dict


class _Pool:
    """Worker processes started ahead of need (at most one waiting)."""

    def __init__(self, device: str, env: dict, prespawn: bool):
        self.device, self.env, self.prespawn = device, env, prespawn
        self.waiting: tuple[subprocess.Popen, float, Path] | None = None

    def _spawn(self, logdir: Path) -> tuple[subprocess.Popen, float, Path]:
        err = Path(tempfile.mkstemp(dir=logdir, suffix=".stderr")[1])
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlat.calibrate.worker", "--device", self.device],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err.open("w"), text=True, env=self.env,
        )
        return proc, time.time(), err

    def take(self, logdir: Path, more: bool):
        """A started worker; starts the next one when ``more`` tasks follow and prespawning is on."""
        got = self.waiting or self._spawn(logdir)
        self.waiting = self._spawn(logdir) if (self.prespawn and more) else None
        return got

    def close(self) -> None:
        """Let a waiting worker exit (it reads an empty task)."""
        if self.waiting:
            proc = self.waiting[0]
            try:
                proc.stdin.close()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
            self.waiting = None


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        if line.startswith("@@progress"):
            q.put(line.split(" ", 1)[1].strip())
    q.put(None)


def _tail(path: Path, n: int = 6) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


def run_tasks(
    tasks: list[Task],
    *,
    budget: Budget,
    threads: int | None,
    time_limit_s: float | None,
    on_progress: Callable[[Task, str], None],
    on_task_done: Callable[[Task, int], None],
) -> list[Outcome]:
    """Run ``tasks`` in order, one worker process each; returns one outcome per task."""
    device = tasks[0].device
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(x for x in [str(root), env.get("PYTHONPATH", "")] if x)
    t_end = time.time() + time_limit_s if time_limit_s else None
    pool = _Pool(device, env, prespawn=device == "cuda")
    outcomes: list[Outcome] = []
    fixed = 1.0 if device == "cuda" else 3.0  # seconds per task before measuring; updated from what workers report
    seen: list[float] = []
    with tempfile.TemporaryDirectory(prefix="simlat-cal-") as tmp:
        logdir = Path(tmp)
        try:
            for i, task in enumerate(tasks):
                now = time.time()
                if t_end is not None:
                    if now >= t_end - 1.0:
                        outcomes.append(Outcome(task, {"status": "skipped", "reason": f"not run: the run's time limit ({time_limit_s:.0f} s) was spent"}))
                        on_task_done(task, 0)
                        continue
                    left = sum(t.weight for t in tasks[i:])
                    # every task pays a fixed cost (process start, torch import, model build) before measuring
                    spare = max(t_end - now - fixed * (len(tasks) - i), 0.2 * (t_end - now))
                    share = spare * task.weight / left
                    deadline = min(now + fixed + share, t_end)  # the worker paces its batch sizes to this
                    kill_at = min(now + fixed + 2.0 * share + 15.0, t_end + 5.0)  # later tasks' shares shrink to make up
                else:
                    share = NO_LIMIT_TASK_S
                    deadline = now + share
                    kill_at = deadline + 600.0
                point_s = budget.point_s
                if t_end is not None and task.batch_sizes:
                    point_s = max(0.01, min(point_s, 0.5 * share / (len(task.batch_sizes) * 2.0)))
                res = _run_one(pool, logdir, task, budget, threads, deadline, kill_at, point_s,
                               more=i + 1 < len(tasks), on_progress=on_progress)
                if res.get("measuring_from"):
                    seen.append(max(res.pop("measuring_from") - now, 0.0))
                    fixed = sorted(seen)[len(seen) // 2]
                outcomes.append(Outcome(task, res))
                on_task_done(task, 1)
        finally:
            pool.close()
    return outcomes


def _run_one(pool, logdir, task, budget, threads, deadline, kill_at, point_s, *, more, on_progress) -> dict:
    proc, spawn_time, errpath = pool.take(logdir, more)
    out = logdir / f"result-{id(task)}.json"
    msg = {
        "task": task.kind, "device": task.device, "threads": threads, "budget": budget.to_json(),
        "model": task.model.to_json() if task.model else None, "variant": task.variant,
        "batch_sizes": task.batch_sizes, "idle_sizes": task.idle_sizes, "deadline": deadline,
        "point_s": point_s, "out": str(out), "spawn_time": spawn_time, "hard_deadline": kill_at - 3.0,
    }
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    killed = False
    try:
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.close()
    except OSError:
        pass
    while True:
        try:
            item = q.get(timeout=0.1)
            if item is None:
                break
            on_progress(task, item)
            continue
        except queue.Empty:
            pass
        if time.time() > kill_at and proc.poll() is None:
            proc.kill()
            killed = True
    code = proc.wait()
    result = None
    if out.exists():
        try:
            result = json.loads(out.read_text())
        except json.JSONDecodeError:
            result = None
    if killed:
        note = f"worker killed at its time budget ({kill_at - spawn_time:.0f} s after start)"
        if result and result.get("points"):
            result.setdefault("notes", []).append(note + "; later batch sizes not measured")
            return result
        return {"status": "skipped", "reason": note + " before any batch size was measured"}
    if result is None:
        return {"status": "skipped", "reason": f"worker crashed (exit code {code}): {_tail(errpath)}"}
    return result
