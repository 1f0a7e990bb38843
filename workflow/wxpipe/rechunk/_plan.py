"""The plan of a rechunk: target layout, write units and the regions that fit the memory budget.

Pure: computed from the shapes alone, first, then executed (:func:`~wxpipe.rechunk.write_part`) and
checked (:func:`~wxpipe.rechunk.verify`), as pangeo rechunker's ``rechunking_plan``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zarr

from ..dataset import Part
from ..errors import WxpipeError

Span = tuple[int, int]  # along dates, along values


@dataclass(frozen=True)
class Layout:
    """Target chunks (dates, values), optional shards (dates, values, multiples of the chunks), format."""

    chunks: Span
    shards: Span | None = None
    zarr_format: int = 2

    def __post_init__(self) -> None:
        if min(self.chunks) < 1:
            raise WxpipeError(f"chunks {self.chunks}: dates and values must be positive")
        if self.zarr_format not in (2, 3):
            raise WxpipeError(f"zarr format {self.zarr_format}: only 2 and 3 exist")
        if self.shards is not None:
            if self.zarr_format != 3:
                raise WxpipeError("shards need zarr format 3")
            if any(s < 1 or s % c for s, c in zip(self.shards, self.chunks, strict=True)):
                raise WxpipeError(f"shards {self.shards} are not whole multiples of chunks {self.chunks}")

    def fitted(self, n_dates: int, n_values: int) -> Layout:
        """Chunks no larger than the array; shards no larger than the chunks that cover it."""
        chunks = (min(self.chunks[0], n_dates), min(self.chunks[1], n_values))
        if self.shards is None:
            return Layout(chunks, None, self.zarr_format)
        covered = (-(-n_dates // chunks[0]) * chunks[0], -(-n_values // chunks[1]) * chunks[1])
        shards = (min(self.shards[0], covered[0]), min(self.shards[1], covered[1]))
        shards = (shards[0] - shards[0] % chunks[0], shards[1] - shards[1] % chunks[1])
        return Layout(chunks, shards, self.zarr_format)

    @classmethod
    def of(cls, data: zarr.Array[Any]) -> Layout:
        """The layout of an existing ``data`` array."""
        shards = (data.shards[0], data.shards[3]) if data.shards else None
        return cls((data.chunks[0], data.chunks[3]), shards, data.metadata.zarr_format)


@dataclass(frozen=True)
class Region:
    """A date range x point range, covering write units ``units`` (flat, row-major) of one row."""

    dates: range
    values: range
    units: range

    @property
    def selection(self) -> tuple[slice, slice, slice, slice]:
        """The region in a ``data`` array (dates, variables, members, values)."""
        return (
            slice(self.dates.start, self.dates.stop),
            slice(None),
            slice(None),
            slice(self.values.start, self.values.stop),
        )


@dataclass(frozen=True)
class Plan:
    """Write units of the target and how many of them one region holds."""

    shape: tuple[int, int, int, int]
    layout: Layout
    unit: Span  # dates, values of a write unit (a shard, else a chunk)
    grid: Span  # write units along dates, along values
    per_region: int  # write units per region (along values, within one row of dates)
    region_bytes: int

    @property
    def chunks(self) -> tuple[int, int, int, int]:
        return (self.layout.chunks[0], self.shape[1], self.shape[2], self.layout.chunks[1])

    @property
    def shards(self) -> tuple[int, int, int, int] | None:
        s = self.layout.shards
        return None if s is None else (s[0], self.shape[1], self.shape[2], s[1])

    @property
    def n_units(self) -> int:
        return self.grid[0] * self.grid[1]

    def part_units(self, part: Part) -> range:
        """The write units of ``part``: a contiguous share, disjoint from every other part's."""
        return part.dates(self.n_units, 1)

    def regions(self, units: Iterable[int] | None = None) -> list[Region]:
        """``units`` (default: all) grouped into regions: runs of adjacent units in one row of dates."""
        out: list[Region] = []
        run: list[int] = []
        for u in sorted(range(self.n_units) if units is None else units):
            if run and (u != run[-1] + 1 or u // self.grid[1] != run[0] // self.grid[1] or len(run) == self.per_region):
                out.append(self._region(run))
                run = []
            run.append(u)
        if run:
            out.append(self._region(run))
        return out

    def _region(self, run: list[int]) -> Region:
        row, first, last = run[0] // self.grid[1], run[0] % self.grid[1], run[-1] % self.grid[1]
        (ud, uv), (n_dates, n_values) = self.unit, (self.shape[0], self.shape[3])
        dates = range(row * ud, min((row + 1) * ud, n_dates))
        values = range(first * uv, min((last + 1) * uv, n_values))
        return Region(dates, values, range(run[0], run[-1] + 1))


# writing one shard, zarr-python holds its encoded chunks and the assembled shard beside the data:
# about twice the shard's decoded size (measured with zarr-python 3.1), budgeted on top of the region
SHARD_WRITE_OVERHEAD = 2


def plan(shape: tuple[int, ...], layout: Layout, max_mem: int | None = None) -> Plan:
    """Regions of whole write units that fit ``max_mem`` bytes: whole rows of dates if they fit, else
    split along the points; refuse only when one write unit (a chunk, or a shard) alone does not fit.
    Without ``max_mem``, regions are whole rows of dates (what sizing the target alone needs).

    A sharded layout also budgets zarr-python's copies of the one shard being written
    (:data:`SHARD_WRITE_OVERHEAD` times its size)."""
    max_mem = _UNBOUNDED if max_mem is None else max_mem
    n_dates, n_vars, n_ens, n_values = shape
    layout = layout.fitted(n_dates, n_values)
    unit = layout.shards or layout.chunks
    grid = (-(-n_dates // unit[0]), -(-n_values // unit[1]))
    point_bytes = min(unit[0], n_dates) * n_vars * n_ens * 4  # one point of one row of dates
    unit_bytes = point_bytes * min(unit[1], n_values)
    overhead = SHARD_WRITE_OVERHEAD * unit_bytes if layout.shards else 0
    if unit_bytes + overhead > max_mem:
        what = "shard" if layout.shards else "chunk"
        copies = f" (x{1 + SHARD_WRITE_OVERHEAD} with its encoded copies)" if overhead else ""
        raise WxpipeError(
            f"one target {what} of {unit[0]} dates x {unit[1]} points needs {(unit_bytes + overhead) / 1e9:.3f} GB"
            f"{copies}, more than max_mem {max_mem / 1e9:.3f} GB"
        )
    per_region = min(grid[1], (max_mem - overhead) // (point_bytes * unit[1]))
    region_bytes = point_bytes * min(per_region * unit[1], n_values)
    return Plan((n_dates, n_vars, n_ens, n_values), layout, unit, grid, per_region, region_bytes)


_UNBOUNDED = 1 << 62


def parse_size(text: str) -> int:
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "b": 1}
    t = text.strip().lower()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * factor)
    return int(t)


def parse_extent(text: str) -> Span:
    """``dates=250,values=1000`` as ``(250, 1000)``."""
    try:
        items = dict(item.split("=") for item in text.replace(" ", "").split(","))
        return int(items.pop("dates")), int(items.pop("values"))
    except (ValueError, KeyError):
        raise WxpipeError(f"{text!r} is not like 'dates=250,values=1000'") from None
