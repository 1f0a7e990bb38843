"""A source's path for a date: anemoi's ``{date:strftime(...)}`` expanded, globs matched, URLs told apart.

GRIB, netCDF and Zarr sources write dates into their paths the same way, so they expand them here,
in one place, and a path means the same whichever reader opens it.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
from pathlib import Path

import numpy as np

from ..errors import WxpipeError
from ..timeutil import iso, to_datetime

_STRFTIME = re.compile(r"\{date:strftime\(([^)]*)\)\}")


def expand_path(pattern: str, date: np.datetime64 | dt.datetime) -> str:
    """``data/{date:strftime(%Y%m%d%H)}.grib2`` -> the path, glob or URL for ``date``.

    A string, not a :class:`~pathlib.Path`: a URL (``s3://bucket/...``) would lose a slash as a Path.
    """
    d = date if isinstance(date, dt.datetime) else to_datetime(date)
    return _STRFTIME.sub(lambda m: d.strftime(m.group(1)), pattern)


def has_date(pattern: str) -> bool:
    """Whether ``pattern`` names one file per date (it holds a ``{date:strftime(...)}``)."""
    return _STRFTIME.search(pattern) is not None


def is_remote(path: str) -> bool:
    """An fsspec URL (``s3://``, ``https://``) rather than a local path."""
    return "://" in path


def matching_files(pattern: str | list[str], date: np.datetime64) -> list[Path]:
    """The files for ``date``: the expanded path, or every file its glob matches (sorted).

    For a list of paths (anemoi accepts one), those of each in turn. A glob that matches nothing is
    an error naming it; a plain path is returned whether it exists or not.
    """
    if isinstance(pattern, list):
        return [f for p in pattern for f in matching_files(p, date)]
    path = expand_path(pattern, date)
    if not glob.has_magic(path):
        return [Path(path)]
    found = sorted(Path(p) for p in glob.glob(path))
    if not found:
        raise WxpipeError(f"date {iso(date)}: no file matches {path}")
    return found
