"""The serving stack in front of the model, as a resource: an event loop with capacity.

Model latency is not system latency. A Python serving process (an HTTP server with an asyncio
batcher and a model thread) spends CPU on every request and every batch in ONE event loop that
serves one thing at a time, and its model thread shares the interpreter lock with that loop, so
the model runs slower in the server than back to back. The ``frontend`` block describes those
costs; :mod:`simlat.engine.frontend` simulates them as queueing stages in series with the batcher
and the model. Calibrate it from a real server (``simlat validate`` measures every field).

Times in ms. The loop serves, first come first served:
- ``ingress_ms`` per request on arrival (read the socket, parse HTTP and the body, hand the
  request to the batcher); the batcher sees the request when this is done;
- ``batch_ms`` per batch when it is dispatched (forming it, stacking the inputs, the executor
  hand-off and its callback);
- ``reply_ms`` per request when its batch finishes, one after another (the replies of one batch
  leave in series).
Outside the loop: ``network_ms`` per request (client work and loopback, both ways), and
``handoff_ms`` per batch (waking the model thread and handing the result back: the replica is
held, the loop is not).

The model's in-server time per batch is the service draw times the slowdown at the loop's busy
fraction rho (the interpreter-lock contention): ``slowdown_base + slowdown_per_loop_utilization *
rho``, or interpolated in measured ``slowdown_points``; times a ``model_noise`` draw (mean 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, field_validator

from simlat.config.base import StrictModel
from simlat.config.dists import ZERO, Dist


class EventLoopFrontend(StrictModel):
    """One event loop (single server) in series with the batcher and the model; see the module doc."""

    kind: Literal["event_loop"] = "event_loop"
    ingress_ms: Dist = ZERO
    batch_ms: Dist = ZERO
    reply_ms: Dist = ZERO
    network_ms: Dist = ZERO
    handoff_ms: Dist = ZERO
    slowdown_base: float = Field(default=1.0, gt=0, description="In-server / back-to-back model time with an idle loop.")
    slowdown_per_loop_utilization: float = Field(default=0.0, ge=0, description="Added per unit of loop utilization.")
    slowdown_points: list[tuple[NonNegativeFloat, PositiveFloat]] | None = Field(
        default=None,
        description="Measured (loop utilization, slowdown) points, interpolated linearly and held flat beyond "
        "the ends; when given, they replace slowdown_base and slowdown_per_loop_utilization.",
    )
    slowdown_load: Literal["loop_utilization", "request_work"] = Field(
        default="loop_utilization",
        description="What the slowdown's rho is: the loop's simulated busy fraction (ingress, batch and reply "
        "work; it depends on the simulated batch sizes), or the per-request loop work over the run "
        "(ingress + reply per request times the arrival rate: fixed by the offered load).",
    )
    slowdown_includes_loop_wait: bool = Field(
        default=False,
        description="The slowdown was measured on the whole hold of the model (dispatch -> result back on the "
        "loop, less the idle-loop hand-off): the replica is not held further for the simulated loop's wait.",
    )
    item_ms: NonNegativeFloat = Field(
        default=0.0, description="In-server model time per request of the batch, beyond the profile's (not scaled).")
    model_noise: Dist | None = Field(default=None, description="Multiplicative noise on the in-server model time (mean ~1).")
    iterations: int = Field(default=6, ge=1, le=50, description="Fixed-point passes between the loop and the batcher.")


    @field_validator("slowdown_points")
    @classmethod
    def _increasing(cls, v):
        if v is not None and any(b[0] <= a[0] for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("loop utilizations must be strictly increasing")
        return v

    def slowdown(self, rho: float) -> float:
        """The in-server model slowdown at loop utilization ``rho``."""
        if self.slowdown_points:
            xs, ys = zip(*self.slowdown_points, strict=True)
            return float(np.interp(rho, xs, ys))
        return self.slowdown_base + self.slowdown_per_loop_utilization * rho


class ProfileFrontend(StrictModel):
    """A serving stack measured from outside (``simlat calibrate --endpoint``): a serving profile.

    The profile holds the fitted stack (pure delay, per-batch and per-request costs, an optional
    serial loop) and its uncertainty (run-to-run spread, fit residual), which the prediction
    interval uses. ``path`` is resolved against the experiment file's folder.
    """

    kind: Literal["profile"] = "profile"
    path: Path


Frontend = Annotated[EventLoopFrontend | ProfileFrontend, Field(discriminator="kind")]
"""The frontend family: a hand-described event loop, or a measured serving profile."""
