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


def _variant_cold_start(experiment: Experiment):
    """The service profile variant's ``cold_start`` record, or None."""
    svc = experiment.service
    if not isinstance(svc, ProfileService):
        return None
    from simlat.profiles.schema import load_profile

    try:
        model = load_profile(svc.path).model(svc.model)
    except SimlatError:
        return None
    for v in model.variants:
        if v.name == svc.variant:
            return v.cold_start
    return None


def first_call_ms(experiment: Experiment) -> float | None:
    """The profile's measured first call of the variant (ms): a new replica's first batch takes at
    least this long (the exact day engine, :mod:`simlat.autoscale.stream`); None when not measured."""
    cs = _variant_cold_start(experiment)
    return None if cs is None or cs.first_call_ms is None else float(cs.first_call_ms)


def ready_delay(experiment: Experiment) -> tuple[Dist, str]:
    """The delay to ready (s) for the exact day engine, which times the first call as the new
    replica's first batch: a profile-derived cold start then leaves the first call out (it would be
    counted twice); a configured ``cold_start_s`` is used as given."""
    dist, source = cold_start(experiment)
    fc = first_call_ms(experiment)
    if source.startswith("service profile") and fc is not None and isinstance(dist, Constant):
        return Constant(value=max(0.0, dist.value - fc / 1000.0)), source.replace(
            "process ready + setup + first call", "process ready + setup; the first call is the first batch")
    return dist, source
