"""The entry point of a contention run: ``simlat calibrate --contention SPEC`` and, on hosts without
the CLI's dependencies, ``python -m simlat.calibrate.contention`` (the same options).

Checks the request (bad input: :class:`SimlatError` naming the option, value and rule), runs the
campaign with progress lines on stderr, writes the profile and returns it as a dict.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from simlat.errors import SimlatError

DEFAULT_INSTANCES = "1,2,3,4"
DEFAULT_MODES = "processes,mps,streams"
DEVICES = ("cpu", "cuda")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def estimate_s(n_members: int, sets: list, modes: list[str], window_s: float, repeats: int) -> float:
    """Seconds of measuring windows the campaign will run (start-up and model builds not counted)."""
    from simlat.calibrate.contention.campaign import LEAD_S

    windows = n_members + sum(1 for s in sets if s.k > 1)
    return windows * repeats * len(modes) * (window_s + LEAD_S)


def contention(
    *,
    device: str,
    spec: str,
    out: str | Path,
    instances: str = DEFAULT_INSTANCES,
    pairs: bool = False,
    modes: str = DEFAULT_MODES,
    window_s: float = 3.0,
    repeats: int = 2,
    warmup_s: float = 2.0,
    threads: int | None = None,
    time_limit_s: float | None = None,
    seq_len: int = 64,
    source_profile: str | None = None,
    notes: list[str] | None = None,
    command: str | None = None,
    log: Callable[[str], None] = _log,
) -> dict:
    """Measure the contention sets of ``spec`` and write the profile to ``out``; the profile as a dict."""
    from simlat.calibrate.contention import profile
    from simlat.calibrate.contention.campaign import Campaign, Settings
    from simlat.calibrate.contention.spec import make_sets, parse_instances, parse_modes, parse_spec
    from simlat.outputs import check_output_file

    if device not in DEVICES:
        raise SimlatError(f"--device: {device!r} is not a device; valid: {', '.join(DEVICES)}")
    members = parse_spec(spec, device)
    ks = parse_instances(instances)
    mode_list = parse_modes(modes)
    sets = make_sets(members, ks, pairs)
    if not window_s > 0:
        raise SimlatError(f"--window-s: {window_s} is invalid: it must be > 0 seconds")
    if repeats < 1:
        raise SimlatError(f"--repeats: {repeats} is invalid: it must be >= 1")
    if warmup_s < 0:
        raise SimlatError(f"--warmup-s: {warmup_s} is invalid: it must be >= 0 seconds")
    if threads is not None and threads < 1:
        raise SimlatError(f"--threads: {threads} is invalid: it must be >= 1")
    if time_limit_s is not None and time_limit_s <= 0:
        raise SimlatError(f"--time-limit: {time_limit_s} is invalid: it must be > 0 seconds")
    if seq_len < 1:
        raise SimlatError(f"--seq-len: {seq_len} is invalid: it must be >= 1")
    out = Path(out)
    if out.suffix != ".json":
        raise SimlatError(f"--out: {str(out)!r} is invalid: a contention profile is a .json file")
    check_output_file(out, "--out", create_folder=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(device=device, window_s=window_s, repeats=repeats, warmup_s=warmup_s, threads=threads,
                        time_limit_s=time_limit_s, seq_len=seq_len)
    t0 = time.monotonic()
    est = estimate_s(len(members), sets, mode_list, window_s, repeats)
    log(f"contention: {len(sets)} sets x {len(mode_list)} mode(s) ({', '.join(mode_list)}) x {repeats} repeat(s): "
        f"about {est:.0f} s of measuring windows, plus process start-up and model builds")
    camp = Campaign(settings, members, sets, log)
    env = camp.env_info()
    log(f"contention: measuring on {env.get('device_name', device)} (torch {env.get('torch')})")
    res = camp.run(mode_list)
    cmd = command or shlex.join(["simlat", *sys.argv[1:]])
    data = profile.build(res, sets, mode_list, settings, command=cmd, elapsed_s=time.monotonic() - t0,
                         source_profile=source_profile, notes=notes)
    if not data["measurements"]:
        reasons = [f"{u['mode']}: {u['reason']}" for u in data["unavailable"]][:5]
        raise SimlatError(f"no contention set could be measured; nothing written to {out}:", reasons)
    profile.save(data, out)
    return data


def parser() -> argparse.ArgumentParser:
    """The options of ``python -m simlat.calibrate.contention`` (those of ``simlat calibrate --contention``)."""
    p = argparse.ArgumentParser(prog="python -m simlat.calibrate.contention",
                                description="Measure the slowdown of model instances that share one device.")
    p.add_argument("--contention", required=True, help="model/variant@batch entries, comma-separated")
    p.add_argument("--out", required=True, help="contention profile to write (.json)")
    p.add_argument("--device", default="cuda", help="cuda (or cpu: CPU contention between processes)")
    p.add_argument("--instances", default=DEFAULT_INSTANCES, help="copies of each entry run at once")
    p.add_argument("--pairs", action="store_true", help="also every mixed pair of entries")
    p.add_argument("--modes", default=DEFAULT_MODES, help="processes, mps, streams (comma-separated)")
    p.add_argument("--window-s", type=float, default=3.0, help="seconds per measuring window")
    p.add_argument("--repeats", type=int, default=2, help="windows per set (the spread of the slowdown is between them)")
    p.add_argument("--warmup-s", type=float, default=2.0, help="most seconds of warm-up per loaded instance")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument("--time-limit", type=float, default=None, help="stop starting windows after this many seconds")
    p.add_argument("--seq-len", type=int, default=64, help="sequence length of encoder_small")
    p.add_argument("--source-profile", default=None, help="the model profile of the same device (recorded)")
    p.add_argument("--note", action="append", default=None, help="a note for the provenance (repeatable)")
    return p


def summary_lines(data: dict) -> list[str]:
    """One line per measurement: mode, members, slowdowns."""
    from simlat.calibrate.contention.profile import _label

    out = []
    for m in data["measurements"]:
        slow = ", ".join(f"{x:.2f}±{sd:.2f}" for x, sd in zip(m["slowdown"], m["slowdown_sd"], strict=True))
        out.append(f"{m['mode']:9s} {_label(m['members'])}: slowdown {slow}")
    for u in data["unavailable"]:
        out.append(f"{u['mode']:9s} not measured: {u['reason']}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m simlat.calibrate.contention``: exit 0, or 2 with the error on bad input."""
    args = parser().parse_args(argv)
    try:
        data = contention(device=args.device, spec=args.contention, out=args.out, instances=args.instances,
                          pairs=args.pairs, modes=args.modes, window_s=args.window_s, repeats=args.repeats,
                          warmup_s=args.warmup_s, threads=args.threads, time_limit_s=args.time_limit,
                          seq_len=args.seq_len, source_profile=args.source_profile, notes=args.note,
                          command=shlex.join(["python", "-m", "simlat.calibrate.contention", *(argv or sys.argv[1:])]))
    except SimlatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(data)))
    print(f"contention profile written to {args.out}")
    return 0
