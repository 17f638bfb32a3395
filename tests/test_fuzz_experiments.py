"""Property: over the whole experiment space, plausible and hostile values alike, loading and running
an experiment either succeeds or raises :class:`simlat.errors.SimlatError`; nothing else escapes.

Bounded for CI: a fixed number of examples of short runs (about 20 s on 2 cores), and a
per-example cap on requests.
"""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simlat.api import run
from simlat.config import parse_experiment
from simlat.errors import SimlatError

# Numbers: mostly plausible, sometimes hostile (zero, negative, huge, tiny, inf, nan, a bool, text).
HOSTILE = st.sampled_from([0, -1, -0.5, 1e-300, 1e300, math.inf, -math.inf, math.nan, True, "x", None, [], {}])


HOSTILE_TEXT = st.sampled_from(["../x", "", "/abs", "x" * 200, "nope", "\x00", "1e400"])


def num(lo: float, hi: float) -> st.SearchStrategy:
    """A plausible float; hostile values come from :func:`mutate`."""
    return st.floats(lo, hi)


def count(lo: int, hi: int) -> st.SearchStrategy:
    return st.integers(lo, hi)


def pick(valid: list, hostile: list) -> st.SearchStrategy:
    """One of ``valid``; ``hostile`` ones come from :func:`mutate`."""
    return st.sampled_from(valid)


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    yield path


def mutate(draw, data: dict) -> dict:
    """Set 0 to 2 random places of ``data`` (a value, a block, a list entry) to a hostile value."""
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2]))):
        paths = [p for p in _leaves(data) if p]
        path = draw(st.sampled_from(paths))
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = draw(st.one_of(HOSTILE, HOSTILE_TEXT))
    return data


def dist(lo: float = 0.0, hi: float = 2.0) -> st.SearchStrategy:
    return st.one_of(
        st.fixed_dictionaries({"kind": st.just("constant"), "value": num(lo, hi)}),
        st.fixed_dictionaries({"kind": st.just("exponential"), "mean": num(0.01, hi)}),
        st.fixed_dictionaries({"kind": st.just("gamma"), "mean": num(0.01, hi), "cv": num(0.1, 3)}),
        st.fixed_dictionaries({"kind": st.just("lognormal"), "median": num(0.01, hi), "sigma": num(0, 1.5)}),
        st.fixed_dictionaries({"kind": st.just("uniform"), "low": num(lo, hi), "high": num(lo, hi)}),
        st.fixed_dictionaries({"kind": st.just("choice"), "values": st.lists(num(lo, hi), min_size=1, max_size=3)}),
    )


RATE = num(1.0, 5000.0)
ARRIVALS = st.one_of(
    st.fixed_dictionaries({"kind": st.just("poisson"), "rate_rps": RATE}),
    st.fixed_dictionaries({"kind": st.just("deterministic"), "rate_rps": RATE}),
    st.fixed_dictionaries({"kind": st.just("gamma"), "rate_rps": RATE, "cv": num(0.1, 4)}),
    st.fixed_dictionaries({"kind": st.just("mmpp"), "rates_rps": st.lists(num(0, 3000), min_size=1, max_size=3),
                           "mean_durations_s": st.lists(num(0.001, 2), min_size=1, max_size=3)}),
    st.fixed_dictionaries({"kind": st.just("on_off"), "on_rate_rps": RATE, "mean_on_s": num(0.001, 1),
                           "mean_off_s": num(0.001, 1)}),
    st.fixed_dictionaries({"kind": st.just("diurnal"), "mean_rate_rps": RATE, "amplitude": num(0, 1),
                           "period_s": num(0.01, 100)}),
    st.fixed_dictionaries({"kind": st.just("rate_curve"), "points": st.lists(
        st.tuples(num(0, 10), num(0, 3000)), min_size=1, max_size=4)}),
    st.fixed_dictionaries({"kind": st.just("spike"), "base_rate_rps": RATE, "spike_rate_rps": RATE,
                           "start_s": num(0, 1), "duration_s": num(1e-12, 1), "ramp_s": num(0, 0.5)}),
    st.fixed_dictionaries({"kind": st.just("closed_loop"), "clients": count(1, 20), "think_time_ms": dist()}),
)
SERVICE = st.one_of(
    st.fixed_dictionaries({"kind": st.just("deterministic"), "ms": num(0.01, 3)}),
    st.fixed_dictionaries({"kind": st.just("exponential"), "mean_ms": num(0.01, 3)}),
    st.fixed_dictionaries({"kind": st.just("lognormal"), "median_ms": num(0.01, 3), "sigma": num(0, 1.5)}),
    st.fixed_dictionaries({"kind": st.just("empirical"), "samples_ms": st.lists(num(0.01, 3), min_size=1, max_size=4)}),
    st.fixed_dictionaries({"kind": st.just("affine"), "base_ms": num(0, 2), "per_item_ms": num(0, 0.1),
                           "noise": st.one_of(st.none(), dist(0.5, 1.5))}),
)
BATCHING = st.one_of(
    st.just({"kind": "none"}),
    st.fixed_dictionaries({"kind": st.just("dynamic"), "max_batch_size": count(1, 32), "max_wait_ms": num(0, 3),
                           "dispatch": pick(["on_close", "on_free"], ["sometimes"])}),
    st.fixed_dictionaries({"kind": st.just("adaptive"), "max_batch_size": count(1, 32), "max_wait_ms": num(0, 3),
                           "min_wait_ms": num(0, 1)}),
)
FLEET = st.fixed_dictionaries({
    "replicas": count(1, 6),
    "balancer": pick(["round_robin", "random", "join_shortest_queue", "power_of_two"], ["psychic"]),
    "queue": st.sampled_from(["shared", "per_replica"]),
})
CACHE = st.one_of(
    st.none(),
    st.fixed_dictionaries({"l1": st.fixed_dictionaries({"capacity": count(1, 5000)})}),
    st.fixed_dictionaries({"l1": st.fixed_dictionaries({"capacity": count(1, 5000)}),
                           "hit_ratio": st.fixed_dictionaries({"l1": num(0, 1)})}),
)
FRONTEND = st.one_of(st.none(), st.fixed_dictionaries({
    "kind": st.just("event_loop"), "ingress_ms": dist(0, 0.3), "reply_ms": dist(0, 0.3),
    "slowdown_base": num(0.5, 2)}))


@st.composite
def experiments(draw) -> dict:
    data = {
        "name": draw(pick(["fuzz", "a b"], ["../x", "", "/abs", "x" * 200])),
        "workload": {"arrivals": draw(ARRIVALS),
                     "items_per_request": draw(st.one_of(count(1, 50), dist(1, 20)))},
        "fleet": draw(FLEET),
        "batching": draw(BATCHING),
        "service": draw(SERVICE),
        "slo": {"latency_ms": draw(num(0.1, 100)), "percentile": draw(num(50, 99.9))},
        "run": {"requests": draw(count(100, 400)), "seed": draw(count(0, 2**31)),
                "warmup_fraction": draw(num(0, 0.5))},
        "admission": draw(st.one_of(st.just({}), st.fixed_dictionaries({"queue_capacity": count(1, 100)}),
                                    st.fixed_dictionaries({"timeout_ms": num(0.1, 50)}))),
        "overheads": {"network_rtt_ms": draw(dist(0, 1))},
    }
    cache = draw(CACHE)
    if cache is not None:
        data["cache"] = cache
        data["workload"]["keys"] = {"kind": "zipf", "key_space": draw(count(1, 10_000)), "exponent": draw(num(0, 2))}
    frontend = draw(FRONTEND)
    if frontend is not None:
        data["frontend"] = frontend
    return mutate(draw, data)


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(experiments())
def test_only_simlat_errors_escape(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exp = parse_experiment(data)
            requests = exp.run.requests if exp.workload.arrivals.kind != "closed_loop" else 200
            run(exp, requests=min(requests or 200, 400))
            OUTCOMES["ran"] += 1
        except SimlatError as err:
            OUTCOMES["refused"] += 1
            OUTCOMES.setdefault("why", []).append(str(err).splitlines()[-1][:100])


OUTCOMES = {"ran": 0, "refused": 0}


def test_the_property_reached_the_engine():
    """Run after the property (file order): a fuzzer that only ever hit validation proves little."""
    if OUTCOMES["ran"] + OUTCOMES["refused"] == 0:
        pytest.skip("the property test did not run in this session")
    assert OUTCOMES["ran"] >= 50, {k: v for k, v in OUTCOMES.items() if k != "why"}


GRID_PATHS = st.sampled_from(["fleet.replicas", "batching.max_batch_size", "service.ms", "run.seed", "slo.latency_ms",
                              "workload.arrivals.rate_rps", "fleet.balancer", "sweep.grid", "name", "nope.nothing",
                              "fleet", "workload.arrivals", "bad path", ""])
GRID_VALUES = st.one_of(st.integers(-2, 64), st.floats(allow_nan=True, allow_infinity=True), HOSTILE, HOSTILE_TEXT,
                        st.sampled_from(["round_robin", "random", {"kind": "poisson", "rate_rps": 10.0}]))


@pytest.mark.timeout(60)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(experiments(), st.dictionaries(GRID_PATHS, st.lists(GRID_VALUES, max_size=4), max_size=3),
       st.one_of(st.none(), st.integers(-1, 20), HOSTILE))
def test_sweep_grids_expand_or_refuse(data, grid, max_configs):
    """Any grid over any experiment expands or is refused with a SimlatError (no simulation runs)."""
    from simlat.sweep.grid import expand

    data = {**data, "sweep": {"grid": grid, "cost_per_replica_hour": 1.0}}
    if max_configs is not None:
        data["sweep"]["max_configs"] = max_configs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expand(parse_experiment(data))
        except SimlatError:
            pass
