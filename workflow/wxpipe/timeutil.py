"""Dates and frequencies as anemoi-datasets writes them (``6h``, ``1d``), in numpy datetime64[s]."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

_FREQ = re.compile(r"^\s*(\d+)\s*([hd])\s*$")


def parse_frequency(text: str | int) -> dt.timedelta:
    """``"6h"`` -> 6 hours; a bare integer means hours, as in anemoi recipes."""
    if isinstance(text, int):
        return dt.timedelta(hours=text)
    m = _FREQ.match(text)
    if not m:
        raise ValueError(f"frequency {text!r} is not like '6h' or '1d'")
    n, unit = int(m.group(1)), m.group(2)
    return dt.timedelta(hours=n) if unit == "h" else dt.timedelta(days=n)


def format_frequency(delta: dt.timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 and hours >= 24 else f"{hours}h"


def date_range(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> np.ndarray:
    """Inclusive range of dates as datetime64[s]."""
    s = np.datetime64(start, "s")
    e = np.datetime64(end, "s")
    return np.arange(s, e + np.timedelta64(1, "s"), np.timedelta64(int(step.total_seconds()), "s"))


def seconds(value: Any) -> np.datetime64:
    """A date (datetime, datetime64 or ISO string) as datetime64[s]."""
    return np.datetime64(np.asarray(value).astype("datetime64[s]").item(), "s")


def to_datetime(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(seconds(value)))


def iso(value: Any) -> str:
    return str(seconds(value))
