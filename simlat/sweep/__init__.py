"""Sweeps: grids over experiment fields, rate search under the SLO, and the operating-point choice.

The package is callable: ``simlat.sweep(experiment)`` is :func:`sweep` (a subpackage and a function
cannot share the name ``simlat.sweep`` otherwise).
"""

import sys
import types


def sweep(experiment, *, workers: int | None = None, cache_dir=None, base_dir=None, progress=None):
    """Run ``experiment.sweep`` (no result cache unless ``cache_dir``) and return the
    :class:`simlat.sweep.result.SweepResult` (``.to_pandas()``: one row per configuration)."""
    from simlat.sweep.runner import run_sweep

    return run_sweep(experiment, base_dir=base_dir, workers=workers, cache_dir=cache_dir, progress=progress)


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
