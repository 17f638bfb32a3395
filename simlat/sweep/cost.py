"""What a configuration costs per hour: replicas times the price of its device.

The device is looked up in ``sweep.prices`` by, in order: ``experiment.device``, the service
profile file's stem (``calibration/h100.json`` -> ``h100``), its file name and the device name the
profile records (``NVIDIA H100 80GB HBM3``); without a match,
``sweep.cost_per_replica_hour`` applies.
"""

from __future__ import annotations

import math
from pathlib import Path

from simlat.config import Experiment
from simlat.config.sweep import Sweep
from simlat.errors import SimlatError


def device_names(experiment: Experiment) -> list[str]:
    """Names a price may be given under, most specific first."""
    names = []
    if experiment.device:
        names.append(experiment.device)
    if experiment.service.kind == "profile":
        p = Path(experiment.service.path)
        names += [p.stem, p.name]
        device_name = _profile_device(p)
        if device_name:
            names.append(device_name)
    return names


def _profile_device(path: Path) -> str | None:
    """The device a profile was measured on (its provenance), or None if it cannot be read."""
    from simlat.profiles.schema import load_profile

    try:
        return load_profile(path).provenance.device_name
    except SimlatError:  # a bad profile is reported when the configuration runs
        return None


def device_label(experiment: Experiment) -> str:
    """The device a configuration runs on, for tables and the recommendation ('' if unknown):
    the experiment's ``device``, else the profile's measured device name, else the profile's stem."""
    names = device_names(experiment)
    if not names:
        return ""
    return experiment.device or (names[2] if len(names) > 2 else names[0])


def cost_per_hour(experiment: Experiment, sweep: Sweep) -> float:
    """USD per hour for the configuration's fleet; NaN when no price applies and none is needed."""
    for name in device_names(experiment):
        if name in sweep.prices:
            return experiment.fleet.replicas * sweep.prices[name]
    if sweep.cost_per_replica_hour is not None:
        return experiment.fleet.replicas * sweep.cost_per_replica_hour
    if sweep.objective == "min_cost" or sweep.prices:
        names = device_names(experiment) or ["(no device: set experiment.device)"]
        raise SimlatError(
            f"sweep.prices: no price for device {names[0]!r} "
            f"(looked up {', '.join(repr(n) for n in names)}; add it to sweep.prices or set "
            f"sweep.cost_per_replica_hour)"
        )
    return math.nan
