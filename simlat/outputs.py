"""Checks on output paths, made before any work starts: a bad ``--records`` or ``--reports`` is
reported at once, not after an hour of sweeping."""

from __future__ import annotations

import os
from pathlib import Path

from simlat.errors import SimlatError


def _nearest_existing(path: Path) -> Path:
    cur = path
    while not cur.exists() and cur != cur.parent:
        cur = cur.parent
    return cur


def check_output_file(path: Path, option: str, *, create_folder: bool = False) -> None:
    """``path`` can be written as a file: not a folder, its folder exists (or, with
    ``create_folder``, can be created) and is writable."""
    if path.is_dir():
        raise SimlatError(f"{option}: {str(path)!r} is a folder; give a file name inside it")
    parent = path.parent if str(path.parent) else Path(".")
    if create_folder and not parent.exists():
        check_output_dir(parent, option)
        return
    if not parent.is_dir():
        raise SimlatError(f"{option}: {str(path)!r}: the folder {str(parent)!r} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise SimlatError(f"{option}: {str(path)!r} exists and is not writable")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise SimlatError(f"{option}: {str(path)!r}: the folder {str(parent)!r} is not writable")


def check_output_dir(path: Path, option: str) -> None:
    """``path`` is a writable folder or can be created as one (no file in the way)."""
    if path.exists() and not path.is_dir():
        raise SimlatError(f"{option}: {str(path)!r} is a file, expected a folder")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise SimlatError(f"{option}: {str(path)!r} cannot be created: {str(base)!r} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise SimlatError(f"{option}: {str(path)!r}: {str(base)!r} is not writable")


TABLE_FORMATS = {".parquet": "Parquet", ".csv": "CSV", ".json": "JSON"}
"""Table files by suffix: what ``--table`` and ``--out`` write (the suffix picks the format)."""


def check_table_file(path: Path, option: str, formats: tuple[str, ...] = tuple(TABLE_FORMATS)) -> None:
    """``path`` can be written and its suffix names one of ``formats``."""
    check_output_file(path, option)
    if path.suffix.lower() not in formats:
        raise SimlatError(f"{option}: {str(path)!r} must end in {', '.join(formats)} (the suffix picks the format)")


def write_frame(frame, path: Path, option: str) -> Path:
    """Write a pandas DataFrame as Parquet, CSV or JSON records by ``path``'s suffix (checked)."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise SimlatError(f"{option}: {str(path)!r} must end in {', '.join(TABLE_FORMATS)} (the suffix picks the format)")
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", indent=1)
    return Path(path)
