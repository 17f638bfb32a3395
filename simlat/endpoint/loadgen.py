"""One open-loop load-generator process: replays arrival times against an endpoint.

Run as ``python -P -m simlat.endpoint.loadgen --target T.json --arrivals A.npy --start-at T0 --out R.npz``.
Each request leaves at its scheduled time whatever the earlier ones are doing (open loop). For
every request it records the scheduled time, the time it left (send lag = sent - scheduled: a
generator that could not keep its schedule is detected, never hidden), the time its reply
arrived and its HTTP status. Times are ``time.perf_counter()`` seconds (CLOCK_MONOTONIC, shared by
the processes of one host). Needs numpy and aiohttp only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import aiohttp
import numpy as np

from simlat.endpoint.protocol import Target

now = time.perf_counter


async def replay(target: Target, arrivals_s: np.ndarray, start_at: float, max_s: float, preopen: int = 16) -> dict:
    """Send one request per arrival time (seconds after ``start_at``) and record what happened."""
    n = len(arrivals_s)
    sched = np.full(n, np.nan)
    sent = np.full(n, np.nan)
    recv = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int32)
    errors: list[str] = []
    bodies = target.bodies()
    url = target.infer_url
    headers = {"Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=120)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=max_s)) as session:
        if target.ready_url:
            async def ping() -> None:
                try:
                    async with session.get(target.ready_url) as r:
                        await r.read()
                except (aiohttp.ClientError, OSError):
                    pass
            await asyncio.gather(*(ping() for _ in range(preopen)))  # keep-alive connections up front

        async def send(i: int) -> None:
            sent[i] = now()
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    text = await r.read()
                    status[i] = r.status
                    if r.status != 200 and len(errors) < 5:
                        errors.append(f"HTTP {r.status}: {text[:200].decode('utf-8', 'replace')}")
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                status[i] = -1
                if len(errors) < 5:
                    errors.append(f"{type(e).__name__}: {e}"[:200])
            recv[i] = now()

        tasks: set = set()
        for i in range(n):
            t = start_at + float(arrivals_s[i])
            d = t - now()
            if d > 0.002:
                await asyncio.sleep(d - 0.0015)
            while now() < t:  # finish the wait precisely, still serving replies
                await asyncio.sleep(0)
            sched[i] = t
            task = asyncio.create_task(send(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=max(0.1, start_at + max_s - now()))
        for task in list(tasks):
            task.cancel()
    return {"sched": sched, "sent": sent, "recv": recv, "status": status, "errors": np.array(errors, dtype=object)}


def main(argv: list[str] | None = None) -> None:
    """Process entry point: writes the records to ``--out`` (npz) and prints a one-line JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="JSON file of a simlat.endpoint.protocol.Target")
    p.add_argument("--arrivals", required=True, help=".npy of arrival times in seconds from --start-at")
    p.add_argument("--start-at", type=float, required=True, help="perf_counter time of arrival 0")
    p.add_argument("--out", required=True)
    p.add_argument("--max-s", type=float, default=120.0, help="hard limit on the whole replay")
    p.add_argument("--cpus", default="")
    args = p.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    with open(args.target) as f:
        target = Target(**json.load(f))
    arr = np.load(args.arrivals)
    rec = asyncio.run(replay(target, arr, args.start_at, args.max_s))
    np.savez(args.out, **{k: v for k, v in rec.items() if k != "errors"}, errors=np.array([str(e) for e in rec["errors"]]))
    lag = (rec["sent"] - rec["sched"]) * 1e3
    print(json.dumps({"sent": int(np.isfinite(rec["sent"]).sum()), "ok": int((rec["status"] == 200).sum()),
                      "lag_p99_ms": float(np.nanpercentile(lag, 99)) if np.isfinite(lag).any() else 0.0}), flush=True)


if __name__ == "__main__":
    main()
