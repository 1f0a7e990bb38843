"""Parts and write units: the one place that shares dates out between jobs.

A *write unit* is what one writer writes whole: a shard when the array is sharded, else a chunk of
dates. A part is a contiguous run of whole write units, so parts run as separate jobs never touch
the same file; ``wxpipe load``, ``wxpipe statistics`` and the Snakefile's per-part inputs all ask here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import zarr

from ..errors import WxpipeError

if TYPE_CHECKING:
    from ..recipe import Recipe


class OutputBlock(Protocol):
    """What a write unit is read from in a recipe's ``output`` block."""

    @property
    def shards(self) -> int | None: ...

    @property
    def dates_chunk(self) -> int: ...


def write_unit_of(layout: zarr.Array[Any] | OutputBlock) -> int:
    """Dates written at once, of an array or of the one a recipe's ``output`` block makes: a shard
    when sharded (a shard is written whole), else a chunk."""
    if isinstance(layout, zarr.Array):
        return int(layout.shards[0] if layout.shards else layout.chunks[0])
    return layout.shards or layout.dates_chunk


@dataclass(frozen=True)
class Part:
    """Part ``index`` (1-based) of ``count``: a contiguous, write-unit-aligned range of date indices."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Part:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise WxpipeError(f"part {text!r} is not like '1/4'") from None
        if not 1 <= i <= n:
            raise WxpipeError(f"part {text!r}: index must be between 1 and {n}")
        return cls(i, n)

    def dates(self, n_dates: int, unit: int) -> range:
        """The part's share of ``n_dates`` dates cut in write units of ``unit`` dates."""
        return self.dates_in(range(n_dates), unit)

    def dates_in(self, span: range, unit: int) -> range:
        """The part's share of ``span`` (a statistics period): the write units it touches are shared
        out as evenly as can be, and the share is clipped to ``span``; so no two parts touch one unit."""
        u0 = span.start // unit
        n_units = (span.stop - 1) // unit - u0 + 1 if len(span) else 0
        lo = u0 + (self.index - 1) * n_units // self.count
        hi = u0 + self.index * n_units // self.count
        first = min(max(lo * unit, span.start), span.stop)
        return range(first, max(first, min(hi * unit, span.stop)))


def chunks_of(rng: range, chunk: int) -> Iterator[range]:
    """Split ``rng`` at the multiples of ``chunk`` (whole chunks when ``rng`` starts on one)."""
    for lo in range(rng.start, rng.stop, chunk):
        yield range(lo, min(lo + chunk, rng.stop))


@dataclass(frozen=True)
class LoadPlan:
    """What one ``wxpipe load --part`` writes: its dates, cut in write units, and the units it keeps."""

    part: Part
    """The part planned."""
    dates: range
    """Its date indices: whole write units but at the dataset's end."""
    unit: int
    """Dates per write unit."""
    todo: tuple[range, ...]
    """The write units to write, in date order."""
    kept: tuple[range, ...]
    """The write units a resumed part keeps: an interrupted run flagged every date of them loaded."""


def plan_load(part: Part, n_dates: int, unit: int, loaded: np.ndarray | None = None) -> LoadPlan:
    """The plan of ``part`` of ``n_dates`` dates written ``unit`` at a time; ``loaded`` (the build flags,
    when resuming) keeps the units whose dates are all flagged, None rewrites every unit."""
    dates = part.dates(n_dates, unit)
    units = tuple(chunks_of(dates, unit))
    if loaded is None:
        return LoadPlan(part, dates, unit, units, ())
    done = [bool(loaded[u.start : u.stop].all()) for u in units]
    todo = tuple(u for u, ok in zip(units, done, strict=True) if not ok)
    return LoadPlan(part, dates, unit, todo, tuple(u for u, ok in zip(units, done, strict=True) if ok))


def load_dates(recipe: Recipe, part: Part) -> range:
    """The date indices ``wxpipe load --part`` writes for ``recipe`` (what Snakemake asks of a part's inputs)."""
    return part.dates(len(recipe.dates.all()), write_unit_of(recipe.output))
