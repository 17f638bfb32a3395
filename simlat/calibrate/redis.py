"""Measure a real Redis server's GET and SET latency for one value size, and write a profile.

Method: one synchronous redis-py connection (what a serving process's cache client does); ``keys``
keys of ``value_bytes`` random bytes are written under a private prefix; warm-up runs in blocks
until the block median settles; then ``rounds`` rounds of interleaved GET and SET calls on random
keys, each timed alone with ``time.perf_counter_ns``, then MGETs of ``mget_sizes`` distinct keys
(what a request's per-item lookups cost at once). The keys are deleted afterwards (nothing
else on the server is touched). The profile keeps a quantile sketch per operation, the medians of
the rounds (drift) and warns "unstable" when they spread by more than 10% or the median's 95% CI
is wider than +-5%.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from simlat.calibrate.stats import median_ci
from simlat.errors import SimlatError
from simlat.profiles.redis import LatencySketch, RedisProfile, Throughput

QUANTILE_P = np.unique(np.concatenate([np.linspace(0.0, 1.0, 1001), [0.9995, 0.9999]]))
"""Probabilities of the stored quantile sketch: every 0.1%, plus 99.95% and 99.99%."""

UNSTABLE_SPREAD = 1.10


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = (f"{parts.username}:***@" if parts.username else ":***@") + (parts.hostname or "")
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _is_loopback(host: str | None) -> bool | None:
    if not host:
        return None
    try:
        import ipaddress

        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _sketch(rounds: list[np.ndarray]) -> LatencySketch:
    x = np.concatenate(rounds)
    q = np.maximum.accumulate(np.quantile(x, QUANTILE_P))
    r6 = lambda v: round(float(v), 6)  # noqa: E731
    return LatencySketch(
        n=int(x.size),
        mean_ms=r6(x.mean()),
        stdev_ms=r6(x.std(ddof=1)) if x.size > 1 else 0.0,
        min_ms=r6(x.min()),
        p50_ms=r6(np.quantile(x, 0.5)),
        p90_ms=r6(np.quantile(x, 0.9)),
        p99_ms=r6(np.quantile(x, 0.99)),
        p999_ms=r6(np.quantile(x, 0.999)),
        max_ms=r6(x.max()),
        median_ci_ms=[r6(v) for v in median_ci(x)],
        round_p50_ms=[r6(np.median(r)) for r in rounds],
        quantile_p=[round(float(p), 6) for p in QUANTILE_P],
        quantile_ms=[r6(v) for v in q],
    )


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _busy(*loads: float | None) -> list[str]:
    cpus = os.cpu_count() or 1
    worst = max((x for x in loads if x is not None), default=None)
    if worst is not None and worst > cpus:
        return [f"busy machine: load average {worst} on {cpus} CPUs; the tail includes CPU scheduling delays"]
    return []


def _stability(name: str, s: LatencySketch) -> list[str]:
    out = []
    spread = max(s.round_p50_ms) / max(min(s.round_p50_ms), 1e-12)
    if spread > UNSTABLE_SPREAD:
        out.append(f"unstable: {name} round medians spread {spread:.2f}x (> {UNSTABLE_SPREAD}x)")
    lo, hi = s.median_ci_ms
    if (hi - lo) / 2 > 0.05 * s.p50_ms:
        out.append(f"unstable: {name} median 95% CI [{lo}, {hi}] ms is wider than +-5%")
    return out


def _throughput_worker(args) -> tuple[int, float, float]:
    """One client process: pipelined GETs of random keys for ``duration_s``; (ops, wall s, CPU s)."""
    import random

    import redis

    url, names, duration_s, pipeline, timeout_s = args
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    ops = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < duration_s:
        pipe = client.pipeline(transaction=False)
        for k in random.choices(names, k=pipeline):
            pipe.get(k)
        pipe.execute()
        ops += pipeline
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return ops, wall, cpu


def measure_throughput(url: str, names: list[bytes], *, clients: int | None = None, pipeline: int = 32,
                       duration_s: float = 2.0, timeout_s: float = 5.0) -> Throughput:
    """GETs per second under concurrency: ``clients`` processes (default: the cores, 2 to 8), each
    one connection keeping ``pipeline`` GETs in flight. ``client_bound`` when the clients used over
    90% of their CPU (then the server may do more)."""
    import multiprocessing

    clients = clients or max(2, min(8, os.cpu_count() or 2))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        results = pool.map(_throughput_worker, [(url, names, duration_s, pipeline, timeout_s)] * clients)
    ops = sum(r[0] for r in results)
    wall = max(r[1] for r in results)
    cpu_share = sum(r[2] for r in results) / sum(r[1] for r in results)
    return Throughput(ops_per_s=ops / wall, clients=clients, pipeline=pipeline, duration_s=wall,
                      client_bound=cpu_share > 0.9 or clients > (os.cpu_count() or 1))


def calibrate_redis(
    url: str,
    out: str | Path,
    *,
    value_bytes: int = 256,
    n: int = 20_000,
    rounds: int = 5,
    keys: int = 1_000,
    warmup_block: int = 500,
    max_warmup: int = 20_000,
    mget_sizes: tuple[int, ...] = (10, 100),
    note: str | list[str] = "",
    progress: bool = True,
    timeout_s: float = 5.0,
    throughput_s: float = 2.0,
) -> RedisProfile:
    """Measure GET and SET latency (``n`` of each, and ``n / 10`` MGETs of each of ``mget_sizes``
    keys) against the Redis at ``url`` for values of ``value_bytes`` bytes (the model output's
    size) and write the profile to ``out``."""
    import redis

    for name, v, least in (("value_bytes", value_bytes, 1), ("n", n, 10), ("rounds", rounds, 1), ("keys", keys, 1)):
        if v < least:
            raise SimlatError(f"{name}: {v!r} must be >= {least}")
    for k in mget_sizes:
        if not 2 <= k <= keys:
            raise SimlatError(f"mget_sizes: {k!r} must be between 2 and keys ({keys})")
    if not isinstance(note, str):
        note = "; ".join(note)
    shown = redact(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        client.ping()
        info = client.info("server")
    except (redis.RedisError, OSError, ValueError) as err:
        raise SimlatError(f"--cache: cannot reach Redis at {shown}: {err}") from None
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError:
        policy = None  # CONFIG is often disabled on managed servers

    load_before = _load_average()
    rng = np.random.default_rng()
    prefix = f"simlat:calibrate:{uuid.uuid4().hex[:12]}:"
    names = [f"{prefix}{i}".encode() for i in range(keys)]
    value = os.urandom(value_bytes)
    per_round = max(1, n // rounds)
    mget_per_round = max(1, n // 10 // rounds)
    get_rounds: list[np.ndarray] = []
    set_rounds: list[np.ndarray] = []
    mget_rounds: dict[int, list[np.ndarray]] = {k: [] for k in mget_sizes}
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=False)
        bar.start()
        task = bar.add_task(
            f"Redis {shown} GET/SET/MGET {value_bytes} B", total=rounds * (per_round + mget_per_round * len(mget_sizes))
        )
    try:
        pipe = client.pipeline(transaction=False)
        for key in names:
            pipe.set(key, value)
        pipe.execute()

        def timed(count: int) -> tuple[np.ndarray, np.ndarray]:
            g = np.empty(count)
            s = np.empty(count)
            order = rng.integers(0, keys, size=(count, 2))
            clock = time.perf_counter_ns
            get, put = client.get, client.set
            for i in range(count):
                t0 = clock()
                get(names[order[i, 0]])
                t1 = clock()
                put(names[order[i, 1]], value)
                t2 = clock()
                g[i] = t1 - t0
                s[i] = t2 - t1
            return g / 1e6, s / 1e6

        def timed_mget(size: int, count: int) -> np.ndarray:
            picks = [[names[i] for i in rng.choice(keys, size=size, replace=False)] for _ in range(count)]
            out = np.empty(count)
            clock = time.perf_counter_ns
            mget = client.mget
            for i, ks in enumerate(picks):
                t0 = clock()
                mget(ks)
                out[i] = clock() - t0
            return out / 1e6

        warmed, last = 0, None
        while warmed < max_warmup:
            g, _ = timed(warmup_block)
            warmed += warmup_block
            med = float(np.median(g))
            if last is not None and abs(med - last) <= 0.05 * last:
                break
            last = med
        for _ in range(rounds):
            done = 0
            g_parts, s_parts = [], []
            while done < per_round:
                step = min(1000, per_round - done)
                g, s = timed(step)
                g_parts.append(g)
                s_parts.append(s)
                done += step
                if bar is not None:
                    bar.advance(task, step)
            get_rounds.append(np.concatenate(g_parts))
            set_rounds.append(np.concatenate(s_parts))
            for k in mget_sizes:
                mget_rounds[k].append(timed_mget(k, mget_per_round))
                if bar is not None:
                    bar.advance(task, mget_per_round)
        tp = measure_throughput(url, names, duration_s=throughput_s, timeout_s=timeout_s) if throughput_s > 0 else None
    except (redis.RedisError, OSError) as err:
        raise SimlatError(f"--cache: Redis at {shown} failed during measurement: {err}") from None
    finally:
        if bar is not None:
            bar.stop()
        try:
            for i in range(0, len(names), 1000):
                client.delete(*names[i : i + 1000])
        except (redis.RedisError, OSError):
            pass
        client.close()

    load_after = _load_average()
    get_s, set_s = _sketch(get_rounds), _sketch(set_rounds)
    mget_s = {k: _sketch(r) for k, r in mget_rounds.items()}
    host = urlsplit(url).hostname
    profile = RedisProfile(
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        note=note,
        value_bytes=value_bytes,
        server={
            "url": shown,
            "redis_version": info.get("redis_version"),
            "redis_mode": info.get("redis_mode"),
            "os": info.get("os"),
            "arch_bits": info.get("arch_bits"),
            "maxmemory_policy": policy,
            "loopback": _is_loopback(host),
        },
        client={
            "library": "redis-py",
            "version": redis.__version__,
            "python": sys.version.split()[0],
            "connection": "one TCP connection, synchronous request/reply",
        },
        machine={
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_1m_before": load_before,
            "load_average_1m_after": load_after,
        },
        method={
            "timer": "time.perf_counter_ns around each call",
            "pattern": "interleaved GET and SET of random keys",
            "keys": keys,
            "rounds": rounds,
            "per_round": per_round,
            "warmup_calls": warmed,
            "mget_per_round": mget_per_round if mget_sizes else 0,
        },
        get=get_s,
        set=set_s,
        mget=mget_s,
        throughput=tp,
        warnings=(["throughput: the client processes were CPU-bound: the measured rate is a lower bound on the "
                   "server's capacity"] if tp is not None and tp.client_bound else [])
        + _stability("GET", get_s) + _stability("SET", set_s)
        + [w for k, sk in mget_s.items() for w in _stability(f"MGET {k}", sk)]
        + _busy(load_before, load_after),
    )
    profile.save(out)
    return profile
