"""A day under an autoscaling policy (``simlat day``): two engines.

``simlat day --engine exact`` (:func:`simlat.autoscale.stream.simulate_day_exact`) runs the day as ONE
event-level simulation, streamed segment by segment: one shared queue carried through the day,
replicas joining when ready and draining when removed, the policy closed-loop on the simulated
utilisation, per-window statistics from latency histograms (see :mod:`simlat.autoscale.stream`).

The default, ``--engine quasi-static`` (:func:`simulate_day`), is the first approximation below.

The day is cut into windows (default 60 s). Each window is simulated alone with the existing engine
(:func:`simlat.api.run`) at that window's mean offered rate, as a stationary Poisson stream, with the
replicas ready at the window's start, for at most ``requests_per_window`` requests. The policy
(:mod:`simlat.autoscale.policy`) sees the previous window's observation (utilisation, concurrency,
queue length) and asks for replicas, which become ready after their cold start
(:mod:`simlat.autoscale.coldstart`). See :mod:`simlat.autoscale.day` for the loop,
:mod:`simlat.autoscale.metrics` for how compliance, replica-hours, cost and recovery are computed from
the window table, and :mod:`simlat.autoscale.sweep` for the sweep over policy parameters.

What the approximation misses (so its numbers are not exact):

- queues carried across windows: each window starts empty, so the backlog left by an overloaded
  window (and the latency it adds to the next ones) is lost; recovery after a spike is optimistic;
- within-window transients: the rate is the window's mean, so a ramp or a spike shorter than a window
  is smoothed away, and a replica becoming ready mid-window serves from the next window only;
- the bounded run per window: a window at 50,000 req/s for 60 s offers 3M requests, but at most
  ``requests_per_window`` are simulated (the percentiles' intervals say what that is worth);
- arrivals inside a window are Poisson at the mean rate whatever the workload's kind.

Measured against one event-level engine run through the day (fixed replicas, where the engine
already follows a rate curve; ``tests/test_autoscale.py``): windowed p99s within -10%..+21% on a slow
ramp from 25% to 75% utilisation; after one overloaded minute the exact next minute's p99 is seconds
where the quasi-static day reports milliseconds.

The exact engine removes these three approximations; it does not model the serving stack
(``frontend``), caches, admission control or per-replica queues (refused or, for ``frontend``, left
out with a warning).
"""

from simlat.autoscale.day import DayResult, DaySummary, simulate_day

__all__ = ["DayResult", "DaySummary", "simulate_day", "simulate_day_exact"]


def simulate_day_exact(experiment, **kwargs):
    """:func:`simlat.autoscale.stream.simulate_day_exact` (imported when called)."""
    from simlat.autoscale.stream import simulate_day_exact as run

    return run(experiment, **kwargs)
