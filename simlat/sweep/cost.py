"""What a configuration costs per hour: GPUs times the price of its device.

A GPU is priced once however many model instances share it: ``fleet.replicas /
fleet.instances_per_gpu`` GPUs (``fleet.n_gpus``; the replica count when each GPU runs one instance),
plus, with ``colocated`` models placed ``separate``, their own GPUs.

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


PROJECTED_Z = 1.2816
"""One-sided 90% normal quantile: a projected service level may be exp(z x sd) slower than projected."""


def projected_warning(experiment: Experiment, headroom: float | None = None) -> list[str]:
    """A warning when the configuration's service profile was projected onto its device, not measured
    (``simlat profile project``); empty otherwise or when the profile cannot be read. With the chosen
    configuration's ``headroom``: a second warning when it is smaller than the projection's one-sided
    90% uncertainty of the service level (the headroom is computed at the projected level)."""
    from simlat.profiles.schema import load_profile

    if experiment.service.kind != "profile":
        return []
    try:
        prov = load_profile(experiment.service.path).provenance
    except SimlatError:
        return []
    if prov.projection is None:
        return []
    pj = prov.projection
    out = [f"the chosen configuration runs on {prov.device_name}: its service times are PROJECTED from"
           f" {pj.source} ({pj.source_device}), not measured (uncertainty sd(log) {pj.uncertainty_sd_log:g} added"
           " to the prediction interval); measure it on the device before buying"]
    slower = math.exp(PROJECTED_Z * pj.uncertainty_sd_log) - 1.0
    if headroom is not None and math.isfinite(headroom) and headroom < slower:
        out.append(f"its headroom ({headroom:.0%}) is computed at the projected service level; the projection's"
                   f" one-sided 90% uncertainty allows service times {slower:.0%} longer, so the measured device may"
                   " need more replicas (a projected H200 plan that needed 3 GPUs needed 4 once measured:"
                   " docs/calibration.md)")
    return out


def cost_per_hour(experiment: Experiment, sweep: Sweep) -> float:
    """USD per hour for the configuration's fleet; NaN when no price applies and none is needed."""
    gpus = experiment.fleet.n_gpus
    if experiment.colocated is not None:
        gpus = experiment.colocated.gpus(gpus)
    for name in device_names(experiment):
        if name in sweep.prices:
            return gpus * sweep.prices[name]
    if sweep.cost_per_replica_hour is not None:
        return gpus * sweep.cost_per_replica_hour
    if sweep.objective == "min_cost" or sweep.prices:
        names = device_names(experiment) or ["(no device: set experiment.device)"]
        raise SimlatError(
            f"sweep.prices: no price for device {names[0]!r} "
            f"(looked up {', '.join(repr(n) for n in names)}; add it to sweep.prices or set "
            f"sweep.cost_per_replica_hour)"
        )
    return math.nan
