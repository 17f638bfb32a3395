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

from importlib import import_module

_WHERE = {
    "ProfileDeviceWarning": "device", "device_mismatch": "device", "warn_device_mismatch": "device",
    "LatencySketch": "redis", "RedisProfile": "redis", "load_redis_profile": "redis", "parse_redis_profile": "redis",
    "KINDS": "resolve", "ProfileKind": "resolve", "detect_kind": "resolve", "load": "resolve", "parse": "resolve",
    "register": "resolve", "resolve_path": "resolve",
    "Curve": "sampling", "make_sampler": "sampling", "profile_curves": "sampling",
    "SCHEMA_VERSION": "levels", "default_quantile_levels": "levels",
    "ServiceProfile": "schema", "load_profile": "schema", "parse_profile": "schema", "save_profile": "schema",
}
"""Where each name of the package lives: imported on first use, so that the calibration's measuring
side (``simlat.profiles.levels``) imports on a GPU host without the simulator's pydantic."""


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"simlat.profiles.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'simlat.profiles' has no attribute {name!r}")


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
