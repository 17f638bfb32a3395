"""What a profile says, as Markdown: latency vs batch size per variant, and the extremes.

``simlat profile describe calibration/h100-cuda.json [...]`` prints the tables that
docs/calibration.md shows; for a contention profile, its slowdown table.
"""

from __future__ import annotations

from simlat.profiles.schema import ServiceProfile, load_profile


def _q(levels: list[float], q: float) -> int:
    return min(range(len(levels)), key=lambda i: abs(levels[i] - q))


def _sizes(model) -> list[int]:
    sizes = sorted({p.batch_size for v in model.variants for p in v.steady})
    if len(sizes) <= 7:
        return sizes
    keep = [s for s in sizes if s in (1, 8, 64, 512)] + [sizes[-1]]
    return sorted(set(keep))


def model_table(profile: ServiceProfile, model_name: str) -> str:
    """Markdown table: one row per variant, p50 / p99 ms at a few batch sizes."""
    m = profile.model(model_name)
    lv = profile.quantile_levels
    i50, i99 = _q(lv, 0.5), _q(lv, 0.99)
    sizes = _sizes(m)
    head = "| variant | " + " | ".join(f"b={s}" for s in sizes) + " | rel. error | idle b=1 p50 |"
    rows = [head, "|" + "---|" * (len(sizes) + 3)]
    for v in m.variants:
        if v.status != "ok":
            rows.append(f"| {v.name} | skipped: {v.reason} |" + " |" * (len(sizes) + 1))
            continue
        by = {p.batch_size: p for p in v.steady}
        cells = []
        for s in sizes:
            p = by.get(s)
            cells.append(f"{p.dist.quantiles_ms[i50]:.3g} / {p.dist.quantiles_ms[i99]:.3g}" if p else "-")
        err = f"{v.error.rel:.1e}" if v.error else "-"
        idle = f"{v.idle[0].dist.quantiles_ms[i50]:.3g}" if v.idle else "-"
        rows.append(f"| {v.name} | " + " | ".join(cells) + f" | {err} | {idle} |")
    return "\n".join(rows)


def extremes(profile: ServiceProfile, model_name: str) -> str:
    """Fastest and slowest variant (p50) at the smallest and the largest measured batch (among the variants that measured it)."""
    m = profile.model(model_name)
    i50 = _q(profile.quantile_levels, 0.5)
    ok = [v for v in m.variants if v.status == "ok"]
    sizes = {p.batch_size for v in ok for p in v.steady}
    out = []
    for b in sorted({min(sizes, default=1), max(sizes, default=1)}):
        t = sorted((next(p for p in v.steady if p.batch_size == b).dist.quantiles_ms[i50], v.name) for v in ok if any(p.batch_size == b for p in v.steady))
        if t:
            out.append(f"batch {b}: fastest {t[0][1]} {t[0][0]:.3g} ms, slowest {t[-1][1]} {t[-1][0]:.3g} ms")
    return "; ".join(out)


def describe(path: str) -> str:
    """All models of one profile file (or the slowdown table of a contention profile)."""
    from simlat.calibrate.contention import profile as contention

    if contention.is_contention(path):
        return contention.describe(path)
    p = load_profile(path)
    pv = p.provenance
    lines = [f"### {path}", "",
             f"{pv.device_name} ({pv.device}), driver {pv.driver or '-'}, CUDA {pv.cuda or '-'}, torch {pv.torch},"
             f" onnxruntime {pv.onnxruntime}, torchao {pv.torchao or '-'}, {pv.threads or '?'} threads, budget {pv.budget},"
             f" {pv.date}{', shared machine' if pv.shared_machine else ''}.", ""]
    if p.peaks:
        pk = ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in p.peaks.matmul_flops_per_s.items())
        lines += [f"Measured peaks: matmul {pk}; copy {p.peaks.copy_bytes_per_s / 1e9:.0f} GB/s.", ""]
    for m in p.models:
        lines += [f"**{m.name}** ({m.description}). p50 / p99 ms per batch; {extremes(p, m.name)}.", "", model_table(p, m.name), ""]
    return "\n".join(lines)
