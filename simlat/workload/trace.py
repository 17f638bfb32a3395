"""Trace replay: arrival timestamps (and optionally keys) read from a CSV or Parquet file.

The trace's first timestamp becomes time 0 and every later one keeps its offset, so the replay
reproduces the trace's gaps exactly. ``target_rate_rps`` multiplies every gap by one constant
(the trace's own rate over the target), which keeps the burst shape and sets the mean rate.
With ``loop`` the trace is tiled (one mean gap between the last row of a tile and the first of the
next) until the run has enough requests; without it the run stops at the trace's end and says so.

Timestamps are absolute datetimes (any ISO-8601 text, or a Parquet timestamp column) or numbers in
s, ms or us. ``unit: auto`` reads text as datetimes, and numbers by the column name's suffix
(``time_ms``, ``t_us``, ``arrival (s)``) or, for epoch times, by their magnitude; otherwise as
seconds (then noted in the run's warnings; the unit does not matter when ``target_rate_rps`` is set).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from simlat.config.workload import Trace
from simlat.errors import SimlatError, excerpt
from simlat.workload.stream import Stream, truncate

FIELD = "workload.arrivals"
_SCALE_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SUFFIX = re.compile(
    r"(?:^|[_\s\-(\[])(?P<u>s|sec|secs|seconds|ms|msec|millis|milliseconds|us|usec|micros|microseconds|ns|nanos)[)\]]?$",
    re.IGNORECASE,
)
_SUFFIX_UNIT = {
    "s": "s", "sec": "s", "secs": "s", "seconds": "s",
    "ms": "ms", "msec": "ms", "millis": "ms", "milliseconds": "ms",
    "us": "us", "usec": "us", "micros": "us", "microseconds": "us",
    "ns": "ns", "nanos": "ns",
}
# Epoch times from 2001 to 2286 in each unit.
_EPOCH = (("s", 1e9, 1e10), ("ms", 1e12, 1e13), ("us", 1e15, 1e16), ("ns", 1e18, 1e19))


@dataclass(frozen=True)
class TraceData:
    """A validated trace: offsets from its first timestamp (s), keys if asked, and how it was read."""

    offsets_s: np.ndarray
    keys: np.ndarray | None
    unit: str
    notes: tuple[str, ...] = ()
    items: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(self.offsets_s)

    @property
    def span_s(self) -> float:
        return float(self.offsets_s[-1])

    @property
    def rate_rps(self) -> float:
        """Mean rate: one over the mean gap, (rows - 1) / span."""
        return (self.rows - 1) / self.span_s


@dataclass(frozen=True)
class _Source:
    """Which file a column came from, for error messages."""

    name: str
    is_csv: bool


def _where(i: int, src: _Source) -> str:
    """1-based data row of the file (and its line for CSV, after the header)."""
    return f"row {i + 1} of {src.name} (line {i + 2})" if src.is_csv else f"row {i + 1} of {src.name}"


def _shown(value) -> str:
    """A cell's value for an error message: text quoted, numbers plain."""
    if pd.isna(value):
        return "an empty cell"
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _read(path: Path, columns: list[str | None]) -> tuple[pd.DataFrame, _Source]:
    """Read the timestamp, key and items columns (None: not asked); a missing column is an error
    that lists the available ones."""
    try:
        with open(path, "rb") as fh:
            is_parquet = fh.read(4) == b"PAR1"
    except OSError as err:
        raise SimlatError(f"{FIELD}.path: {str(path)!r} cannot be read: {err.strerror or err}") from None
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            available = list(pq.read_schema(path).names)
        else:
            available = list(pd.read_csv(path, nrows=0, sep=sep).columns)
    except pd.errors.EmptyDataError:
        raise SimlatError(f"{FIELD}.path: {str(path)!r} is empty (no header, no rows); a trace needs a header and at least 2 rows") from None
    except UnicodeDecodeError as err:
        raise SimlatError(f"{FIELD}.path: {str(path)!r} is not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} at offset {err.start})") from None
    except Exception as err:  # noqa: BLE001 - any reader failure is a user-file problem
        kind = "Parquet" if is_parquet else "CSV"
        raise SimlatError(
            f"{FIELD}.path: {str(path)!r} is not a readable {kind} file: {excerpt(str(err))}"
        ) from None
    for field, name in zip(("column", "key_column", "items_column"), columns, strict=True):
        if name is not None and name not in available:
            raise SimlatError(
                f"{FIELD}.{field}: {excerpt(name)} is not a column of {path.name}; available columns: "
                + _columns_excerpt(available)
            )
    wanted = list(dict.fromkeys(c for c in columns if c is not None))
    try:
        if is_parquet:
            return pq.read_table(path, columns=wanted).to_pandas(), _Source(path.name, False)
        return pd.read_csv(path, usecols=wanted, sep=sep), _Source(path.name, True)
    except UnicodeDecodeError as err:
        raise SimlatError(f"{FIELD}.path: {str(path)!r} is not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} at offset {err.start})") from None
    except Exception as err:  # noqa: BLE001 - any reader failure is a user-file problem
        kind = "Parquet" if is_parquet else "CSV"
        raise SimlatError(
            f"{FIELD}.path: {str(path)!r} is not a readable {kind} file: {excerpt(str(err))}"
        ) from None


def _columns_excerpt(available: list, most: int = 8) -> str:
    """At most ``most`` column names, each a short escaped excerpt: a path field pointing at some other
    file must not echo that file's first line."""
    shown = ", ".join(excerpt(str(c), 24) for c in available[:most])
    more = f" and {len(available) - most} more" if len(available) > most else ""
    return shown + more


def _as_datetime_seconds(col: pd.Series, name: str, src: _Source) -> np.ndarray:
    """Seconds since the first timestamp of a datetime (or datetime-text) column."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        text = col.astype("string")
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        if parsed.isna().any():
            mixed = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
            if mixed.isna().sum() < parsed.isna().sum():
                parsed = mixed
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise SimlatError(
            f"{FIELD}.column {name!r}: {_shown(col.iloc[i])} at {_where(i, src)} is not a datetime; "
            "timestamps must all be datetimes (unit: datetime) or all numbers (unit: s, ms or us)"
        )
    return ((parsed - parsed.iloc[0]) / pd.Timedelta(1, "s")).to_numpy(dtype=np.float64)


def _numeric_unit(values: np.ndarray, name: str) -> tuple[str, str | None]:
    """Unit of a numeric column under ``unit: auto``, and a note when it had to be assumed."""
    m = _SUFFIX.search(name.strip())
    if m:
        return _SUFFIX_UNIT[m.group("u").lower()], None
    first = abs(float(values[0]))
    for unit, low, high in _EPOCH:
        if low <= first < high:
            return unit, None
    return "s", f"trace column {name!r}: unit not given and not detectable from its name or values; read as seconds (set unit: s, ms or us to say so)"


def _as_numeric_seconds(col: pd.Series, name: str, unit: str, src: _Source) -> tuple[np.ndarray, str, str | None]:
    """Seconds since the first value of a numeric column (``unit`` may be ``auto``)."""
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raise SimlatError(
            f"{FIELD}.column {name!r}: {_shown(col.iloc[i])} at {_where(i, src)} is not a number; "
            f"timestamps in unit {unit!r} must all be finite numbers (use unit: datetime for date-times)"
        )
    note = None
    if unit == "auto":
        unit, note = _numeric_unit(values, name)
    return (values - values[0]) * _SCALE_S[unit], unit, note


def _looks_numeric(col: pd.Series) -> bool:
    """True when the column holds numbers, or text whose first value is a number."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return True
    if pd.api.types.is_datetime64_any_dtype(col):
        return False
    return not np.isnan(pd.to_numeric(col.iloc[:1], errors="coerce").to_numpy(dtype=np.float64)).any()


def _items(col: pd.Series, name: str, src: _Source) -> np.ndarray:
    """Items per request from a numeric column: rounded, values below 1 count as 1."""
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raise SimlatError(
            f"{FIELD}.items_column {name!r}: {_shown(col.iloc[i])} at {_where(i, src)} is not a number; "
            "items per request must be finite numbers"
        )
    return np.maximum(np.rint(values), 1).astype(np.int64)


def _hash_keys(col: pd.Series) -> np.ndarray:
    """Integer keys as they are; anything else hashed to int64 (stable across runs)."""
    if pd.api.types.is_integer_dtype(col) and not col.isna().any():
        return col.to_numpy(dtype=np.int64)
    return pd.util.hash_pandas_object(col.astype("string"), index=False).to_numpy().view(np.int64)


@lru_cache(maxsize=8)
def _load(
    path: str, _mtime_ns: int, _size: int, column: str, unit: str, key_column: str | None, items_column: str | None
) -> TraceData:
    """Read and validate a trace (cached per file version)."""
    p = Path(path)
    frame, src = _read(p, [column, key_column, items_column])
    col = frame[column]
    if len(col) == 0:
        raise SimlatError(f"{FIELD}.path: {str(p)!r} is empty: a header but no rows; a trace needs at least 2 timestamps")
    if len(col) < 2:
        raise SimlatError(f"{FIELD}.path: {str(p)!r} has 1 row; a trace needs at least 2 timestamps to define a gap")
    note = None
    if unit == "datetime" or (unit == "auto" and not _looks_numeric(col)):
        if unit == "datetime" and pd.api.types.is_numeric_dtype(col):
            raise SimlatError(
                f"{FIELD}.unit: 'datetime' does not fit column {column!r} of {src.name}, which holds numbers; "
                "use unit s, ms, us or auto"
            )
        offsets, unit = _as_datetime_seconds(col, column, src), "datetime"
    else:
        offsets, unit, note = _as_numeric_seconds(col, column, unit, src)
    back = np.flatnonzero(np.diff(offsets) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise SimlatError(
            f"{FIELD}.column {column!r}: time goes back at {_where(i, src)}: {_shown(col.iloc[i])} comes after "
            f"{_shown(col.iloc[i - 1])}; timestamps must be sorted in ascending order"
        )
    if offsets[-1] <= 0:
        raise SimlatError(
            f"{FIELD}.column {column!r}: all {len(offsets)} timestamps of {src.name} are equal; a trace must span a positive time"
        )
    keys = _hash_keys(frame[key_column]) if key_column else None
    items = _items(frame[items_column], items_column, src) if items_column else None
    for a in (offsets, keys, items):
        if a is not None:
            a.setflags(write=False)
    return TraceData(offsets, keys, unit, (note,) if note else (), items)


def load(cfg: Trace) -> TraceData:
    """The validated trace of ``cfg``; errors name the field, the value and the rule."""
    p = Path(cfg.path)
    if not p.exists():
        raise SimlatError(
            f"{FIELD}.path: {str(cfg.path)!r}: no such file (a relative path is resolved against the "
            "experiment file's folder)"
        )
    if p.is_dir():
        raise SimlatError(f"{FIELD}.path: {str(cfg.path)!r} is a directory; expected a CSV or Parquet file")
    st = p.stat()
    return _load(str(p.resolve()), st.st_mtime_ns, st.st_size, cfg.column, cfg.unit, cfg.key_column, cfg.items_column)


def scale_factor(cfg: Trace, data: TraceData) -> float:
    """The factor every gap is multiplied by (1 without a target rate)."""
    return 1.0 if cfg.target_rate_rps is None else data.rate_rps / cfg.target_rate_rps


def offered_rate(cfg: Trace) -> float:
    """The target rate, or the trace's own mean rate (reads the file)."""
    return float(cfg.target_rate_rps) if cfg.target_rate_rps is not None else load(cfg).rate_rps


def replay(cfg: Trace, n: int | None, horizon_ms: float | None, rng: np.random.Generator) -> Stream:
    """``n`` arrivals or those before ``horizon_ms``, with ``rows`` pointing at the trace rows."""
    data = load(cfg)
    notes = list(data.notes) if cfg.target_rate_rps is None else []
    factor_ms = scale_factor(cfg, data) * 1000.0
    offsets_ms = data.offsets_s * factor_ms
    rows_n = data.rows
    if cfg.loop:
        period_ms = (data.span_s + data.span_s / (rows_n - 1)) * factor_ms
        if n is not None:
            tiles = -(-n // rows_n)
        else:
            assert horizon_ms is not None, "either n or horizon_ms"
            tiles = int(np.ceil(horizon_ms / period_ms))
        times = (offsets_ms[None, :] + (np.arange(tiles) * period_ms)[:, None]).ravel()
        rows = np.tile(np.arange(rows_n, dtype=np.int64), tiles)
    else:
        rows = np.arange(rows_n, dtype=np.int64)
        times = offsets_ms
        if n is not None and n > rows_n:
            notes.append(
                f"{FIELD}: the trace has {rows_n} rows, fewer than the {n} requests asked; with loop: false "
                "the run stops at the trace's end (set loop: true to tile it)"
            )
        if horizon_ms is not None and horizon_ms > offsets_ms[-1]:
            notes.append(
                f"{FIELD}: the trace ends at {offsets_ms[-1] / 1000:.6g} s, before the {horizon_ms / 1000:.6g} s "
                "asked; with loop: false the run stops at the trace's end (set loop: true to tile it)"
            )
    times = truncate(times, n, horizon_ms)
    for note in notes:
        warnings.warn(note, stacklevel=3)
    rows = rows[: len(times)]
    items = None if data.items is None else data.items[rows]
    return Stream(times, rows, tuple(notes), items)
