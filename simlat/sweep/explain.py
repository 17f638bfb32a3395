"""Why the operating point is the one chosen: the reason each configuration was not chosen, the
constraint that binds, and warnings when the answer sits on the edge of the grid.

The reasons are read from the sweep's points table only (one row per configuration), in the order
the choice applies its rules: rejected by the simulator, overloaded at the target rate, the SLO
percentile's upper confidence bound above the SLO (or P(met) below the confidence, or too many
drops), headroom below ``min_headroom``, then the objective and its tie-breaks. The deciding
latency is :data:`DECIDING_BOUND` (the simulation CI's upper end); a wider interval column added
later only needs to change that name.
"""

from __future__ import annotations

import math

import pandas as pd

from simlat.sweep.describe import lat, pct_label

DECIDING_BOUND = "slo_hi_ms"

# Reason categories, in the order the rules apply.
REJECTED, OVERLOADED, MISSES, HEADROOM, QUALIFIES, CHOSEN = (
    "rejected", "overloaded", "misses_slo", "headroom", "qualifies", "chosen",
)
_CATEGORY_TEXT = {
    REJECTED: "rejected by the simulator",
    OVERLOADED: "overloaded at the target rate",
    MISSES: "miss the SLO at the target rate",
    HEADROOM: "meet the SLO but with too little headroom",
    QUALIFIES: "qualify but lose on the objective's tie-break",
}


def _f(row, col: str) -> float:
    try:
        v = float(row.get(col, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return v


def _headroom(h: float) -> str:
    return f"{h:.1%}"


def category(row, min_headroom: float) -> str:
    """The first rule of the choice that ``row`` fails (or QUALIFIES)."""
    if str(row.get("note", "")).startswith("error:"):
        return REJECTED
    if not bool(row.get("stable", True)):
        return OVERLOADED
    if not bool(row.get("meets_slo", False)):
        return MISSES
    h = _f(row, "headroom")
    if min_headroom > 0 and not (h >= min_headroom):
        return HEADROOM
    return QUALIFIES


def tenant_misses(row) -> str:
    """'ads misses its own SLO (p99 upper bound 41.2 ms)' for each colocated model of ``row`` that
    misses its SLO ('' when none does or the row has none)."""
    out = []
    for col in row.index if hasattr(row, "index") else row:
        if col.endswith("_meets_slo") and col != "meets_slo" and not bool(row[col]):
            name = col[: -len("_meets_slo")]
            hi = _f(row, f"{name}_p99_hi_ms")
            bound = f"p99 upper bound {lat(hi)} ms" if math.isfinite(hi) else "p99 with no finite upper bound"
            out.append(f"{name} misses its own SLO ({bound})")
    return "; ".join(out)


def reason(row, *, chosen: str | None, percentile: float, slo_ms: float, confidence: float, min_headroom: float) -> str:
    """One row's reason in words: 'headroom 18.1% < min_headroom 20%', 'p99 upper bound 35.2 ms > 30 ms'."""
    if chosen is not None and str(row["config_id"]) == str(chosen):
        return "chosen"
    cat = category(row, min_headroom)
    p = pct_label(percentile)
    if cat == REJECTED:
        return str(row.get("note", "error"))
    if cat == OVERLOADED:
        return "overloaded at the target rate (unstable)"
    if cat == MISSES:
        hi = _f(row, DECIDING_BOUND)
        others = tenant_misses(row)
        if others and not math.isnan(hi) and hi <= slo_ms:
            return others
        if math.isinf(hi):
            return f"{p} interval reaches past the largest sample (no finite upper bound to hold under {slo_ms:g} ms)"
        if not math.isnan(hi) and hi > slo_ms:
            return f"{p} upper bound {lat(hi)} ms > {slo_ms:g} ms"
        drops = _f(row, "drop_rate")
        if not math.isnan(drops) and drops > (100 - percentile) / 100:
            return f"drops {drops:.2%} > {100 - percentile:g}% (the {p} is then undefined)"
        prob = _f(row, "slo_met_probability")
        pi_hi = _f(row, "pi_hi_ms")
        if not math.isnan(pi_hi):
            return f"P(SLO met) {prob:.3f} < {confidence:g} (a real run's 90% prediction interval reaches {lat(pi_hi)} ms)"
        return f"P(SLO met) {prob:.3f} < {confidence:g}"
    if cat == HEADROOM:
        return f"headroom {_headroom(_f(row, 'headroom'))} < min_headroom {_headroom(min_headroom)}"
    return "meets every constraint; not preferred by the objective"


def reasons(points: pd.DataFrame, chosen: str | None, *, percentile: float, slo_ms: float, confidence: float,
            min_headroom: float) -> pd.Series:
    """:func:`reason` for every row (index aligned with ``points``)."""
    if points.empty:
        return pd.Series([], dtype=str)
    return points.apply(
        lambda r: reason(r, chosen=chosen, percentile=percentile, slo_ms=slo_ms, confidence=confidence,
                         min_headroom=min_headroom),
        axis=1,
    )


def _tier_key(objective: str) -> tuple[str, bool]:
    """(column that orders configurations for the objective, ascending)."""
    return {
        "min_cost": ("cost_per_hour", True),
        "min_replicas": ("replicas", True),
        "max_throughput_per_replica": ("throughput_per_replica", False),
    }[objective]


def _tier_label(objective: str, value: float, replicas: float | None = None) -> str:
    if objective == "min_cost":
        return f"${value:,.2f}/hour" if math.isfinite(value) else "no price"
    if objective == "min_replicas":
        return f"{value:g} replica{'s' if value != 1 else ''}"
    return f"{value:,.0f} req/s per replica"


def _best(group: pd.DataFrame, cat: str) -> str:
    """The closest configuration of one category, in words."""
    if cat == HEADROOM:
        row = group.loc[group["headroom"].astype(float).idxmax()]
        return f"best {row['label']}: headroom {_headroom(float(row['headroom']))}"
    if cat == MISSES and group[DECIDING_BOUND].notna().any():
        row = group.loc[group[DECIDING_BOUND].astype(float).idxmin()]
        hi = float(row[DECIDING_BOUND])
        bound = f"upper bound {lat(hi)} ms" if math.isfinite(hi) else "interval with no finite upper bound"
        if math.isfinite(hi) and "slo_met_probability" in row and hi <= float(row.get("slo_hi_ms", hi)):
            prob = float(row["slo_met_probability"])
            if "pi_hi_ms" in row and not math.isnan(float(row["pi_hi_ms"])):
                bound += f", P(SLO met) {prob:.2f} from the prediction interval (up to {lat(float(row['pi_hi_ms']))} ms)"
        others = tenant_misses(row)
        return f"closest {row['label']}: {bound}" + (f"; {others}" if others else "")
    if cat == REJECTED:
        return f"e.g. {group.iloc[0]['note']}"
    return ""


def explain(points: pd.DataFrame, chosen: str | None, *, objective: str, percentile: float, slo_ms: float,
            target_rps: float, confidence: float, min_headroom: float, max_tiers: int = 6) -> list[str]:
    """The choice in a few lines: the rule set, the constraint that binds, and per cheaper tier how
    many configurations lost on which rule, with the closest one of each kind."""
    if points.empty:
        return []
    p = pct_label(percentile)
    col, ascending = _tier_key(objective)
    cats = points.apply(lambda r: category(r, min_headroom), axis=1)
    rule = f"{p} <= {slo_ms:g} ms at {target_rps:,.0f} req/s with {confidence:.0%} confidence"
    if min_headroom > 0:
        rule += f" and at least {_headroom(min_headroom)} headroom"
    lines = []
    if chosen is None:
        lines.append(f"No configuration meets {rule}.")
        counts = cats.value_counts()
        lines.append("Why: " + "; ".join(f"{int(counts[c])} {_CATEGORY_TEXT[c]}" for c in (REJECTED, OVERLOADED, MISSES, HEADROOM) if c in counts) + ".")
        if (cats == HEADROOM).any():
            lines.append("Binding constraint: min_headroom (configurations meet the SLO but not the headroom).")
        return lines
    row = points.set_index(points["config_id"].astype(str)).loc[str(chosen)]
    value = float(row[col]) if col in row.index else math.nan
    objective_words = {"min_cost": "the cheapest", "min_replicas": "the fewest replicas",
                       "max_throughput_per_replica": "the most throughput per replica"}[objective]
    lines.append(f"Chosen as {objective_words} configuration ({_tier_label(objective, value)}) meeting {rule}.")
    order_values = points[col].astype(float).fillna(math.inf if ascending else -math.inf)
    better = order_values < value if ascending else order_values > value
    better_pts = points[better.to_numpy()]
    better_cats = cats[better.to_numpy()]
    if better_pts.empty:
        lines.append(f"Binding constraint: none among better-ranked configurations: it is {objective_words} in the grid.")
    else:
        if (better_cats == HEADROOM).any():
            h = better_pts[better_cats == HEADROOM]
            lines.append(
                f"Binding constraint: min_headroom ({_headroom(min_headroom)}): {len(h)} better-ranked configuration(s) "
                f"meet the SLO but not the headroom ({_best(h, HEADROOM)})."
            )
        elif (better_cats == MISSES).any():
            lines.append(f"Binding constraint: the SLO ({p} upper confidence bound <= {slo_ms:g} ms at the target rate).")
        elif (better_cats == OVERLOADED).any():
            lines.append("Binding constraint: capacity (every better-ranked configuration is overloaded at the target rate).")
        else:
            lines.append("Binding constraint: none (better-ranked configurations were rejected by the simulator).")
        tiers = sorted(better_pts[col].astype(float).unique(), reverse=ascending)
        shown = tiers[:max_tiers]
        for t in shown:
            sel = (better_pts[col].astype(float) == t).to_numpy()
            group, gcats = better_pts[sel], better_cats[sel]
            parts = []
            for c in (HEADROOM, MISSES, OVERLOADED, REJECTED):
                g = group[(gcats == c).to_numpy()]
                if len(g):
                    best = _best(g, c)
                    parts.append(f"{len(g)} {_CATEGORY_TEXT[c]}" + (f" ({best})" if best else ""))
            lines.append(f"  {_tier_label(objective, t)}, {len(group)} configuration(s): " + "; ".join(parts) + ".")
        if len(tiers) > len(shown):
            rest = better_pts[~better_pts[col].astype(float).isin(shown).to_numpy()]
            lines.append(f"  {len(tiers) - len(shown)} further tier(s), {len(rest)} configuration(s): "
                         + ", ".join(f"{int(n)} {_CATEGORY_TEXT[c]}" for c, n in cats[rest.index].value_counts().items()) + ".")
    same = points[(order_values == value).to_numpy() & (cats == QUALIFIES).to_numpy()]
    if len(same) > 1:
        lines.append(f"{len(same) - 1} other configuration(s) at the same {col.replace('_', ' ')} also qualify; "
                     "the tie-break prefers fewer replicas, then more headroom, then the tighter interval.")
    return lines


def edge_warnings(points: pd.DataFrame, chosen: str | None, params: list[str], objective: str) -> list[str]:
    """Warnings when the chosen value of a numeric swept parameter is the smallest or largest in the grid.

    A larger replica count is never cheaper, so the top edge of ``fleet.replicas`` is not flagged
    under ``min_cost`` or ``min_replicas``.
    """
    if chosen is None or points.empty:
        return []
    row = points.set_index(points["config_id"].astype(str)).loc[str(chosen)]
    out = []
    for param in params:
        if param not in points.columns:
            continue
        values = pd.to_numeric(points[param], errors="coerce")
        if values.isna().any() or values.nunique() < 2:
            continue
        v = float(pd.to_numeric(pd.Series([row[param]]), errors="coerce").iloc[0])
        lo, hi = float(values.min()), float(values.max())
        name = param.rsplit(".", 1)[-1]
        h = _f(row, "headroom")
        hroom = f" (headroom {_headroom(h)})" if math.isfinite(h) else ""
        if v == lo and v > 0 and not (name == "replicas" and v <= 1):
            out.append(f"{param} = {v:g} is the smallest value in the grid{hroom}: smaller {name} values were not "
                       f"tried and may also meet the SLO; extend the grid below {v:g}.")
        elif v == hi and not (name == "replicas" and objective in ("min_cost", "min_replicas")):
            out.append(f"{param} = {v:g} is the largest value in the grid: larger {name} values were not tried; "
                       f"extend the grid above {v:g}.")
    return out
