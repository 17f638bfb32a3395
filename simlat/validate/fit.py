"""Calibrate the simulator from the server's own measurements: service model and frontend block.

Inputs are a campaign's capacity-search probes (:func:`simlat.validate.measure.find_capacity`),
never the validation levels the prediction is compared against:

- service: ``base + per_item * items`` fitted to the back-to-back batch-time medians the server
  measured at start-up, with the samples' ratios to the fit as multiplicative noise;
- event loop: the loop thread's CPU seconds over each probe regressed on requests and batches
  (``cpu = c_req * requests + c_batch * batches``, non-negative least squares); the reply part of
  ``c_req`` is the handler's measured reply-write time at the lowest rate, the rest is ingress;
- network: client and loopback time outside the loop (send -> handler minus ingress work, plus
  reply written -> received) at the lowest rates, as an empirical distribution;
- hand-off: dispatch -> model start plus model end -> back on the loop, at the lowest rate;
- slowdown: each probe's mean in-server model time over the profile's median at the same batch
  size, against the probe's loop utilisation (loop CPU seconds / duration): a least-squares line
  (default) or the points themselves, interpolated; the per-batch ratios to the fitted slowdown
  are the model noise;
- timer slack: how much later than ``max_wait_ms`` the asyncio timer closes a batch that is not
  full (epoll waits in whole milliseconds), measured at the two lowest rates and added to the
  predicted batcher's wait.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from simlat.config.dists import Constant, Empirical
from simlat.config.frontend import EventLoopFrontend
from simlat.config.service import AffineService

MAX_SAMPLES = 4000
"""Empirical distributions keep at most this many values (their mid-point quantiles)."""


SLOWDOWN = "convex"
"""How the in-server model slowdown is fitted by default: "line", "points" or "convex"."""
SLOWDOWN_LOAD = "request_work"
"""What the slowdown is a function of by default: "loop_utilization" or "request_work"."""

SLOWDOWN_ON_HOLD = True
"""Fit the slowdown on the model's whole hold (dispatch -> back on the loop) instead of its run."""

AFTER_WARMUP = True
"""Fit the slowdown and the model noise on the batches after each probe's warm-up only."""

ITEM_COST = True
"""Fit an in-server cost per request of a batch (beyond the profile's) from the slope within each probe."""
REF_AFFINE = False
"""Take the slowdown against the affine service fit (what the simulator draws) instead of per-size medians."""

def _sub(x: np.ndarray) -> list[float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) > MAX_SAMPLES:  # mid-point quantiles: the tail keeps its frequency (the extremes do not)
        x = np.quantile(x, (np.arange(MAX_SAMPLES) + 0.5) / MAX_SAMPLES)
    return [float(v) for v in np.maximum(x, 0.0)]


def steady_medians(profile: dict) -> dict[int, float]:
    """Median back-to-back batch time (ms) per batch size from the server's start-up profile."""
    return {int(b): float(np.median(v)) for b, v in profile["steady_ms"].items()}


def fit_service(profile: dict) -> AffineService:
    """Affine fit to the back-to-back medians, with the samples' ratios to the fit as noise."""
    med = steady_medians(profile)
    b = np.array(sorted(med), dtype=float)
    y = np.array([med[int(k)] for k in b])
    coef, _ = nnls(np.column_stack([np.ones_like(b), b]), y)
    base, per = float(coef[0]), float(coef[1])
    ratios = [s / (base + per * int(k)) for k, v in profile["steady_ms"].items() for s in v]
    return AffineService(base_ms=base, per_item_ms=per, noise=Empirical(samples=_sub(np.array(ratios))))


def monotone_points(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pool adjacent violators: the least-squares non-decreasing fit to the (rho, slowdown) points.

    Pooled points sit at the mean of their utilizations, so the result is strictly increasing in
    rho and never decreasing in slowdown.
    """
    blocks: list[list[float]] = []  # [sum rho, sum slowdown, count]
    for u, m in points:
        blocks.append([u, m, 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            u2, m2, n2 = blocks.pop()
            blocks[-1] = [blocks[-1][0] + u2, blocks[-1][1] + m2, blocks[-1][2] + n2]
    return [(u / n, m / n) for u, m, n in blocks]


def _stable(probes: list[dict]) -> list[dict]:
    return [p for p in probes if p["checks"]["stable"] and p["checks"]["valid"]]


def loop_utilization(run: dict) -> float:
    """Event-loop CPU seconds over the run's duration."""
    s = run["req"]["sched"]
    return run["loop_cpu_s"] / max(float(s[-1] - s[0]), 1e-9)


def fit_frontend(probes: list[dict], profile: dict, slowdown: str | None = None,
                 load: str | None = None, hold: bool | None = None) -> tuple[EventLoopFrontend, dict]:
    """The ``frontend`` block and the timer slack (ms), from the capacity-search probes.

    ``slowdown``: "line" (least squares in the loop utilization) or "points" (the probes' own
    points, interpolated).

    Returns ``(frontend, facts)``; ``facts`` holds every fitted number for the report.
    """
    slowdown = slowdown or SLOWDOWN
    load = load or SLOWDOWN_LOAD
    hold = SLOWDOWN_ON_HOLD if hold is None else hold
    runs = _stable(probes)
    if len(runs) < 2:
        from simlat.errors import SimlatError

        raise SimlatError(f"validate: {len(runs)} stable probe(s) with a kept schedule; at least two are needed to "
                          "calibrate the frontend (lower --start-rps, or the machine is too loaded to keep the schedule)")
    runs = sorted(runs, key=lambda p: p["rate_rps"])
    n_req = np.array([len(p["req"]["sched"]) for p in runs], dtype=float)
    n_b = np.array([len(p["batch"]["size"]) for p in runs], dtype=float)
    cpu = np.array([p["loop_cpu_s"] for p in runs]) * 1e3
    (c_req, c_b), _ = nnls(np.column_stack([n_req, n_b]), cpu)
    low = runs[:2]

    def col(run, a, b):
        r = run["req"]
        m = (r["ok"] > 0) & np.isfinite(r[a]) & np.isfinite(r[b])
        return (r[b] - r[a])[m] * 1e3

    reply = float(np.median(np.concatenate([col(p, "t_resume", "t_replied") for p in low])))
    reply = min(reply, c_req)
    ingress = c_req - reply
    net = np.concatenate([col(p, "sent", "t_handler") - ingress + col(p, "t_replied", "recv") for p in low])
    # requests caught behind a stall of the whole process (the model thread holding the interpreter
    # lock for tens of ms) are not transport time: they are the stall, which the model noise carries
    net = net[net <= 5 * np.median(net)]
    hand = np.concatenate([
        (p["batch"]["t_model_start"] - p["batch"]["t_dispatch"]) * 1e3
        + (p["batch"]["t_back"] - p["batch"]["t_model_end"]) * 1e3 for p in low])

    med = steady_medians(profile)
    if REF_AFFINE:
        svc = fit_service(profile)
        med = {b: svc.base_ms + svc.per_item_ms * b for b in med}
    held, sizes = [], []
    for p in runs:
        b = p["batch"]
        if AFTER_WARMUP:  # the batches the compared requests meet: the probe's warm-up is left out
            keep = b["t_dispatch"] >= p["req"]["sched"][0] + p["warmup_s"]
            b = {k: v[keep] for k, v in b.items()}
        if hold:  # the whole hold, less the hand-off with an idle loop (the simulator adds that draw)
            t = np.maximum((b["t_back"] - b["t_dispatch"]) * 1e3 - float(np.median(hand)), 1e-3)
        else:
            t = (b["t_model_end"] - b["t_model_start"]) * 1e3
        held.append(t)
        sizes.append(b["size"])
    item = 0.0
    if ITEM_COST:  # in-server time per request of a batch beyond the profile: the slope within each probe
        num = sum(float(np.sum((t - t.mean()) * (z - z.mean()))) for t, z in zip(held, sizes, strict=True))
        den = sum(float(np.sum((z - z.mean()) ** 2)) for z in sizes)
        item = max(0.0, num / den) if den > 0 else 0.0
    rho, mean_ratio, per_batch = [], [], []
    for p, t, z in zip(runs, held, sizes, strict=True):
        ref = np.array([med[int(k)] for k in z])
        ratio = np.maximum(t - item * z, 1e-3) / ref
        if load == "request_work":  # the per-request loop work at the probe's offered rate
            s = p["req"]["sched"]
            rho.append(c_req * 1e-3 * len(s) / max(float(s[-1] - s[0]), 1e-9))
        else:
            rho.append(loop_utilization(p))
        mean_ratio.append(float(np.mean(ratio)))
        per_batch.append(ratio)
    rho_a, mr = np.array(rho), np.array(mean_ratio)
    (s0, s1), _ = nnls(np.column_stack([np.ones_like(rho_a), rho_a]), mr)
    order = np.argsort(rho_a)
    points = []
    for u, m in zip(rho_a[order], mr[order], strict=True):  # one point per distinct utilization
        if points and u <= points[-1][0] + 1e-3:
            points[-1] = ((points[-1][0] + u) / 2, (points[-1][1] + m) / 2)
        else:
            points.append((float(u), float(m)))
    if slowdown == "convex":
        points = monotone_points(points)
    if slowdown in ("points", "convex"):
        slow = np.interp(rho_a, [p[0] for p in points], [p[1] for p in points])
    else:
        slow = s0 + s1 * rho_a
    noise = np.concatenate([r / f for r, f in zip(per_batch, slow, strict=True)])
    noise = noise / noise.mean()

    slack = []
    for p in low:  # at low rates the model is idle when a batch closes: its wait is the timer's

        r, b = p["req"], p["batch"]
        ok = np.isfinite(r["batch_id"]) & np.isfinite(r["t_enq"])
        if not ok.any():
            continue
        first_enq = {}
        for bid, te in zip(r["batch_id"][ok].astype(int), r["t_enq"][ok], strict=True):
            first_enq[bid] = min(te, first_enq.get(bid, np.inf))
        for bid, td in zip(b["batch_id"].astype(int), b["t_dispatch"], strict=True):
            if bid in first_enq:
                slack.append((td - first_enq[bid]) * 1e3)
    fe = EventLoopFrontend(
        ingress_ms=Constant(value=float(ingress)),
        batch_ms=Constant(value=float(c_b)),
        reply_ms=Constant(value=float(reply)),
        network_ms=Empirical(samples=_sub(net)),
        handoff_ms=Empirical(samples=_sub(hand)),
        slowdown_base=max(float(s0), 1e-6),
        slowdown_per_loop_utilization=float(s1),
        slowdown_points=points if slowdown in ("points", "convex") else None,
        slowdown_load=load,
        slowdown_includes_loop_wait=bool(hold),
        item_ms=item,
        model_noise=Empirical(samples=_sub(noise)),
    )
    facts = {
        "probes_used": [round(p["rate_rps"]) for p in runs],
        "loop_ms_per_request": float(c_req), "loop_ms_per_batch": float(c_b),
        "ingress_ms": float(ingress), "reply_ms": float(reply),
        "network_ms_median": float(np.median(net)), "handoff_ms_median": float(np.median(hand)),
        "slowdown_base": float(s0), "item_ms": item, "slowdown_per_loop_utilization": float(s1),
        "probe_loop_utilization": [round(float(u), 3) for u in rho],
        "probe_model_ratio": [round(float(x), 2) for x in mean_ratio],
        "batch_close_wait_ms": slack,
    }
    return fe, facts


def timer_slack_ms(facts: dict, max_wait_ms: float) -> float:
    """Median overshoot of a batch's close over ``max_wait_ms`` among batches that waited the full window."""
    w = np.asarray(facts.pop("batch_close_wait_ms"), dtype=float)
    if max_wait_ms <= 0 or len(w) == 0:
        return 0.0
    full = w[w >= max_wait_ms * 0.999]
    return float(np.mean(full - max_wait_ms)) if len(full) else 0.0
