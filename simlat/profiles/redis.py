"""The Redis latency profile: measured GET and SET times, written by ``simlat calibrate --cache``.

Schema history (bump ``VERSION`` and add a line when the file format changes):
  1 (2026-11): GET and SET latency quantile sketches for one value size, with the server, client
     and machine they were measured on; optional MGET sketches by key count.
  1 + optional ``throughput`` (2026-12): GETs per second under concurrency (pipelined clients in
     several processes), read as the server's capacity; files without it still load.

The L2 cache draws its lookup times from the GET sketch by inverse-CDF interpolation; a lookup of
m keys at once (one MGET for a request's items) adds ``(m - 1) * per_key_ms()``.
Reading needs only json, numpy and pydantic (``simlat simulate`` never imports the calibration code).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from pydantic import Field

from simlat.config.base import StrictModel
from simlat.errors import SimlatError, validate_as
from simlat.profiles.resolve import ProfileKind, register
from simlat.profiles.resolve import load as _load

FORMAT: Final = "simlat.redis_profile"
VERSION: Final = 1


class LatencySketch(StrictModel):
    """One operation's latency in ms: summary statistics and a quantile sketch (``quantile_ms[i]`` is
    the ``quantile_p[i]`` quantile, p from 0 to 1, so min and max are kept). ``median_ci_ms``: the
    median's 95% confidence interval; ``round_p50_ms``: each measurement round's median (drift)."""

    n: int = Field(gt=0)
    mean_ms: float
    stdev_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    median_ci_ms: list[float] = Field(min_length=2, max_length=2)
    round_p50_ms: list[float]
    quantile_p: list[float] = Field(min_length=2)
    quantile_ms: list[float] = Field(min_length=2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` latencies (ms) by inverse-CDF interpolation of the sketch."""
        p, q = self._grid
        u = rng.random(n) * (len(p) - 1)
        i = u.astype(np.int64)
        return q[i] + (u - i) * (q[i + 1] - q[i])

    @cached_property
    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The sketch's inverse CDF on an even grid of probabilities fine enough for its tail points
        (so that a draw is an index and one interpolation, not a search)."""
        p = np.asarray(self.quantile_p)
        step = min(1e-4, float(np.diff(p).min()))
        fine = np.linspace(0.0, 1.0, int(round(1.0 / step)) + 2)
        return fine, np.interp(fine, p, self.quantile_ms)


class Throughput(StrictModel):
    """GETs per second the server answered with ``clients`` concurrent connections, each keeping
    ``pipeline`` requests in flight, over ``duration_s``. A lower bound on the server's capacity
    when the client machine is the bottleneck (``client_bound``)."""

    ops_per_s: float = Field(gt=0)
    clients: int = Field(gt=0)
    pipeline: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    client_bound: bool = False


class RedisProfile(StrictModel):
    """A Redis GET/SET latency profile with its provenance."""

    format: Literal["simlat.redis_profile"] = FORMAT
    version: Literal[1] = VERSION
    created_utc: str
    note: str = ""
    value_bytes: int = Field(gt=0)
    server: dict[str, str | int | float | bool | None]
    client: dict[str, str | int | float | bool | None]
    machine: dict[str, str | int | float | bool | None]
    method: dict[str, str | int | float | bool | None]
    get: LatencySketch
    set: LatencySketch
    mget: dict[int, LatencySketch] = {}
    throughput: Throughput | None = None
    warnings: list[str] = []

    def per_key_ms(self) -> float:
        """Extra time per additional key of an MGET: the least-squares slope of the median over
        the key counts measured (GET counts as 1 key); 0 without MGET measurements."""
        if not self.mget:
            return 0.0
        k = np.array([1, *self.mget], dtype=np.float64)
        p50 = np.array([self.get.p50_ms, *(s.p50_ms for s in self.mget.values())])
        return max(0.0, float(np.polyfit(k, p50, 1)[0]))

    def save(self, path: str | Path) -> Path:
        """Write the profile as indented JSON (creating the folder); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.model_dump(mode="json"), indent=1) + "\n")
        return p


def parse_redis_profile(data: Any, source: str = "Redis profile") -> RedisProfile:
    """Validate a parsed Redis profile, refusing a version this simlat does not read."""
    if isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") != VERSION:
        raise SimlatError(
            f"{source}: version: {data.get('version')!r} is not supported (this simlat reads version {VERSION})"
        )
    return validate_as(RedisProfile, data, f"{source} is not a valid Redis profile:")


REDIS = register(ProfileKind("redis", frozenset({FORMAT}), parse_redis_profile))


def load_redis_profile(path: str | Path, field: str = "path", *, base_dir: str | Path | None = None) -> RedisProfile:
    """Read and validate a Redis profile (cached per file and modification time)."""
    profile = _load(path, REDIS.name, base_dir=base_dir, field=field)
    assert isinstance(profile, RedisProfile)
    return profile
