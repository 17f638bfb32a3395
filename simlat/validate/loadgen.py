"""Open-loop load generator, run in its own process: replays arrival times against the server.

Run as ``python -m simlat.validate.loadgen --url URL --arrivals A.npy --input float32:512 --out R.npz``.
Each request leaves at its scheduled time whatever the earlier ones are doing (open loop: it never
waits for a reply before sending the next). For every request it records the scheduled time, the
time it actually left (``send lag`` = sent - scheduled, reported so that a run which could not keep
its schedule is flagged), the time its reply arrived, and whether it succeeded. All times are
``time.perf_counter()`` seconds (CLOCK_MONOTONIC, shared with the server process).
Needs numpy, aiohttp and msgpack only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import aiohttp
import msgpack
import numpy as np

from simlat.endpoint.loadgen import open_loop

now = time.perf_counter


def _payloads(spec: str, n: int = 64) -> list[bytes]:
    """``n`` random inputs for one request, as raw bytes (``float32:512`` or ``int64:64``)."""
    dtype, size = spec.split(":")
    rng = np.random.default_rng(1)
    if dtype == "int64":
        return [rng.integers(0, 8000, size=int(size), dtype=np.int64).tobytes() for _ in range(n)]
    return [rng.standard_normal(int(size), dtype=np.float32).tobytes() for _ in range(n)]


async def replay(url: str, arrivals_s: np.ndarray, payloads: list[bytes], max_s: float, preopen: int,
                 start_at: float | None = None, ids: np.ndarray | None = None) -> dict:
    """Send one request per arrival time (seconds from ``start_at``) and record what happened.

    ``ids`` are the request ids sent to the server (default 0..n-1), so several generator
    processes can share one run.
    """
    n = len(arrivals_s)
    sched = np.full(n, np.nan)
    sent = np.full(n, np.nan)
    recv = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=120)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:

        async def ping() -> None:
            async with session.get(url + "/ping") as r:
                await r.read()

        await asyncio.gather(*(ping() for _ in range(preopen)))  # open keep-alive connections up front

        async def send(i: int) -> None:
            body = msgpack.packb({"id": int(ids[i]) if ids is not None else i, "x": payloads[i % len(payloads)]})
            sent[i] = now()
            try:
                async with session.post(url + "/infer", data=body) as r:
                    await r.read()
                    ok[i] = r.status == 200
            except (aiohttp.ClientError, OSError):
                ok[i] = False
            recv[i] = now()

        t0 = start_at if start_at is not None else now() + 0.05
        await open_loop(arrivals_s, t0, max_s, send, sched)
    return {"sched": sched, "sent": sent, "recv": recv, "ok": ok, "t0": t0}


def main(argv: list[str] | None = None) -> None:
    """Process entry point: writes the records to ``--out`` (npz) and prints a one-line JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--arrivals", required=True, help=".npy of arrival times in seconds from the start")
    p.add_argument("--input", default="float32:512", help="dtype:size of one request's input")
    p.add_argument("--out", required=True)
    p.add_argument("--max-s", type=float, default=120.0, help="hard limit on the whole replay")
    p.add_argument("--preopen", type=int, default=64, help="keep-alive connections opened before the replay")
    p.add_argument("--cpus", default="")
    p.add_argument("--start-at", type=float, default=None, help="perf_counter time of arrival 0 (shared clock)")
    p.add_argument("--ids", default=None, help=".npy of the request ids to send (default 0..n-1)")
    p.add_argument("--id-offset", type=int, default=0, help="added to every request id")
    args = p.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    arr = np.load(args.arrivals)
    c0 = time.process_time()
    ids = (np.load(args.ids) if args.ids else np.arange(len(arr))) + args.id_offset
    rec = asyncio.run(replay(args.url, arr, _payloads(args.input), args.max_s, args.preopen, args.start_at, ids))
    rec["cpu_s"] = time.process_time() - c0
    np.savez(args.out, **rec)
    lag = (rec["sent"] - rec["sched"]) * 1e3
    print(json.dumps({"sent": int(np.isfinite(rec["sent"]).sum()), "ok": int(rec["ok"].sum()),
                      "lag_p99_ms": float(np.nanpercentile(lag, 99)) if len(lag) else 0.0}), flush=True)


if __name__ == "__main__":
    main()
