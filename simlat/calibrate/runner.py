"""Running the tasks of a calibration, each in its own worker process, within a time limit.

Each task gets a share of the remaining time in proportion to its weight (compiling variants
weigh more); its worker paces its batch sizes to fit that share (every size gets measured, with
fewer samples if need be), stops starting new sizes shortly before it would be killed, at about
twice its share (later tasks' shares shrink to make up), and never after the run's time limit
(what it measured so far is kept: the worker rewrites its result file after each batch size). On cuda the next worker is started while the current one measures, so importing
torch and initialising CUDA overlap the measurement (on cpu it is not, to keep the cores quiet).
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
from dataclasses import dataclass
from pathlib import Path

from simlat.calibrate.budget import Budget
from simlat.calibrate.plan import Task
from simlat.launch import module_command

NO_LIMIT_TASK_S = 1800.0
"""Deadline of one task when the run has no time limit."""

PRESPAWN_DEPTH = 3
"""Workers started ahead of need on cuda (each spends ~10 s importing torch, initialising CUDA and
pre-warming what every task needs, see ``worker._prewarm_cuda``)."""


@dataclass
class Outcome:
    """A task and what its worker returned (a ``status: skipped`` dict with the reason on failure)."""

    task: Task
    result: dict


class _Worker:
    """A started worker process, its stderr log and the queue its stdout reader fills."""

    def __init__(self, device: str, env: dict, logdir: Path):
        self.err = Path(tempfile.mkstemp(dir=logdir, suffix=".stderr")[1])
        self.proc = subprocess.Popen(
            module_command("simlat.calibrate.worker", "--device", device),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err.open("w"), text=True, env=env,
        )
        self.spawn_time = time.time()
        self.tasks_run = 0
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(self.proc.stdout, self.q), daemon=True).start()

    def finish(self, wait: bool = True) -> None:
        """Close its stdin (it exits after the task it runs) and reap it (``wait=False``: later, by :meth:`reap`)."""
        assert self.proc.stdin is not None  # opened with stdin=PIPE
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if wait:
            self.reap()

    def reap(self) -> None:
        """Wait for the process to exit (killed after 30 s)."""
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    """Worker processes started ahead of need (at most ``depth`` waiting)."""

    def __init__(self, device: str, env: dict, depth: int):
        self.device, self.env, self.depth = device, env, depth
        self.waiting: list[_Worker] = []

    def take(self, logdir: Path, fresh_after: int) -> _Worker:
        """A started worker; tops up the waiting ones for the ``fresh_after`` new processes still to come."""
        got = self.waiting.pop(0) if self.waiting else _Worker(self.device, self.env, logdir)
        while len(self.waiting) < min(self.depth, fresh_after):
            self.waiting.append(_Worker(self.device, self.env, logdir))
        return got

    def close(self) -> None:
        """End the waiting workers (they hold no task; one may still be importing torch, so it is killed, not waited for)."""
        for w in self.waiting:
            w.proc.kill()
            w.finish()
        self.waiting = []


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        if line.startswith("@@progress"):
            q.put(line.split(" ", 1)[1].strip())
        elif line.startswith("@@done"):
            q.put(_DONE)
    q.put(None)


_DONE = object()
"""Queue item: the worker wrote the current task's result and waits for the next task."""


def _tail(path: Path, n: int = 6) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


def _same_group(a: Task | None, b: Task | None) -> bool:
    return a is not None and b is not None and a.group is not None and a.group == b.group


def run_tasks(
    tasks: list[Task],
    *,
    budget: Budget,
    threads: int | None,
    time_limit_s: float | None,
    on_progress: Callable[[Task, str], None],
    on_task_done: Callable[[Task, int], None],
    skip_reasons: dict[str, str] | None = None,
) -> list[Outcome]:
    """Run ``tasks`` in order; returns one outcome per task.

    A task gets its own worker process, except consecutive tasks of one ``group``, which share
    one (if it crashes or is killed, the next task of the group gets a fresh one). A task whose
    variant is in ``skip_reasons`` (known beforehand not to run here) is recorded as skipped with
    that reason, without a process.
    """
    device = tasks[0].device
    skip_reasons = skip_reasons or {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(x for x in [str(root), env.get("PYTHONPATH", "")] if x)
    t_end = time.time() + time_limit_s if time_limit_s else None
    pool = _Pool(device, env, depth=PRESPAWN_DEPTH if device == "cuda" else 0)
    runnable = [t for t in tasks if t.variant not in skip_reasons]
    # how many new processes each runnable task still needs after it (a group's later tasks reuse one)
    fresh_after = {}
    count = 0
    for j in range(len(runnable) - 1, -1, -1):
        fresh_after[id(runnable[j])] = count
        if j == 0 or not _same_group(runnable[j - 1], runnable[j]):
            count += 1
    outcomes: list[Outcome] = []
    fixed = 1.0 if device == "cuda" else 3.0  # seconds per task before measuring; updated from what workers report
    seen: list[float] = []
    current: _Worker | None = None
    done: list[_Worker] = []
    with tempfile.TemporaryDirectory(prefix="simlat-cal-") as tmp:
        logdir = Path(tmp)
        try:
            for i, task in enumerate(tasks):
                if task.variant in skip_reasons:
                    outcomes.append(Outcome(task, {"status": "skipped", "reason": skip_reasons[task.variant]}))
                    on_task_done(task, 0)
                    continue
                now = time.time()
                if t_end is not None:
                    if now >= t_end - 1.0:
                        outcomes.append(Outcome(task, {"status": "skipped", "reason": f"not run: the run's time limit ({time_limit_s:.0f} s) was spent"}))
                        on_task_done(task, 0)
                        continue
                    left = sum(t.weight for t in tasks[i:] if t.variant not in skip_reasons)
                    # every task pays a fixed cost (process start, torch import, model build) before measuring
                    spare = max(t_end - now - fixed * (len(tasks) - i), 0.2 * (t_end - now))
                    share = spare * task.weight / left
                    deadline = min(now + fixed + share, t_end)  # the worker paces its batch sizes to this
                    kill_at = min(now + fixed + 2.0 * share + 15.0, t_end)  # later tasks' shares shrink to make up
                else:
                    share = NO_LIMIT_TASK_S
                    deadline = now + share
                    kill_at = deadline + 600.0
                point_s = budget.point_s
                if t_end is not None and task.batch_sizes:
                    n_sizes = min(len(task.batch_sizes), 8) if task.adaptive else len(task.batch_sizes)  # a refined curve: ~4 coarse + a few
                    point_s = max(0.01, min(point_s, 0.5 * share / (n_sizes * 2.0)))
                if current is not None and current.proc.poll() is not None:
                    current = None  # crashed or killed: the group's next task gets a fresh process
                if current is None:
                    current = pool.take(logdir, fresh_after[id(task)])
                nxt = next((t for t in tasks[i + 1:] if t.variant not in skip_reasons), None)
                keep = _same_group(task, nxt)
                res = _run_one(current, logdir, task, budget, threads, deadline, kill_at, point_s, keep=keep, on_progress=on_progress)
                if not keep or current.proc.poll() is not None:
                    current.finish(wait=False)  # its result is in; it exits while the next task runs
                    done.append(current)
                    current = None
                if res.get("measuring_from"):
                    seen.append(max(res.pop("measuring_from") - now, 0.0))
                    fixed = sorted(seen)[len(seen) // 2]
                outcomes.append(Outcome(task, res))
                on_task_done(task, 1)
        finally:
            if current is not None:
                current.finish()
            pool.close()
            for w in done:
                w.reap()
    return outcomes


def _run_one(worker: _Worker, logdir, task, budget, threads, deadline, kill_at, point_s, *, keep, on_progress) -> dict:
    """Send ``task`` to ``worker`` and wait for its result (``keep``: the worker stays for the next task)."""
    proc = worker.proc
    out = logdir / f"result-{id(task)}.json"
    msg = {
        "task": task.kind, "device": task.device, "threads": threads, "budget": budget.to_json(),
        "model": task.model.to_json() if task.model else None, "variant": task.variant,
        "batch_sizes": task.batch_sizes, "idle_sizes": task.idle_sizes, "deadline": deadline,
        "point_s": point_s, "out": str(out), "spawn_time": worker.spawn_time, "hard_deadline": kill_at - 3.0,
        "shared": task.group is not None, "adaptive": task.adaptive,
    }
    worker.tasks_run += 1
    killed = False
    item = None
    assert proc.stdin is not None  # opened with stdin=PIPE
    try:
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        if not keep:
            proc.stdin.close()
    except OSError:
        pass
    while True:
        try:
            item = worker.q.get(timeout=0.1)
            if item is None or item is _DONE:
                break
            on_progress(task, item)
            continue
        except queue.Empty:
            pass
        if time.time() > kill_at and proc.poll() is None:
            proc.kill()
            killed = True
    code = proc.wait() if (item is None or killed) else None
    result = None
    if out.exists():
        try:
            result = json.loads(out.read_text())
        except json.JSONDecodeError:
            result = None
    if killed:
        note = f"worker killed at its time budget ({kill_at - worker.spawn_time:.0f} s after its process started)"
        if result and result.get("points"):
            result.setdefault("notes", []).append(note + "; later batch sizes not measured")
            return result
        return {"status": "skipped", "reason": note + " before any batch size was measured"}
    if result is None:
        return {"status": "skipped", "reason": f"worker crashed (exit code {code}): {_tail(worker.err)}"}
    if item is None and code:
        result.setdefault("notes", []).append(f"worker exited (code {code}) after the batch sizes kept here")
    return result
