"""How well one profile predicts another, point by point (``simlat profile compare``).

The predicted profile is usually projected (``simlat profile project``) and the measured one a
calibration of the target device; any two service profiles compare (a measured profile of another
device, used unchanged, is the baseline a projection has to beat). For every model, variant and
batch size both have (steady curve by default), the error is ``predicted median / measured median -
1``. Per model and variant: the points, the median and the worst error (by absolute value, with
their sign), and how many measured medians lie inside the predicted point's 95% interval
(``median_ci_ms``: for a projected profile the projection's uncertainty, for a measured one the
median's own CI). Over all points: the median absolute error, the RMS of log(predicted / measured)
and the share covered.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from simlat.errors import SimlatError
from simlat.profiles.schema import Dist, ServiceProfile


@dataclass(frozen=True)
class Row:
    """One model and variant: ``errors`` per batch size (predicted / measured - 1)."""

    model: str
    variant: str
    points: int
    median_error: float
    worst_error: float
    covered: int
    batch_sizes: tuple[int, ...]
    errors: tuple[float, ...]


@dataclass(frozen=True)
class Overall:
    """All points of all rows."""

    points: int
    median_abs_error: float
    rms_log_error: float
    covered_share: float
    worst_error: float = 0.0  # the largest by absolute value, signed
    p90_abs_error: float = 0.0


def _median(levels: list[float], d: Dist) -> float:
    return float(np.interp(0.5, levels, d.quantiles_ms))


def _signed_pick(e: np.ndarray, how: str) -> float:
    a = np.abs(e)
    if how == "worst":
        return float(e[int(np.argmax(a))])
    mag = float(np.median(a))
    return mag if float(np.median(e)) >= 0 else -mag


def compare_profiles(predicted: ServiceProfile, measured: ServiceProfile, *, condition: str = "steady") -> list[Row]:
    """One :class:`Row` per model and variant both profiles measured (``condition``: steady or idle)."""
    if condition not in ("steady", "idle"):
        raise SimlatError(f"--condition: {condition!r} is invalid: steady or idle")
    lv_p, lv_m = predicted.quantile_levels, measured.quantile_levels
    have = {(m.name, v.name): v for m in measured.models for v in m.variants if v.status == "ok"}
    rows = []
    for m in predicted.models:
        for v in m.variants:
            mv = have.get((m.name, v.name))
            if v.status != "ok" or mv is None:
                continue
            meas = {p.batch_size: p for p in getattr(mv, condition)}
            sizes, errs, covered = [], [], 0
            for p in getattr(v, condition):
                q = meas.get(p.batch_size)
                if q is None:
                    continue
                got, want = _median(lv_p, p.dist), _median(lv_m, q.dist)
                if want <= 0 or got <= 0:
                    continue
                sizes.append(p.batch_size)
                errs.append(got / want - 1.0)
                covered += int(p.dist.median_ci_ms[0] <= want <= p.dist.median_ci_ms[1])
            if not errs:
                continue
            e = np.asarray(errs)
            rows.append(Row(m.name, v.name, len(errs), _signed_pick(e, "median"), _signed_pick(e, "worst"), covered,
                            tuple(sizes), tuple(round(float(x), 6) for x in e)))
    if not rows:
        raise SimlatError("the two profiles have no model, variant and batch size in common: nothing to compare")
    return rows


def overall(rows: list[Row]) -> Overall:
    """The summary over every point of ``rows``."""
    e = np.asarray([x for r in rows for x in r.errors])
    logs = np.log1p(e)
    return Overall(int(e.size), float(np.median(np.abs(e))), float(math.sqrt(float(np.mean(logs**2)))),
                   sum(r.covered for r in rows) / max(int(e.size), 1), _signed_pick(e, "worst"),
                   float(np.quantile(np.abs(e), 0.9)))


def markdown(rows: list[Row], title: str | None = None) -> str:
    """The rows and the overall line as a Markdown table (errors as signed percentages)."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| model | variant | points | median error | worst error | measured median inside the predicted 95% interval |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.variant} | {r.points} | {r.median_error:+.0%} | {r.worst_error:+.0%} | {r.covered}/{r.points} |")
    o = overall(rows)
    lines.append(f"| **all** | | {o.points} | {o.median_abs_error:.0%} (abs; 90th percentile {o.p90_abs_error:.0%}) |"
                 f" {o.worst_error:+.0%} (RMS log error {o.rms_log_error:.2f}) | {o.covered_share:.0%} |")
    return "\n".join(lines)


def to_csv(rows: list[Row]) -> str:
    """One line per model, variant and batch size (the raw errors)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "variant", "batch_size", "error"])
    for r in rows:
        for b, e in zip(r.batch_sizes, r.errors, strict=True):
            w.writerow([r.model, r.variant, b, e])
    return buf.getvalue()


def write_table(rows: list[Row], path: Path, title: str | None = None) -> None:
    """``.md``: the Markdown table; ``.csv``: one line per point; ``.json``: the rows and the overall summary."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        text = markdown(rows, title) + "\n"
    elif suffix == ".csv":
        text = to_csv(rows)
    elif suffix == ".json":
        import json

        text = json.dumps({"rows": [asdict(r) for r in rows], "overall": asdict(overall(rows))}, indent=1) + "\n"
    else:
        raise SimlatError(f"--table: {str(path)!r} is invalid: the file must end in .md, .csv or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
