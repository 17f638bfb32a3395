"""A new replica's delay to ready: the configured distribution, else the service profile's measured
cold start of the variant, else :data:`simlat.config.autoscaling.DEFAULT_COLD_START_S`.

The profile records the costs paid once per process (``cold_start``: process start to model built,
variant preparation, first call). It measures the process, not the machine: provisioning a node or
pulling an image is not in it, so a profile-derived cold start is a lower bound for a new GPU host.
"""

from __future__ import annotations

from simlat.config import Experiment
from simlat.config.autoscaling import DEFAULT_COLD_START_S
from simlat.config.dists import Constant, Dist
from simlat.config.service import ProfileService
from simlat.errors import SimlatError


def profile_cold_start_s(experiment: Experiment) -> float | None:
    """Seconds from process start to the first call served, from the service profile; None when the
    service is not a profile or the variant recorded no cold start."""
    svc = experiment.service
    if not isinstance(svc, ProfileService):
        return None
    from simlat.profiles.schema import load_profile

    try:
        model = load_profile(svc.path).model(svc.model)
    except SimlatError:
        return None  # a bad profile is reported when the windows run
    for v in model.variants:
        if v.name == svc.variant and v.cold_start is not None:
            parts = [v.cold_start.process_ready_ms, v.cold_start.setup_ms, v.cold_start.first_call_ms]
            if any(p is not None for p in parts):
                return sum(p or 0.0 for p in parts) / 1000.0
    return None


def cold_start(experiment: Experiment) -> tuple[Dist, str]:
    """The cold-start distribution (seconds) and where it comes from, in words."""
    cfg = experiment.fleet.autoscaling
    given = getattr(cfg, "cold_start_s", None)
    if given is not None:
        return given, "fleet.autoscaling.cold_start_s"
    measured = profile_cold_start_s(experiment)
    svc = experiment.service
    if measured is not None and isinstance(svc, ProfileService):
        return Constant(value=measured), (f"service profile {svc.path.name}, {svc.model}/{svc.variant} "
                                          "(process ready + setup + first call; no node provisioning)")
    return Constant(value=DEFAULT_COLD_START_S), f"default {DEFAULT_COLD_START_S:g} s (no measured cold start)"
