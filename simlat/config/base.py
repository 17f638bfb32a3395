"""The one base class every config model extends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, strict config model.

    ``extra="forbid"``: a misspelled key is an error, never silently dropped (a dropped key keeps a
    stale config "working"). ``frozen=True``: sweeps can hash and copy configs safely.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
