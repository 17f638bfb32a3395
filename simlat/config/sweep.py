"""Sweep specification: grid, objective, prices. Filled in by the sweep work (issue 4)."""

from __future__ import annotations

from simlat.config.base import StrictModel


class Sweep(StrictModel):
    """Placeholder until sweeps land; any key is rejected."""
