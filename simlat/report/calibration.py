"""Calibration data for the report: latency vs batch size per variant, read from profile files.

A profile that cannot be read is left out with a note naming the file and the reason; the report
never fails because of one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simlat.errors import SimlatError

COLUMNS = ["profile", "device", "model", "variant", "variant_name", "items", "median_ms", "p99_batch_ms", "p01_ms", "mean_ms", "n"]


def _quantile(levels: list[float], quantiles: list[float], q: float) -> float:
    return float(np.interp(q, levels, quantiles))


def profile_frame(paths: list[Path], only: set[tuple[str, str, str]] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Steady-state batch latency per (model, variant, batch size) over all readable profiles.

    ``only``: the (profile file name, model, variant) triples to keep (those the experiment uses);
    None keeps every measured variant.

    Returns the table (``COLUMNS``; ``variant`` is ``model/variant`` and ``variant_name`` the
    variant alone, both prefixed by the device when profiles of several devices are shown) and the
    notes: unreadable files, skipped variants.
    """
    from simlat.profiles.schema import load_profile

    rows: list[dict] = []
    notes: list[str] = []
    devices: set[str] = set()
    for path in paths:
        p = Path(path)
        try:
            prof = load_profile(p)
        except SimlatError as err:
            notes.append(f"Profile {p.name} left out: {err.message}")
            continue
        except Exception as err:  # a report must not fail on a broken file
            notes.append(f"Profile {p.name} left out: {type(err).__name__}: {err}")
            continue
        device = prof.provenance.device_name or prof.provenance.device
        levels = prof.quantile_levels
        for model in prof.models:
            for var in model.variants:
                if only is not None and (p.name, model.name, var.name) not in only:
                    continue
                devices.add(device)
                if var.status != "ok":
                    notes.append(f"{p.name}: {model.name}/{var.name} was skipped in calibration: {var.reason}")
                    continue
                for pt in var.steady:
                    q = pt.dist.quantiles_ms
                    rows.append(
                        {
                            "profile": p.name,
                            "device": device,
                            "model": model.name,
                            "variant": f"{model.name}/{var.name}",
                            "variant_name": var.name,
                            "items": pt.batch_size,
                            "median_ms": _quantile(levels, q, 0.5),
                            "p99_batch_ms": _quantile(levels, q, 0.99),
                            "p01_ms": _quantile(levels, q, 0.01),
                            "mean_ms": pt.dist.mean_ms,
                            "n": pt.dist.n,
                        }
                    )
    df = pd.DataFrame(rows, columns=COLUMNS)
    if len(devices) > 1:
        df["variant"] = df["device"] + ": " + df["variant"]
        df["variant_name"] = df["device"] + ": " + df["variant_name"]
    return df, notes
