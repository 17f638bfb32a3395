"""Re-run calibration, simulation and comparison offline from saved campaigns.

``simlat validate-inside replay DIR [--slowdown line|points|convex] [--seeds 3] [--probes] [--detail]``

DIR holds ``*.npz`` campaigns written by ``simlat validate ... --out FILE.npz`` or by
``simlat validate-inside measure ... --out DIR``. For every campaign the frontend is fitted from
its capacity probes (:mod:`simlat.validate.fit`), every valid validation level is simulated on the
exact send times its requests had, and the table of measured vs predicted p50/p99 is printed with
the summary of p99 errors (median and worst |error|, count within 10%) over the levels at 20-85% of
capacity. No GPU or server is needed: anyone with the saved data can reproduce the table.

``--probes`` compares the stable capacity probes instead of the levels: an in-sample check of the
calibration (the probes are what it was fitted on). ``--detail`` adds, per level, the measured and
simulated mean batch size and mean time a batch holds the model (dispatch -> result back on the
loop): the two quantities through which the serving stack's contention reaches the latency.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

from simlat.validate import fit
from simlat.validate.compare import compare_campaign, experiment_for
from simlat.validate.fit import fit_frontend, fit_service, timer_slack_ms
from simlat.validate.measure import load as load_campaign
from simlat.workload import Requests


def _as_probe_campaign(res: dict) -> dict:
    """The campaign with its stable, valid probes in place of its validation levels."""
    out = copy.copy(res)
    cap = res["capacity_rps"]
    out["levels"] = [{"load": p["rate_rps"] / cap, **p} for p in res["probes"]
                     if p["checks"]["stable"] and p["checks"]["valid"]]
    return out


def _detail(res: dict, slowdown: str | None, load: str | None, hold: bool | None) -> list[dict]:
    """Per valid level: measured vs simulated mean batch size and mean model hold (ms)."""
    from simlat.engine import simulate

    spec = res["spec"]
    service = fit_service(res["profile"])
    fe, facts = fit_frontend(res["probes"], res["profile"], slowdown, load, hold)
    slack = timer_slack_ms(facts, spec["max_wait_ms"])
    out = []
    for lv in res["levels"]:
        if not lv["checks"]["valid"]:
            continue
        b = lv["batch"]
        sent = np.sort(lv["req"]["sent"][np.isfinite(lv["req"]["sent"])]) * 1e3
        exp = experiment_for(spec, lv["rate_rps"], service, fe, slack)
        sim = simulate(exp, Requests(arrival_ms=sent - sent[0], items=np.ones(len(sent), dtype=np.int64)),
                       seed=np.random.SeedSequence(0))
        r = sim.records
        ok = ~r.dropped
        _, first = np.unique(r.batch_id[ok], return_index=True)
        out.append({"batch_meas": float(np.mean(b["size"])), "batch_sim": float(np.mean(r.batch_size[ok][first])),
                    "hold_meas": float(np.mean((b["t_back"] - b["t_dispatch"]) * 1e3)),
                    "hold_sim": float(np.mean(r.service_ms[ok][first]))})
    return out


def replay(folder: Path, *, slowdown: str | None = None, load: str | None = None, hold: bool | None = None, seeds: int = 3, probes: bool = False,
           detail: bool = False) -> tuple[list[str], list[float]]:
    """The table lines and the p99 errors (inf for a predicted overload) at 20-85% of capacity."""
    lines = ["| config | load | req/s | measured p50 | measured p99 | predicted p50 | predicted p99 | p50 error "
             "| p99 error |" + (" batch meas/sim | hold ms meas/sim |" if detail else "")]
    lines.append("|---" * (9 + 2 * detail) + "|")
    errors: list[float] = []
    for path in sorted(folder.glob("*.npz")):
        res = load_campaign(path)
        if probes:
            res = _as_probe_campaign(res)
        rows, _ = compare_campaign(copy.deepcopy(res), seeds=seeds, slowdown=slowdown, load=load, hold=hold)
        det = iter(_detail(res, slowdown, load, hold)) if detail else None
        for c in rows:
            if not c.valid:
                continue
            m50, m99 = c.measured["p50"][0], c.measured["p99"][0]
            if c.predicted_stable:
                pred = f"{c.predicted['p50'][0]:.2f} | {c.predicted['p99'][0]:.2f} | {c.error(50):+.1%} | {c.error(99):+.1%}"
            else:
                pred = "overload | overload | - | overload"
            extra = ""
            if det is not None:
                d = next(det)
                extra = f" {d['batch_meas']:.1f} / {d['batch_sim']:.1f} | {d['hold_meas']:.2f} / {d['hold_sim']:.2f} |"
            lines.append(f"| {c.config} | {c.load:.2f} | {c.rate_rps:.0f} | {m50:.2f} | {m99:.2f} | {pred} |{extra}")
            if probes or 0.2 <= c.load <= 0.85 + 1e-9:
                errors.append(c.error(99))
    return lines, errors


def summary(errors: list[float]) -> str:
    """Median and worst |p99 error| and the count within 10%."""
    a = np.abs(np.array(errors, dtype=float))
    if not len(a):
        return "no valid levels"
    finite = a[np.isfinite(a)]
    worst = "overload predicted" if not np.all(np.isfinite(a)) else f"{a.max():.1%}"
    return (f"p99 error over {len(a)} valid levels: median |error| {np.median(a):.1%}, worst {worst}"
            f" (worst finite {finite.max():.1%}), within 10%: {int(np.sum(a <= 0.10))}/{len(a)}")


def main(argv: list[str] | None = None) -> None:
    """Print the table and the summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--slowdown", default=None, choices=("line", "points", "convex"),
                   help=f"how the model slowdown is fitted (default {fit.SLOWDOWN})")
    p.add_argument("--load", default=None, choices=("loop_utilization", "request_work"),
                   help=f"what the slowdown is a function of (default {fit.SLOWDOWN_LOAD})")
    p.add_argument("--hold", default=None, choices=("yes", "no"),
                   help=f"fit the slowdown on the model's whole hold (default {'yes' if fit.SLOWDOWN_ON_HOLD else 'no'})")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--probes", action="store_true", help="compare the capacity probes (in sample)")
    p.add_argument("--detail", action="store_true", help="add batch sizes and model hold times")
    args = p.parse_args(argv)
    lines, errors = replay(args.folder, slowdown=args.slowdown, load=args.load, hold=None if args.hold is None else args.hold == "yes", seeds=args.seeds, probes=args.probes,
                           detail=args.detail)
    print("\n".join(lines))
    print("\n" + summary(errors))


if __name__ == "__main__":
    main()
