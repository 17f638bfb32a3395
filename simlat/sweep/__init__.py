"""Sweeps: grids over experiment fields, rate search under the SLO, and the operating-point choice.

The package is callable: ``simlat.sweep(experiment)`` is :func:`simlat.api.sweep` (a subpackage and
a function cannot share the name ``simlat.sweep`` otherwise).
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from simlat.api import sweep

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
