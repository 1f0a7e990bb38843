"""The plan of one statistics pass: which chunks a part reads, and what it reduces from each.

Computed first, from the dates alone, then executed (:func:`~wxpipe.statistics.run_statistics`),
as pangeo rechunker plans a rechunk: the plan can be checked without reading a byte.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..dataset import Dataset, Part, chunks_of, write_unit_of
from ..errors import WxpipeError

Pair = tuple[int, int]  # (later date, earlier date) of one tendency sample


@dataclass(frozen=True)
class ChunkRead:
    """One read: the dates of one data chunk (cut at the look-back's start and the part's end)."""

    dates: range
    own: range
    """The part's dates among them: the tail of ``dates``; the others are read for the tendencies only."""
    present: tuple[int, ...]
    """The dates read that are not declared missing."""
    pairs: Mapping[str, tuple[Pair, ...]]
    """Per tendency: the pairs that end in ``own`` and start in the period, both dates present."""

    @property
    def reduced(self) -> tuple[int, ...]:
        """The dates whose fields are the samples of the moments: the present dates of the part."""
        return tuple(i for i in self.present if i in self.own)


@dataclass(frozen=True)
class StatisticsPlan:
    """The reads of one part of a statistics period, in date order."""

    part: Part
    period: range
    """Date indices of the statistics period."""
    dates: range
    """Date indices of the part: whole write units of the period, clipped to it."""
    tendencies: Mapping[str, int]
    reads: tuple[ChunkRead, ...]

    @property
    def look_back(self) -> int:
        """Dates before a part's first one that its tendencies need."""
        return max(self.tendencies.values(), default=0)


def plan_statistics(
    part: Part,
    period: range,
    present: Sequence[bool] | np.ndarray,
    chunk: int,
    unit: int,
    tendencies: Mapping[str, int],
) -> StatisticsPlan:
    """The plan of ``part`` of ``period`` for data chunked ``chunk`` dates and written ``unit`` dates at once.

    ``present`` flags every date of the dataset that is not declared missing. Tendency pairs end in the
    part and start in the period, so the part also reads up to the largest delta's dates before its
    first one; reads follow the data chunks, so none decodes a chunk twice.
    """
    dates = part.dates_in(period, unit)
    back = max(tendencies.values(), default=0)
    lo = max(period.start, dates.start - back)
    spans = chunks_of(range(lo - lo % chunk, dates.stop), chunk) if len(dates) else iter(())
    reads = tuple(_read(range(max(c.start, lo), c.stop), dates, period, present, tendencies) for c in spans)
    return StatisticsPlan(part, period, dates, dict(tendencies), reads)


def _read(
    span: range, dates: range, period: range, present: Sequence[bool] | np.ndarray, tendencies: Mapping[str, int]
) -> ChunkRead:
    keep = tuple(i for i in span if present[i])
    pairs = {
        name: tuple((i, i - k) for i in keep if i >= dates.start and i - k >= period.start and present[i - k])
        for name, k in tendencies.items()
    }
    return ChunkRead(span, range(max(span.start, dates.start), span.stop), keep, pairs)


def plan_for(
    ds: Dataset, start: dt.datetime, end: dt.datetime, tendencies: Mapping[str, int], part: Part
) -> StatisticsPlan:
    """:func:`plan_statistics` for ``part`` of the dates of ``ds`` in ``[start, end]``."""
    idx = ds.indices(start, end)
    if len(idx) == 0:
        raise WxpipeError(f"{ds.path}: no dates between {start} and {end} for statistics")
    missing = set(ds.missing_dates)
    present = np.array([d not in missing for d in ds.dates])
    period = range(int(idx[0]), int(idx[-1]) + 1)
    return plan_statistics(part, period, present, ds.data.chunks[0], write_unit_of(ds.data), tendencies)
