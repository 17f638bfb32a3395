"""A new replica's delay to ready: the configured distribution, else the service profile's measured
cold start of the variant, else :data:`simlat.config.autoscaling.DEFAULT_COLD_START_S`.

From the profile, in order of preference:

1. ``cold_start.replica``: a real serving replica (e.g. Triton) started and timed from outside to its
   first correct answer (``simlat validate --cold-start``, folded in with ``simlat profile merge``);
   the mean of the measured starts (the first with cold caches, later ones warm);
2. the calibration worker's process costs (``process_ready_ms + setup_ms + first_call_ms``): the
   model's own start, without the serving stack's (server start, its warm-up).

Either measures the process, not the machine: provisioning a node or pulling an image is not in it,
so a profile-derived cold start is a lower bound for a new GPU host.
"""

from __future__ import annotations

from simlat.config import Experiment
from simlat.config.autoscaling import DEFAULT_COLD_START_S
from simlat.config.dists import Constant, Dist
from simlat.config.service import ProfileService
from simlat.errors import SimlatError


def profile_cold_start(experiment: Experiment) -> tuple[float, str] | None:
    """Seconds from process start to the first call served, from the service profile, and what they
    are; None when the service is not a profile or the variant recorded no cold start."""
    cs = _variant_cold_start(experiment)  # None too for a bad profile: reported when the windows run
    if cs is None:
        return None
    rep = cs.replica
    if rep is not None:
        starts = ", ".join(f"{s:.1f}" for s in rep.ready_s)
        return (sum(rep.ready_s) / len(rep.ready_s),
                f"{rep.server} replica start measured from outside: mean of {len(rep.ready_s)} ({starts} s)")
    parts = [cs.process_ready_ms, cs.setup_ms, cs.first_call_ms]
    if any(p is not None for p in parts):
        return sum(p or 0.0 for p in parts) / 1000.0, "process ready + setup + first call; no serving stack"
    return None


def profile_cold_start_s(experiment: Experiment) -> float | None:
    """Seconds of :func:`profile_cold_start`, or None."""
    got = profile_cold_start(experiment)
    return None if got is None else got[0]


def cold_start(experiment: Experiment) -> tuple[Dist, str]:
    """The cold-start distribution (seconds) and where it comes from, in words."""
    cfg = experiment.fleet.autoscaling
    given = getattr(cfg, "cold_start_s", None)
    if given is not None:
        return given, "fleet.autoscaling.cold_start_s"
    measured = profile_cold_start(experiment)
    svc = experiment.service
    if measured is not None and isinstance(svc, ProfileService):
        return Constant(value=measured[0]), (f"service profile {svc.path.name}, {svc.model}/{svc.variant} "
                                             f"({measured[1]}; no node provisioning)")
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
    """How long a new replica's first batch takes at least (ms; the exact day engine,
    :mod:`simlat.autoscale.stream`); None when not measured. From a measured replica start: its first
    request's latency beyond the steady median (the server warmed itself before its first answer);
    else the calibration worker's first call of the variant (which compiles, when the variant does)."""
    cs = _variant_cold_start(experiment)
    if cs is None:
        return None
    rep = cs.replica
    if rep is not None and rep.first_request_ms:
        return max(0.0, sum(rep.first_request_ms) / len(rep.first_request_ms) - rep.steady_p50_ms)
    return None if cs.first_call_ms is None else float(cs.first_call_ms)


def ready_delay(experiment: Experiment) -> tuple[Dist, str]:
    """The delay to ready (s) for the exact day engine, which times the first call as the new
    replica's first batch: a profile-derived cold start then leaves the first call out (it would be
    counted twice); a configured ``cold_start_s`` is used as given."""
    dist, source = cold_start(experiment)
    fc = first_call_ms(experiment)
    measured_replica = "replica start measured" in source  # its first answer is already in its ready time
    if source.startswith("service profile") and fc is not None and isinstance(dist, Constant) and not measured_replica:
        return Constant(value=max(0.0, dist.value - fc / 1000.0)), source.replace(
            "process ready + setup + first call", "process ready + setup; the first call is the first batch")
    return dist, source
