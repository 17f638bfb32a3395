"""The validation table in Markdown, from saved campaigns: ``simlat validate-inside report DIR``.

For every ``*.npz`` campaign in DIR (written by ``simlat validate-inside measure``): the levels
compared with the calibrated simulator, the naive prediction (model profile alone) beside it,
and the summary of p99 errors (median and worst over valid levels at 20-85% of capacity).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from simlat.validate.compare import compare_campaign
from simlat.validate.measure import load


def _ms(ci: list[float]) -> str:
    return f"{ci[0]:.2f} [{ci[1]:.2f}, {ci[2]:.2f}]"


def markdown(paths: list[Path], seeds: int = 3, slowdown: str | None = None) -> tuple[str, list[float]]:
    """The table and the list of p99 relative errors (inf for a predicted overload)."""
    lines = ["| config | load | req/s | measured p50 | measured p99 | predicted p50 | predicted p99 | p50 error "
             "| p99 error | naive p99 | naive p99 error | backlog episodes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    errors: list[float] = []
    for path in paths:
        res = load(path)
        rows, _ = compare_campaign(res, seeds=seeds, slowdown=slowdown)
        res = load(path)
        naive, _ = compare_campaign(res, seeds=1, frontend=False)
        for c, n in zip(rows, naive, strict=True):
            if not c.valid:
                lines.append(f"| {c.config} | {c.load:.2f} | {c.rate_rps:.0f} | invalid run: "
                             f"send lag p99 {c.checks['lag_p99_ms']:.2f} ms, {c.checks['failed']} failed | | | | | | | | |")
                continue
            ep = c.episodes
            eps = "none" if ep["count"] == 0 else f"{ep['count']} ({ep['seconds']:.2f} s)"
            eps += f", max {ep['max_ms']:.0f} ms"
            if c.predicted_stable:
                pred = (_ms(c.predicted["p50"]), _ms(c.predicted["p99"]), f"{c.error(50):+.1%}", f"{c.error(99):+.1%}")
            else:
                pred = ("overload", "overload", "overload predicted", "overload predicted")
            if 0.2 <= c.load <= 0.85:
                errors.append(c.error(99))
            lines.append(f"| {c.config} | {c.load:.2f} | {c.rate_rps:.0f} | {_ms(c.measured['p50'])} | "
                         f"{_ms(c.measured['p99'])} | {' | '.join(pred)} | {n.predicted['p99'][0]:.2f} | "
                         f"{n.error(99):+.1%} | {eps} |")
    return "\n".join(lines), errors


def main(argv: list[str] | None = None) -> None:
    """Print the table and the p99 error summary."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: simlat validate-inside report DIR [SLOWDOWN]: the Markdown table of the campaigns (*.npz) in DIR")
        return
    folder = Path(args[0])
    if not folder.is_dir():
        from simlat.errors import SimlatError

        raise SimlatError(f"validate-inside report: {str(folder)!r} is not a folder of saved campaigns")
    slowdown = args[1] if len(args) > 1 else None
    table, errors = markdown(sorted(folder.glob("*.npz")), slowdown=slowdown)
    print(table)
    a = np.abs(np.array(errors))
    print(f"\np99 error over {len(a)} valid levels at 20-85% of capacity: median |error| {np.median(a):.1%}, "
          f"worst {np.max(a):.1%}, within 10%: {int(np.sum(a <= 0.10))}/{len(a)}")


if __name__ == "__main__":
    main()
