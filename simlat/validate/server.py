"""The real serving process: an aiohttp HTTP server with an asyncio dynamic batcher and one model thread.

Run as ``python -m simlat.validate.server --model mlp_ranker --device cpu --max-batch 8 ...``. It
builds and warms the model, measures its back-to-back and after-idle batch times in this process,
then prints ``READY <port>`` and serves:

- ``POST /infer``: msgpack ``{"id": int, "x": bytes}`` (one request's input) -> msgpack ``{"id", "score"}``;
- ``POST /v2/models/{name}/infer``: the KServe v2 / Triton JSON protocol (one request of batch 1), so
  the same external load generator measures this server and Triton; ``GET /v2/health/ready``;
- ``GET /trace``: msgpack of the per-request and per-batch timings recorded since the last call
  (and the CPU time of the event-loop and model threads), then clears them;
- ``GET /profile``: the model profile measured at start-up; ``GET /ping`` (answers the number of requests in flight); ``POST /shutdown``.

The batcher implements the experiment's dispatch rules (see :mod:`simlat.config.serving`):
``on_free`` forms a batch when the model thread is free, taking what is queued and waiting until
the oldest request is ``max_wait_ms`` old if the batch is not full; ``on_close`` closes batches at
max size or max wait whatever the model is doing, and closed batches queue for the model thread.

Every timestamp is ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux, shared with the load
generator process). This module needs torch, numpy, aiohttp and msgpack only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgpack
import numpy as np
from aiohttp import web

now = time.perf_counter


@dataclass(slots=True)
class _Item:
    rid: int
    x: np.ndarray
    fut: asyncio.Future
    t_enq: float


@dataclass
class Trace:
    """Timings recorded by the server, as parallel lists (seconds on the shared monotonic clock)."""

    req: dict[str, list] = field(default_factory=lambda: {k: [] for k in Trace.REQ})
    batch: dict[str, list] = field(default_factory=lambda: {k: [] for k in Trace.BATCH})

    REQ = ("rid", "t_handler", "t_enq", "batch_id", "t_resume", "t_replied")
    BATCH = ("batch_id", "size", "t_dispatch", "t_model_start", "t_model_end", "t_back")

    def take(self) -> dict:
        """Return everything recorded and start afresh."""
        out = {"req": self.req, "batch": self.batch}
        self.req = {k: [] for k in self.REQ}
        self.batch = {k: [] for k in self.BATCH}
        return out


class Batcher:
    """Asyncio dynamic batcher feeding one model thread (one replica)."""

    def __init__(self, run_batch, max_batch: int, max_wait_ms: float, dispatch: str, trace: Trace):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1e3
        self.dispatch = dispatch
        self.trace = trace
        self.queue: deque[_Item] = deque()
        self.closed: deque[list[_Item]] = deque()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._waiter: asyncio.Future | None = None
        self._want_any = False
        self._worker_waiter: asyncio.Future | None = None
        self._next_batch = 0
        self.model_cpu_s = 0.0

    def submit(self, item: _Item) -> None:
        """Queue one request; wake the batcher if it waits for the first request or a full batch."""
        self.queue.append(item)
        w = self._waiter
        if w is not None and not w.done() and (self._want_any or len(self.queue) >= self.max_batch):
            w.set_result(None)

    async def _form(self) -> list[_Item]:
        """Wait for a first request, then until the batch is full or the oldest is max_wait old."""
        loop = asyncio.get_running_loop()
        while not self.queue:
            self._want_any = True
            self._waiter = loop.create_future()
            await self._waiter
        self._want_any = False
        if len(self.queue) < self.max_batch and self.max_wait > 0:
            delay = self.queue[0].t_enq + self.max_wait - now()
            if delay > 0:
                self._waiter = w = loop.create_future()
                h = loop.call_later(delay, lambda: w.done() or w.set_result(None))
                await w
                h.cancel()
        self._waiter = None
        n = min(self.max_batch, len(self.queue))
        return [self.queue.popleft() for _ in range(n)]

    def _call_model(self, xs: np.ndarray):
        c0 = time.thread_time()
        t0 = now()
        y = self.run_batch(xs)
        t1 = now()
        self.model_cpu_s += time.thread_time() - c0
        return y, t0, t1

    async def _execute(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        bid = self._next_batch
        self._next_batch += 1
        t_disp = now()
        xs = np.stack([it.x for it in batch])
        try:
            y, t0, t1 = await loop.run_in_executor(self.pool, self._call_model, xs)
            scores = y.tolist()
            if len(scores) != len(batch):
                raise RuntimeError(f"model returned {len(scores)} scores for a batch of {len(batch)}")
        except Exception as err:  # noqa: BLE001 - every waiting request gets the error, the batcher goes on
            for it in batch:
                it.fut.set_exception(err)
            return
        t_back = now()
        for it, score in zip(batch, scores, strict=True):
            it.fut.set_result((bid, score))
        b = self.trace.batch
        for k, v in zip(Trace.BATCH, (bid, len(batch), t_disp, t0, t1, t_back), strict=True):
            b[k].append(v)

    async def run(self) -> None:
        """The batcher task: form batches and run them according to the dispatch rule."""
        if self.dispatch == "on_free":
            while True:
                await self._execute(await self._form())
        else:
            worker = asyncio.create_task(self._worker())
            try:
                while True:
                    self.closed.append(await self._form())
                    w = self._worker_waiter
                    if w is not None and not w.done():
                        w.set_result(None)
            finally:
                worker.cancel()

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.closed:
                self._worker_waiter = loop.create_future()
                await self._worker_waiter
            await self._execute(self.closed.popleft())


def build_app(model, batcher: Batcher, trace: Trace, profile: dict) -> web.Application:
    """The aiohttp application and its routes."""
    shape = model.input_shape
    dtype = model.input_dtype
    inflight = [0]

    async def infer(request: web.Request) -> web.StreamResponse:
        t_h = now()
        inflight[0] += 1
        try:
            return await _infer(request, t_h)
        finally:
            inflight[0] -= 1

    async def _infer(request: web.Request, t_h: float) -> web.StreamResponse:
        msg = msgpack.unpackb(await request.read())
        rid = msg["id"]
        x = np.frombuffer(msg["x"], dtype=dtype).reshape(shape)
        fut = asyncio.get_running_loop().create_future()
        t_enq = now()
        batcher.submit(_Item(rid, x, fut, t_enq))
        bid, score = await fut
        t_res = now()
        resp = web.Response(body=msgpack.packb({"id": rid, "score": score}), content_type="application/msgpack")
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except ConnectionError:  # the client gave up (an overloaded probe); nothing to record
            return resp
        t_rep = now()
        r = trace.req
        r["rid"].append(rid)
        r["t_handler"].append(t_h)
        r["t_enq"].append(t_enq)
        r["batch_id"].append(bid)
        r["t_resume"].append(t_res)
        r["t_replied"].append(t_rep)
        return resp

    next_id = [1 << 40]  # KServe requests carry no id the trace could join on: number them apart

    async def infer_v2(request: web.Request) -> web.StreamResponse:
        t_h = now()
        inflight[0] += 1
        try:
            msg = json.loads(await request.read())
            inp = msg["inputs"][0]
            x = np.asarray(inp["data"], dtype=dtype).reshape(shape)
            rid = next_id[0]
            next_id[0] += 1
            fut = asyncio.get_running_loop().create_future()
            t_enq = now()
            batcher.submit(_Item(rid, x, fut, t_enq))
            _, score = await fut
            body = json.dumps({"model_name": request.match_info["name"], "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [float(score)]}]})
            return web.Response(text=body, content_type="application/json")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            return web.Response(status=400, text=json.dumps({"error": f"bad request: {e}"}), content_type="application/json")
        finally:
            inflight[0] -= 1
            del t_h

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="")

    async def get_trace(request: web.Request) -> web.Response:
        out = trace.take()
        out["loop_cpu_s"] = time.thread_time()
        out["model_cpu_s"] = batcher.model_cpu_s
        out["t_now"] = now()
        return web.Response(body=msgpack.packb(out), content_type="application/msgpack")

    async def get_profile(request: web.Request) -> web.Response:
        prof = {k: ({str(b): v for b, v in d.items()} if isinstance(d, dict) else d) for k, d in profile.items()}
        return web.Response(body=msgpack.packb(prof), content_type="application/msgpack")

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text=str(inflight[0]))

    async def shutdown(request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.05, request.app["stop"].set)
        return web.Response(text="bye")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/infer", infer)
    app.router.add_get("/trace", get_trace)
    app.router.add_get("/profile", get_profile)
    app.router.add_post("/shutdown", shutdown)
    app.router.add_get("/ping", ping)
    app.router.add_post("/v2/models/{name}/infer", infer_v2)
    app.router.add_get("/v2/health/ready", ready)
    return app


async def serve(args: argparse.Namespace) -> None:
    """Build, warm and profile the model, then serve until /shutdown."""
    from simlat.validate.model_host import host_model

    model = host_model(args.model, args.device, threads=args.threads, variant=args.variant)
    model.warm(args.max_batch)
    profile = model.profile(args.max_batch)
    model.warm(args.max_batch, min_s=0.2)
    trace = Trace()
    batcher = Batcher(model.run, args.max_batch, args.max_wait_ms, args.dispatch, trace)
    batcher.pool.submit(lambda: None).result()  # start the model thread before serving
    app = build_app(model, batcher, trace, profile)
    app["stop"] = asyncio.Event()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    task = asyncio.create_task(batcher.run())
    print(f"READY {port}", flush=True)
    await app["stop"].wait()
    task.cancel()
    await runner.cleanup()
    batcher.pool.shutdown(wait=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--variant", default="fp32", help="calibration variant to serve (fp32, bf16, compile_cudagraphs, ...)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--max-batch", type=int, default=1)
    p.add_argument("--max-wait-ms", type=float, default=0.0)
    p.add_argument("--dispatch", choices=("on_free", "on_close"), default="on_free")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cpus", default="", help="comma-separated CPU ids to pin this process to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Process entry point."""
    args = parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
