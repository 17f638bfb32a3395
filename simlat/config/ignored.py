"""Settings that do nothing in the experiment as written: said out loud, never ignored silently."""

from __future__ import annotations

from simlat.config.experiment import Experiment


def ignored_settings(experiment: Experiment) -> list[str]:
    """One sentence per setting given in the file that has no effect on the simulation."""
    out = []
    fleet = experiment.fleet
    # Only a balancer other than the default can have been meant (a copied or swept config sets every field).
    if fleet.queue == "shared" and fleet.balancer != type(fleet).model_fields["balancer"].default:
        out.append(
            f"fleet.balancer: {fleet.balancer!r} is ignored with fleet.queue: shared (a free replica takes "
            "the next batch from the one queue); set queue: per_replica to use a balancer"
        )
    if fleet.autoscaling is not None:
        out.append(
            f"fleet.autoscaling ({fleet.autoscaling.kind}) is used by simlat day only; this run holds "
            f"fleet.replicas ({fleet.replicas}) fixed"
        )
    return out


def ignored_sweep_params(experiment: Experiment, configs) -> list[str]:
    """Swept paths that cannot change any configuration's results (the balancer under a shared queue)."""
    sweep = experiment.sweep
    if sweep is None:
        return []
    out = []
    if "fleet.balancer" in sweep.params and all(c.experiment.fleet.queue == "shared" for c in configs):
        out.append(
            "fleet.balancer is swept but every configuration has fleet.queue: shared, where the balancer is "
            "not used: its values give identical results"
        )
    return out
