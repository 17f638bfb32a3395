"""Metrics: from per-request records to a :class:`Summary` with honest confidence intervals.

Computed after the run from the flat record table (never inside the event loop).

Warm-up
    The first ``run.warmup_fraction`` of each replication's requests, in arrival order, are dropped.

Confidence intervals (the method, and why)
    Latencies of consecutive requests are strongly autocorrelated at high load: at utilisation 0.9 an
    M/M/1 p99 from 1M requests scatters about 17x more between seeds than independent samples would,
    so the binomial (order-statistic) interval and plain sectioning are far too narrow on realistic
    run lengths. We use **batch means of the CDF at the estimate, inverted through the empirical
    quantile function** (Heidelberger & Lewis, "Quantile estimation in dependent sequences",
    Operations Research 32(1), 1984; batch means as in Law & Carson, Operations Research 27(5), 1979):

    1. Split each replication's measured requests (arrival order) into contiguous sections; with R
       replications, ``ceil(TARGET_SECTIONS / R)`` sections each, so replications act as independent
       sections (R >= TARGET_SECTIONS gives one section per replication). TARGET_SECTIONS = 10:
       few, long sections, because the batch-means variance is biased low when sections are not much
       longer than the correlation time (Schmeiser 1982 recommends 10 to 30 batches; at utilisation
       0.9 with 200k requests, 20 sections covered 90% and 10 covered 92%, measured over 1000 seeds).
    2. For the pooled estimate ``x = Q(q)``, each section's fraction ``f_j`` of latencies <= x is a
       batch mean of an indicator; a Student-t interval with K-1 degrees of freedom for the CDF at x is
       ``q +- t * s_f / sqrt(K)``.
    3. The latency interval is ``[Q(q - h), Q(q + h)]`` on the pooled sample: asymmetric, as the
       sampling distribution of a tail quantile is (right-skewed). No density estimate is needed.
    4. Lag-1 check (Law & Carson): if the section fractions are positively autocorrelated
       (lag-1 > 1.645/sqrt(K)), adjacent sections are merged pairwise while K stays >= MIN_SECTIONS.

    The mean's interval uses the same sections (classical batch means, Student-t).
    Measured coverage of the exact M/M/1 sojourn p99 (numpy Lindley recursion, 10% warm-up; see
    tests/test_ci_coverage.py), nominal 95%:
      utilisation 0.5,  20k requests: 94.6% (1000 seeds)
      utilisation 0.9,   1M requests: 95.3% (300 seeds)
      utilisation 0.9,  10 replications of 100k: 94.0% (300 seeds)
      utilisation 0.9, 400k requests: 93.0% (600 seeds)
      utilisation 0.9, 200k requests: 91.5% (1000 seeds)   <- slightly short: ~7 independent tail events
      utilisation 0.95, 200k requests: 87% (500 seeds)     <- these runs mostly carry the warning below
    (the test's own 200-seed draws give 92.5%, 92.5% and 90.5% for the first three rows). For
    comparison at 0.9 / 200k: sectioning of section quantiles centred on the pooled estimate
    (Nakayama 2014) with 20 sections covered 85%, the binomial order-statistic interval 9%. Misses
    are mostly runs that saw no long busy period (estimate and interval both low); no interval built
    from the run itself can see a tail event the run did not contain, so short runs get a warning
    (see below) rather than a wider, made-up interval.

Probability that the SLO is met
    The SLO (percentile ``p``, bound ``L``) holds iff ``F(L) >= p``, with dropped requests counted as
    missing it. With ``g`` the pooled fraction of requests within ``L`` and ``s_f`` the batch-means
    standard deviation of the CDF at the p-quantile estimate (the one behind ``slo_ci_ms``),
    ``P = T_{K-1}((g - p) / (s_f / sqrt(K)))``: the confidence-distribution probability that the true
    fraction reaches p, i.e. the one-sided confidence level at which the run verifies the SLO. Using
    the same standard error keeps it consistent with ``slo_ci_ms``: a bound above the interval gives
    P > 0.975, one inside it a probability in between. Measured calibration with the bound exactly
    at the true p99 (M/M/1 at utilisation 0.5 with 20k requests, 1000 seeds): mean P 0.50, P > 0.975 in 3.2% of
    runs and P < 0.025 in 2.2% (nominal 2.5% each); at 0.9 with 1M requests (200 seeds): mean 0.53,
    4.5% and 1.5%: slightly optimistic, from the runs that miss a tail event.

Sample-size warnings
    - Rule of 100 tail samples: percentile p needs ``n * (1 - p) >= 100`` completed requests above it,
      i.e. n >= 100 / (1 - p) (10,000 for p99, 100,000 for p99.9).
    - Autocorrelated tails: the variance inflation ``tau = s_f^2 / (q (1 - q) / n)`` gives about
      ``n (1 - q) / tau`` independent tail observations; below MIN_EFFECTIVE_TAIL the estimate is
      rough and its interval approximate (the short-run coverage figures above), and the warning says
      how many requests would give 2 * MIN_EFFECTIVE_TAIL.

Caches
    With a cache, ``cache_hit_ratio`` is the fraction of cache lookups (a request's items with
    ``per_item``, else one per request) answered by either level, over the measured requests (after
    warm-up, pooled over replications); ``cache_l1_hit_ratio`` the fraction answered by L1;
    ``cache_l2_hit_ratio`` the fraction of the lookups that reached L2 (missed L1) that it
    answered. The cache stage's warnings (caches still warming up) join the summary's.

Stability
    A run is unstable (percentiles None, never a finite p99) when either the offered rate (the arrival
    process's configured mean rate where it has one, not the rate one seed realised) is at or above
    the engine's capacity estimate with nothing bounding the queue (no queue capacity or timeout), or the queue grows through the run: over TREND_SECTIONS sections of the measured
    window, the last section's mean latency is > 1.5x the middle sections' median and Kendall's tau of
    the section means against time is > 0.6, in a majority of replications (calibrated on M/M/1:
    0-1% false alarms at utilisation 0.95, 100% detection at 1.05 from 200k requests). For
    time-varying arrivals (diurnal, rate curve, spike, trace) latency may legitimately follow the
    rate, so the trend only warns there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from simlat.config import Experiment
    from simlat.config.cache import Cache
    from simlat.engine.records import CacheCounts, Records, SimResult

TARGET_SECTIONS = 10
MIN_SECTIONS = 5
MIN_TAIL_SAMPLES = 100
MIN_EFFECTIVE_TAIL = 5.0
TREND_SECTIONS = 10
TREND_RATIO = 1.5
TREND_KENDALL = 0.6
LEVEL = 0.95
TIME_VARYING = frozenset({"diurnal", "rate_curve", "spike", "trace"})  # trend is only a warning there
REPORTED = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
CI_METHOD = "batch means of the CDF at the estimate, inverted through the empirical quantile (Student-t)"

Interval = tuple[float, float]

DECOMPOSITION = ("queue_wait_ms", "batch_wait_ms", "service_ms", "overhead_ms", "cache_ms", "reply_ms")
"""The parts of a request's latency: record columns, and the Summary's and sweep rows' means of them."""


class Summary(BaseModel):
    """Latency percentiles with 95% intervals, throughput, SLO verdict and diagnostics of one experiment.

    Percentiles are of completed requests after warm-up. For unstable runs every percentile, the mean
    and the SLO estimate are None: a growing queue has no finite p99.

    The latency decomposition (:data:`DECOMPOSITION`: ``queue_wait_ms``, ``batch_wait_ms``,
    ``service_ms``, ``overhead_ms``, ``cache_ms``) carries the per-request record columns' names and
    holds each column's mean over the completed requests after warm-up (None when none completed).
    The sweep's rows (:class:`simlat.sweep.evaluate.Evaluation`) use the same names.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="null")

    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    mean_ms: float | None
    p50_ci_ms: Interval | None
    p90_ci_ms: Interval | None
    p95_ci_ms: Interval | None
    p99_ci_ms: Interval | None
    p999_ci_ms: Interval | None
    mean_ci_ms: Interval | None
    throughput_rps: float
    goodput_rps: float
    drop_rate: float
    utilization: list[float]
    slo_percentile: float
    slo_latency_ms: float
    slo_estimate_ms: float | None
    slo_ci_ms: Interval | None
    slo_met_probability: float
    stable: bool
    requests: int
    completed: int
    replications: int
    offered_rps: float | None
    capacity_rps: float | None
    warnings: list[str]
    batch_size_hist: dict[int, int]
    mean_batch_size: float | None
    queue_wait_ms: float | None
    batch_wait_ms: float | None
    service_ms: float | None
    overhead_ms: float | None
    cache_ms: float | None
    reply_ms: float | None = None
    cache_hit_ratio: float | None = None
    cache_l1_hit_ratio: float | None = None
    cache_l2_hit_ratio: float | None = None
    ci_method: str = CI_METHOD
    ci_sections: int = 0
    slo_simulation_probability: float | None = None
    """P(SLO met) from the simulation interval alone (simulation noise only)."""
    prediction_interval_ms: Interval | None = None
    """90% prediction interval of the SLO percentile a real run will measure (:mod:`simlat.uncertainty`):
    simulation noise plus calibration, the serving stack's run-to-run spread and its fit. None without
    a measured serving stack (``frontend: {kind: profile}``)."""
    prediction_parts: dict[str, float] | None = None
    """The prediction interval's parts, each an sd of log latency."""
    prediction_basis: str = "simulation"
    """``serving profile <file>``, or ``model profile only`` (no serving stack measured)."""
    tenants: dict[str, Summary] = {}
    """The other models on the same GPUs (``colocated``), by name: each one's own summary, SLO
    and verdict (its ``slo_*`` fields are its own SLO's)."""


# ---------------------------------------------------------------------------------------------------
# Statistics on arrival-ordered samples (one array per replication)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval; ``effective_tail`` is set for quantiles (see module doc)."""

    value: float
    low: float
    high: float
    sections: int
    effective_tail: float | None = None

    @property
    def interval(self) -> Interval:
        return (self.low, self.high)


class Sample:
    """Arrival-ordered samples of one statistic, one array per replication, cut into sections.

    Values may be +inf (a dropped request when judging an SLO). Sorting is done once per section and
    for the pool, so many quantiles cost little.
    """

    def __init__(self, series: list[np.ndarray], target_sections: int = TARGET_SECTIONS):
        self.series = [np.asarray(s, dtype=float) for s in series]
        self.n = int(sum(len(s) for s in self.series))
        self.pooled = np.sort(np.concatenate(self.series)) if self.n else np.empty(0)
        r = max(1, len(self.series))
        self.per_rep = max(1, math.ceil(target_sections / r))

    def sections(self, per_rep: int) -> list[list[np.ndarray]]:
        """Each replication's samples cut into ``per_rep`` contiguous sections (empty ones left out)."""
        return [[c for c in np.array_split(s, per_rep) if len(c)] for s in self.series if len(s)]

    def quantile(self, q: float) -> float:
        """Empirical quantile of the pool (linear interpolation; +inf where the order statistics are)."""
        return _sorted_quantile(self.pooled, q)

    def section_stat(self, fn) -> tuple[list[np.ndarray], int]:
        """``fn`` of each section, grouped by replication, merging sections while lag-1 correlated."""
        per_rep = self.per_rep
        while True:
            secs = self.sections(per_rep)
            stats = [np.array([fn(c) for c in rep]) for rep in secs]
            k = sum(len(s) for s in stats)
            if per_rep < 4 or k // 2 < MIN_SECTIONS:
                return stats, k
            if _lag1(stats) <= 1.645 / math.sqrt(k):
                return stats, k
            per_rep //= 2

    def mean_ci(self, level: float = LEVEL) -> Estimate | None:
        """Batch-means interval for the mean (Student-t, K-1 degrees of freedom)."""
        if self.n == 0 or not np.all(np.isfinite(self.pooled)):
            return None
        value = float(self.pooled.mean())
        stats, k = self.section_stat(np.mean)
        if k < 2:
            return Estimate(value, math.nan, math.nan, k)
        flat = np.concatenate(stats)
        se = float(np.std(flat, ddof=1)) / math.sqrt(k)
        h = _t(level, k - 1) * se
        return Estimate(value, value - h, value + h, k)

    def cdf_fractions(self, x: float) -> tuple[np.ndarray, int]:
        """Each section's fraction of samples <= x (after the lag-1 merge) and the section count."""
        stats, k = self.section_stat(lambda c: np.count_nonzero(c <= x) / len(c))
        return (np.concatenate(stats) if stats else np.empty(0)), k

    def quantile_ci(self, q: float, level: float = LEVEL) -> Estimate | None:
        """Interval for the q-quantile (q in (0, 1)) by inverting a batch-means interval for the CDF."""
        if self.n == 0:
            return None
        value = self.quantile(q)
        fr, k = self.cdf_fractions(value)
        if k < 2:
            return Estimate(value, math.nan, math.nan, k)
        s = float(np.std(fr, ddof=1))
        h = _t(level, k - 1) * s / math.sqrt(k)
        low = self.quantile(max(0.0, q - h))
        high = self.quantile(q + h) if q + h < 1 else math.inf
        iid_var = q * (1 - q) / self.n
        tau = max(1.0, (s * s / k) / iid_var) if iid_var > 0 else 1.0
        return Estimate(value, min(low, value), max(high, value), k, self.n * (1 - q) / tau)

    def prob_cdf_at_least(self, x: float, p: float) -> tuple[float, int]:
        """Confidence-distribution probability that the true CDF at x is >= p (see module doc).

        The standard error is the one of the CDF at the p-quantile estimate, the same one that sets
        the quantile's interval, so that x inside that interval gives a probability in (0.025, 0.975).
        """
        from scipy.special import stdtr

        if self.n == 0:
            return 0.0, 0
        g = float(np.count_nonzero(self.pooled <= x)) / self.n
        fr, k = self.cdf_fractions(self.quantile(p))
        se = float(np.std(fr, ddof=1)) / math.sqrt(k) if k >= 2 else 0.0
        if se <= 0:
            return (1.0 if g >= p else 0.0), k
        return float(stdtr(k - 1, (g - p) / se)), k


def _sorted_quantile(xs: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of a sorted array that may end in +inf."""
    n = len(xs)
    if n == 0:
        return math.nan
    pos = min(max(q, 0.0), 1.0) * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    w = pos - lo
    a, b = float(xs[lo]), float(xs[hi])
    if w == 0 or a == b:
        return a
    if math.isinf(b):
        return math.inf
    return a + (b - a) * w


def _lag1(stats: list[np.ndarray]) -> float:
    """Lag-1 autocorrelation of section statistics, pooled within replications."""
    allv = np.concatenate(stats)
    m = allv.mean()
    den = float(np.sum((allv - m) ** 2))
    if den <= 0:
        return 0.0
    num = sum(float(np.sum((s[:-1] - m) * (s[1:] - m))) for s in stats if len(s) > 1)
    return num / den


def _t(level: float, df: int) -> float:
    """Two-sided Student-t critical value (scipy.special: much lighter to import than scipy.stats)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def _kendall_tau(y: np.ndarray) -> float:
    """Kendall's tau-a of y against its index (concordant minus discordant pairs over all pairs)."""
    d = np.sign(y[None, :] - y[:, None])
    n = len(y)
    return float(np.triu(d, 1).sum()) / (n * (n - 1) / 2)


def naive_quantile_ci(x: np.ndarray, q: float, level: float = LEVEL) -> Interval:
    """The order-statistic interval that assumes independent samples (kept to show it under-covers)."""
    from statistics import NormalDist

    xs = np.sort(np.asarray(x, dtype=float))
    n = len(xs)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    d = z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(n * q - d)))
    hi = int(min(n - 1, math.ceil(n * q + d)))
    return float(xs[lo]), float(xs[hi])


# ---------------------------------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------------------------------


def trend_grows(latency: np.ndarray, sections: int = TREND_SECTIONS) -> bool:
    """True when latency grows through the run (the queue builds up): see the module doc."""
    if len(latency) < sections * 50:
        return False
    means = np.array([c.mean() for c in np.array_split(latency, sections)])
    middle = float(np.median(means[sections * 3 // 10 : sections * 7 // 10]))
    if middle <= 0:
        return False
    tau = _kendall_tau(means)
    return bool(means[-1] > TREND_RATIO * middle and tau > TREND_KENDALL)


# ---------------------------------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------------------------------


def _col(records: Records, name: str) -> np.ndarray:
    return np.asarray(getattr(records, name))


@dataclass
class _Measured:
    """One replication's post-warm-up rows, in arrival order."""

    latency: np.ndarray  # completed only
    latency_or_inf: np.ndarray  # all measured, dropped = +inf
    dropped: int
    total: int
    window_ms: float
    sums: dict[str, float]  # sums over completed rows of the decomposition columns
    batch_sizes: np.ndarray  # one entry per batch with a measured request
    cache: tuple[int, int, int] | None = None  # measured cache lookups, L1 answers, L2 answers

    @property
    def completed(self) -> int:
        return len(self.latency)


def _measure(result: SimResult, warmup_fraction: float) -> _Measured:
    rec = result.records
    arrival = _col(rec, "arrival_ms")
    n = len(arrival)
    skip = int(math.floor(warmup_fraction * n))
    if n < 2 or bool(np.all(arrival[1:] >= arrival[:-1])):
        idx: Any = slice(skip, n)  # already in arrival order: views, no copies
        first_i, last_i = skip, n - 1
    else:
        idx = np.argsort(arrival, kind="stable")[skip:]
        first_i, last_i = (int(idx[0]), int(idx[-1])) if len(idx) else (0, 0)
    total = n - skip
    lat = _col(rec, "latency_ms")[idx].astype(float, copy=False)
    done = ~_col(rec, "dropped")[idx].astype(bool, copy=False) & np.isfinite(lat)
    sums = {name: float(np.nansum(_col(rec, name)[idx][done])) for name in DECOMPOSITION}
    window = 0.0
    if total:
        t0, t_last = float(arrival[first_i]), float(arrival[last_i])
        done_ms = _col(rec, "done_ms")[idx][done]
        t1 = max(float(np.nanmax(done_ms)) if len(done_ms) else t_last, t_last)
        window = max(t1 - t0, 0.0)
    bid = _col(rec, "batch_id")[idx][done].astype(np.int64, copy=False)
    bsz = _col(rec, "batch_size")[idx][done]
    ok = bid >= 0
    sizes = np.empty(0)
    if np.any(ok):
        bid, bsz = bid[ok], bsz[ok]
        lo = int(bid.min())
        size_of = np.zeros(int(bid.max()) - lo + 1)
        seen = np.zeros(len(size_of), bool)
        size_of[bid - lo] = bsz
        seen[bid - lo] = True
        sizes = size_of[seen]
    return _Measured(
        latency=lat[done],
        latency_or_inf=np.where(done, lat, np.inf),
        dropped=int(total - np.count_nonzero(done)),
        total=total,
        window_ms=window,
        sums=sums,
        batch_sizes=sizes,
        cache=_cache_sums(result.cache, idx),
    )


def warmup_mask(result: Any, warmup_fraction: float) -> np.ndarray:
    """True for the rows of ``result.records`` (in table order) that :func:`summarize` drops as
    warm-up: the first ``floor(warmup_fraction * n)`` requests in arrival order."""
    arrival = _col(result.records, "arrival_ms")
    n = len(arrival)
    mask = np.zeros(n, bool)
    mask[np.argsort(arrival, kind="stable")[: int(math.floor(warmup_fraction * n))]] = True
    return mask


def latency_quantiles(results: list[Any], warmup_fraction: float, max_nines: float = 4.0, levels: int = 400) -> dict:
    """The completed post-warm-up latencies of ``results`` (the rows :func:`summarize` measures) as
    quantiles on a grid dense in the tail: ``{"n": completed, "quantile": [...], "latency_ms": [...]}``.

    Levels are ``1 - 10**-k`` for ``k`` evenly spaced from 0 to ``min(max_nines, log10(n))``, plus
    the maximum; a compact, faithful sketch of the CDF (a sweep keeps one per configuration).
    """
    lat = [_measure(r, warmup_fraction).latency for r in results]
    allv = np.sort(np.concatenate(lat)) if lat else np.empty(0)
    allv = allv[np.isfinite(allv)]
    if allv.size < 2:
        return {"n": int(allv.size), "quantile": [], "latency_ms": []}
    top = min(max_nines, math.log10(allv.size))
    q = np.append(1.0 - 10.0 ** (-np.linspace(0.0, top, levels)), 1.0)
    return {"n": int(allv.size), "quantile": q.tolist(), "latency_ms": np.quantile(allv, q).tolist()}


def _cache_sums(counts: CacheCounts | None, idx: Any) -> tuple[int, int, int] | None:
    """(lookups, L1 answers, L2 answers) of the measured requests ``idx``, or None without a cache."""
    if counts is None:
        return None

    def total(col: np.ndarray) -> int:
        return int(np.asarray(col)[idx].sum())

    return total(counts.lookups), total(counts.l1_items), total(counts.l2_items)


def _hit_ratios(measured: list[_Measured], cache: Cache | None) -> dict[str, float | None]:
    """The summary's cache hit ratios (see the module doc), pooled over replications; a level
    that ``cache`` (the experiment's config) does not have gets None."""
    sums = [m.cache for m in measured if m.cache is not None]
    if not sums:
        return {}
    lookups, l1, l2 = (sum(col) for col in zip(*sums, strict=True))
    has_l1 = cache is None or cache.l1 is not None
    has_l2 = cache is None or cache.l2 is not None
    return {
        "cache_hit_ratio": (l1 + l2) / lookups if lookups else None,
        "cache_l1_hit_ratio": l1 / lookups if lookups and has_l1 else None,
        "cache_l2_hit_ratio": l2 / (lookups - l1) if lookups > l1 and has_l2 else None,
    }


def _fmt_n(n: float) -> str:
    return f"{int(round(n)):,}"


def _pname(p: float) -> str:
    return f"p{p:g}"


def _nominal_rate(experiment: Experiment) -> float | None:
    """The arrival process's mean rate (req/s) from its configuration, or None (closed loop, or not
    computable): the overload check compares it, not the rate one seed happened to draw, with capacity."""
    from simlat.errors import SimlatError
    from simlat.workload import offered_rate_rps

    try:
        rate = offered_rate_rps(experiment.workload)
    except (SimlatError, KeyError, ValueError, OSError):
        return None
    return float(rate) if rate and math.isfinite(rate) else None


def _stability(results: list[SimResult], measured: list[_Measured], experiment: Experiment) -> tuple[bool, list[str]]:
    notes: list[str] = []
    bounded = experiment.admission.queue_capacity is not None or experiment.admission.timeout_ms is not None
    offered = [r.offered_rps for r in results if r.offered_rps]
    capacity = [r.capacity_rps for r in results if r.capacity_rps]
    nominal = _nominal_rate(experiment)
    if nominal is not None and offered:
        offered = [nominal]  # the process's rate, not the realised one: 1.00x capacity is never stable by luck
    stable = True
    if offered and capacity:
        off, cap = float(np.mean(offered)), float(np.mean(capacity))
        if math.isfinite(cap) and cap > 0:
            if off >= cap and not bounded:
                stable = False
                notes.append(
                    f"UNSTABLE: offered load {off:,.1f} req/s >= capacity {cap:,.1f} req/s "
                    f"(utilisation {off / cap:.2f}); the queue grows without bound, so no percentile is finite"
                )
            elif off >= cap:
                notes.append(
                    f"offered load {off:,.1f} req/s >= capacity {cap:,.1f} req/s: admission control is "
                    "dropping the excess; percentiles are of admitted requests only"
                )
            elif off >= 0.95 * cap:
                notes.append(
                    f"near capacity (utilisation {off / cap:.2f}): tail estimates converge slowly; "
                    "read the confidence intervals"
                )
    grows = [trend_grows(m.latency) for m in measured]
    kind = experiment.workload.arrivals.kind
    if stable and any(grows) and kind in TIME_VARYING:
        notes.append(
            f"latency grows through the run; with a time-varying workload ({kind}) this may follow the "
            "rate curve rather than a queue that never drains: check the offered rate against capacity"
        )
    elif stable and sum(grows) * 2 > len(grows):
        stable = False
        notes.append(
            "UNSTABLE: latency grows through the run (the queue builds up: last section's mean latency "
            f"> {TREND_RATIO}x the middle sections', rising steadily); no percentile is finite"
        )
    elif stable and any(grows):
        notes.append(f"latency grew through {sum(grows)} of {len(grows)} replications: check stability")
    return stable, notes


def _tail_warnings(sample: Sample, est: Estimate | None, p: float, noun: str = "requests") -> list[str]:
    out = []
    q = p / 100.0
    n = sample.n
    above = n * (1 - q)
    need = MIN_TAIL_SAMPLES / (1 - q)
    if above < MIN_TAIL_SAMPLES:
        out.append(
            f"{_pname(p)} from {_fmt_n(n)} {noun} has {_fmt_n(above)} samples above it; "
            f"need >= {_fmt_n(need)} requests (>= {MIN_TAIL_SAMPLES} above it)"
        )
    elif est is not None and est.effective_tail is not None and est.effective_tail < MIN_EFFECTIVE_TAIL:
        want = n * 2 * MIN_EFFECTIVE_TAIL / max(est.effective_tail, 1e-9)
        out.append(
            f"{_pname(p)}: tail samples are strongly autocorrelated (about {est.effective_tail:.1f} "
            f"independent tail observations in {_fmt_n(n)} requests): the estimate is rough and its "
            f"interval approximate; run >= {_fmt_n(want)} requests"
        )
    if est is not None and math.isinf(est.high) and not math.isinf(est.value):
        out.append(f"{_pname(p)}: the upper end of its interval lies beyond the largest sample")
    return out


def summarize(results: list[SimResult], experiment: Experiment) -> Summary:
    """Summarise replications of one experiment (see the module doc for every method)."""
    if not results:
        raise ValueError("summarize needs at least one SimResult")
    wf = experiment.run.warmup_fraction
    slo = experiment.slo
    measured = [_measure(r, wf) for r in results]
    warnings: list[str] = []

    total = sum(m.total for m in measured)
    completed = sum(len(m.latency) for m in measured)
    dropped = sum(m.dropped for m in measured)
    window_s = sum(m.window_ms for m in measured) / 1000.0
    good = sum(int(np.count_nonzero(m.latency <= slo.latency_ms)) for m in measured)
    throughput = completed / window_s if window_s > 0 else 0.0
    goodput = good / window_s if window_s > 0 else 0.0

    n_rep = max(r.n_replicas for r in results)
    util = np.zeros(n_rep)
    for r in results:
        busy = np.asarray(r.busy_ms, dtype=float)
        util[: len(busy)] += busy / r.end_ms if r.end_ms > 0 else 0.0
    util /= len(results)

    stable, notes = _stability(results, measured, experiment)
    warnings.extend(notes)
    for r in results:  # the engine's own notes (a cache still warming up), once each
        warnings.extend(w for w in r.warnings if w not in warnings)

    lat = Sample([m.latency for m in measured])
    values: dict[str, Any] = {}
    sections = 0
    if completed == 0:
        warnings.append("no request completed after warm-up: no latency statistic")
    for name, p in REPORTED:
        est = lat.quantile_ci(p / 100.0) if stable and completed else None
        values[f"{name}_ms"] = est.value if est else None
        values[f"{name}_ci_ms"] = est.interval if est else None
        if est:
            sections = max(sections, est.sections)
        if completed and p >= 99:
            warnings.extend(_tail_warnings(lat, est, p, "requests" if completed == total else "completed requests"))
    mean = lat.mean_ci() if stable and completed else None
    values["mean_ms"] = mean.value if mean else None
    values["mean_ci_ms"] = mean.interval if mean else None

    # SLO: dropped requests count as missing the bound.
    slo_est = slo_ci = None
    prob = 0.0
    if stable and total:
        slo_sample = lat if completed == total else Sample([m.latency_or_inf for m in measured])
        est = slo_sample.quantile_ci(slo.percentile / 100.0)
        if est is not None:
            slo_est, slo_ci = est.value, est.interval
            sections = max(sections, est.sections)
            if slo.percentile not in [p for _, p in REPORTED]:
                warnings.extend(_tail_warnings(slo_sample, est, slo.percentile))
        prob, _ = slo_sample.prob_cdf_at_least(slo.latency_ms, slo.percentile / 100.0)
        if slo_ci is not None and slo_ci[0] <= slo.latency_ms <= slo_ci[1]:
            warnings.append(
                f"SLO bound {slo.latency_ms:g} ms lies inside the {_pname(slo.percentile)} interval "
                f"[{slo_ci[0]:.3g}, {slo_ci[1]:.3g}] ms: the verdict is uncertain (P = {prob:.2f})"
            )

    sizes = np.concatenate([m.batch_sizes for m in measured]) if measured else np.empty(0)
    hist: dict[int, int] = {}
    if len(sizes):
        uniq, counts = np.unique(sizes.astype(np.int64), return_counts=True)
        hist = {int(k): int(v) for k, v in zip(uniq, counts, strict=True)}

    def decomp(name: str) -> float | None:
        return sum(m.sums[name] for m in measured) / completed if completed else None

    offered = [r.offered_rps for r in results if r.offered_rps]
    capacity = [r.capacity_rps for r in results if r.capacity_rps]
    return Summary(
        **values,
        throughput_rps=throughput,
        goodput_rps=goodput,
        drop_rate=dropped / total if total else 0.0,
        utilization=[float(u) for u in util],
        slo_percentile=slo.percentile,
        slo_latency_ms=slo.latency_ms,
        slo_estimate_ms=slo_est,
        slo_ci_ms=slo_ci,
        slo_met_probability=prob,
        stable=stable,
        requests=total,
        completed=completed,
        replications=len(results),
        offered_rps=float(np.mean(offered)) if offered else None,
        capacity_rps=float(np.mean(capacity)) if capacity else None,
        warnings=warnings,
        batch_size_hist=hist,
        mean_batch_size=float(sizes.mean()) if len(sizes) else None,
        queue_wait_ms=decomp("queue_wait_ms"),
        batch_wait_ms=decomp("batch_wait_ms"),
        service_ms=decomp("service_ms"),
        overhead_ms=decomp("overhead_ms"),
        cache_ms=decomp("cache_ms"),
        reply_ms=decomp("reply_ms"),
        **_hit_ratios(measured, experiment.cache),
        ci_sections=sections,
    )
