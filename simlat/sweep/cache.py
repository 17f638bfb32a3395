"""Per-configuration result cache: one Parquet file per (configuration, accuracy settings) hash.

``<root>/<experiment name>/<key>.parquet`` holds every evaluation of one configuration's search
(the target rate first), with the configuration id and the key inside it: an entry whose ids do
not match the file's name (a file copied over another one) is recomputed, never trusted. A sweep that is interrupted resumes from the files already written; a
changed experiment recomputes only the configurations whose hash changed. Files are written to a
temporary name and renamed, so a killed sweep never leaves a half-written entry.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path

import pandas as pd

import simlat
from simlat.sweep.evaluate import Evaluation
from simlat.sweep.hashing import code_fingerprint, digest
from simlat.sweep.search import Outcome, SearchTask

# Bumped when the rate search's rule changes (2: it ends where the SLO or stability binds).
SEARCH_REVISION = 2
_EVAL_FIELDS = [f.name for f in dataclasses.fields(Evaluation)]
# Only these sweep settings change a configuration's results (not the grid, objective or prices).
_ACCURACY = ("rate_search", "min_requests", "max_requests", "ci_rel_tolerance", "confidence")


def task_key(task: SearchTask) -> str:
    """Hash of the configuration, the accuracy settings, the target rate, the seed, the version and
    the fingerprint of the simulation code (:func:`simlat.sweep.hashing.code_fingerprint`)."""
    settings = task.sweep.model_dump(mode="json", include=set(_ACCURACY))
    return digest(
        {
            "config": task.config_id,
            "settings": settings,
            "target_rps": task.target_rps,
            "seed": task.seed,
            "version": simlat.__version__,
            "code": code_fingerprint(),
            "search": SEARCH_REVISION,
        }
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "experiment"


class ResultCache:
    """Parquet files under ``root/<experiment>``; ``root=None`` disables caching."""

    def __init__(self, root: str | Path | None, experiment_name: str):
        self.dir = None if root is None else Path(root) / _safe(experiment_name)

    def _path(self, task: SearchTask) -> Path | None:
        return None if self.dir is None else self.dir / f"{task_key(task)}.parquet"

    def load(self, task: SearchTask) -> Outcome | None:
        """The cached outcome of ``task``, or None."""
        path = self._path(task)
        if path is None or not path.exists():
            return None
        try:
            df = pd.read_parquet(path)
        except Exception:  # a corrupt entry is recomputed, never trusted
            return None
        if df.empty or list(df.columns[: len(_EVAL_FIELDS)]) != _EVAL_FIELDS:
            return None
        # A file copied over another configuration's key is not trusted: the ids inside must match.
        if "config_id" not in df.columns or "key" not in df.columns:
            return None
        if (df["config_id"] != task.config_id).any() or (df["key"] != path.stem).any():
            return None
        evals = [Evaluation(**{k: _py(r[k]) for k in _EVAL_FIELDS}) for r in df.to_dict("records")]
        first = df.iloc[0]
        limit = str(first["limit"]) if "limit" in df.columns else ""
        return Outcome(task.config_id, evals[0], float(first["max_rate_rps"]), evals, str(first["note"]), limit=limit)

    def store(self, task: SearchTask, outcome: Outcome, params: dict | None = None) -> None:
        """Write ``outcome`` atomically; ``params`` (the swept values) become columns named by their
        dotted paths, after the evaluation columns, so a cache file says which configuration it holds."""
        path = self._path(task)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        df = pd.DataFrame([e.row() for e in outcome.evaluations], columns=_EVAL_FIELDS)
        df["config_id"] = outcome.config_id
        df["key"] = path.stem
        df["max_rate_rps"] = outcome.max_rate_rps if not math.isnan(outcome.max_rate_rps) else math.nan
        df["note"] = outcome.note
        df["limit"] = outcome.limit
        df["experiment"] = self.dir.name
        for param, value in (params or {}).items():
            df[param] = str(value) if isinstance(value, dict | list) else value
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)


def _py(v):
    """numpy scalars to Python scalars."""
    return v.item() if hasattr(v, "item") else v
