"""Measured profiles the simulator draws from, one package for every kind.

- :mod:`~simlat.profiles.resolve`: the one path rule (relative to the file that names the path),
  the kind registry and the cached loader shared by all kinds.
- :mod:`~simlat.profiles.schema`: the service profile of ``simlat calibrate`` (versioned schema,
  load/save).
- :mod:`~simlat.profiles.redis`: the Redis GET/SET latency profile of ``simlat calibrate --cache``.
- :mod:`~simlat.profiles.sampling`: quantile curves and the fast samplers of ``kind: profile``.
- :mod:`~simlat.profiles.device`: the device check between an experiment and its profile.

- :mod:`~simlat.profiles.serving`: the serving-stack profile of ``simlat calibrate --endpoint`` (the
  fitted stack of a measured endpoint and its uncertainty).
- :mod:`~simlat.profiles.contention`: the GPU contention profile of ``simlat calibrate --contention``
  (how much slower batches run when several share one GPU).
 A new kind is one module that
defines its model and ``parse`` function and calls :func:`~simlat.profiles.resolve.register`, plus
its name in :data:`~simlat.profiles.resolve.KIND_MODULES`.
"""

from simlat.profiles.device import ProfileDeviceWarning, device_mismatch, warn_device_mismatch
from simlat.profiles.redis import LatencySketch, RedisProfile, load_redis_profile, parse_redis_profile
from simlat.profiles.resolve import KINDS, ProfileKind, detect_kind, load, parse, register, resolve_path
from simlat.profiles.sampling import Curve, make_sampler, profile_curves
from simlat.profiles.schema import (
    SCHEMA_VERSION,
    ServiceProfile,
    default_quantile_levels,
    load_profile,
    parse_profile,
    save_profile,
)

__all__ = [
    "KINDS",
    "Curve",
    "SCHEMA_VERSION",
    "LatencySketch",
    "ProfileDeviceWarning",
    "ProfileKind",
    "RedisProfile",
    "ServiceProfile",
    "default_quantile_levels",
    "detect_kind",
    "device_mismatch",
    "load",
    "load_profile",
    "load_redis_profile",
    "make_sampler",
    "parse",
    "parse_profile",
    "parse_redis_profile",
    "profile_curves",
    "register",
    "resolve_path",
    "save_profile",
    "warn_device_mismatch",
]
