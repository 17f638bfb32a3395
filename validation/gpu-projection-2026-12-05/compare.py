"""H100 -> H200 projection, checked against an H200 calibration (2026-12-05): the tables of
docs/calibration.md, recomputed from the files in this folder and calibration/.

    python validation/gpu-projection-2026-12-05/compare.py [--out comparison.md]

Predictions of the H200's steady medians (every model, variant and batch size both profiles have):

- the H100 profile (calibration/h100-cuda.json, another host, 2026-11-24) used unchanged: the
  baseline a projection has to beat;
- calibration/h200-projected-from-h100.json: projected from the datasheets (`--to h200`), made
  before any H200 was measured (out of sample);
- the H100 profile projected with the H200's probe (`--probe`: its measured peaks; no probe of that
  H100 host exists, so the host part is kept);
- the same-day H100 run (raw-h100/): unchanged; projected from the datasheets; projected with both
  probes (`--probe --source-probe`): by the launch cost alone (the rule written before this check)
  and by the geometric mean of the three host timings (the rule chosen after it, in sample).

And the floors no projection can beat: the H200 against itself (its two measuring processes) and
the H100 against itself (another host and day).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from simlat.profiles.accuracy import compare_profiles, markdown, overall
from simlat.profiles.devices import DEVICES, from_probe
from simlat.profiles.project import project
from simlat.profiles.schema import load_profile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
H100 = ROOT / "calibration" / "h100-cuda.json"
H200 = ROOT / "calibration" / "h200-cuda.json"
H200_PROJECTED = ROOT / "calibration" / "h200-projected-from-h100.json"
H200_PROBE = HERE / "raw-h200" / "probe.json"
H100_TODAY = HERE / "raw-h100" / "profile.json"
H100_PROBE = HERE / "raw-h100" / "probe.json"
H100_RUN2 = HERE / "raw-h100-run2" / "profile.json"  # a third machine, after the scheduler change (every variant complete)


def _probe(path: Path):
    return from_probe(json.loads(path.read_text()), str(path.relative_to(ROOT)))


def predictions() -> dict[str, object]:
    """Name -> predicted profile of the H200, in the order of the summary table."""
    h100 = load_profile(H100)
    out: dict[str, object] = {
        "H100 profile unchanged (2026-11-24, another host)": h100,
        "projected from the datasheets (`--to h200`, shipped before the measurement)": load_profile(H200_PROJECTED),
        "projected with the H200's probe (`--probe`)": project(h100, _probe(H200_PROBE)),
    }
    today = load_profile(H100_TODAY)
    src_probe, tgt_probe = _probe(H100_PROBE), _probe(H200_PROBE)
    launch = src_probe.gpu_host_us["launch_us"] / tgt_probe.gpu_host_us["launch_us"]  # type: ignore[index]
    out["same-day H100 run unchanged"] = today
    out["same-day H100 run projected from the datasheets (`--to h200`)"] = project(today, DEVICES["h200"])
    out[f"same-day H100 run, both probes, launch cost alone (host x{launch:.2f}; the rule before this check)"] = project(
        today, tgt_probe, source_probe=src_probe, host_speed=launch)
    out["same-day H100 run, both probes (`--probe --source-probe`: host timings' geometric mean; chosen after this check)"] = \
        project(today, tgt_probe, source_probe=src_probe)
    return out


def process_floor(path: Path) -> tuple[int, float, float]:
    """A profile against itself: over the points measured by two processes, |second / first - 1|
    (points, median, 90th percentile)."""
    prof = load_profile(path)
    e = [abs(p.dist.process_medians_ms[1] / p.dist.process_medians_ms[0] - 1)
         for m in prof.models for v in m.variants if v.status == "ok" for p in v.steady
         if len(p.dist.process_medians_ms) >= 2 and p.dist.process_medians_ms[0] > 0]
    return len(e), float(np.median(e)), float(np.quantile(e, 0.9))


def summary_line(name: str, rows) -> str:
    o = overall(rows)
    return (f"| {name} | {o.points} | {o.median_abs_error:.0%} | {o.p90_abs_error:.0%} | {o.worst_error:+.0%} |"
            f" {o.rms_log_error:.2f} | {o.covered_share:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "comparison.md")
    args = ap.parse_args()
    measured = load_profile(H200)
    preds = predictions()
    lines = ["# H100 -> H200: predictions of the measured H200 profile (steady medians)", "",
             "| prediction | points | median abs. error | 90th pct. | worst | RMS log error | measured inside the 95% interval |",
             "|---|---|---|---|---|---|---|"]
    tables = []
    for name, pred in preds.items():
        rows = compare_profiles(pred, measured)
        lines.append(summary_line(name, rows))
        tables.append(markdown(rows, name))
    lines.append(summary_line("for scale: the H100 on 2026-11-24 predicting the same-day H100 run",
                              compare_profiles(load_profile(H100), load_profile(H100_TODAY))))
    lines.append(summary_line("for scale: the same-day H100 run predicting another H100 machine an hour later",
                              compare_profiles(load_profile(H100_TODAY), load_profile(H100_RUN2))))
    lines += ["", "Floors within one run (the same points measured by the run's second process, |second / first - 1|):", ""]
    for label, path in (("H200", H200), ("H100 same day", H100_TODAY), ("H100 same day, second machine", H100_RUN2),
                        ("H100 2026-11-24", H100)):
        n, med, p90 = process_floor(path)
        lines.append(f"- {label}: {n} points, median {med:.0%}, 90th percentile {p90:.0%}")
    lines += ["", *("\n".join(["", t]) for t in tables)]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
