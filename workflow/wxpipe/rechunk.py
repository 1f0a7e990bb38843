"""Rechunking a dataset into another layout, and verifying a layout against its source.

A layout keeps the dataset contract (``data``, ``dates``, ``latitudes``, ``longitudes``, the
statistics arrays, the attributes) in other chunks: ``(dates, all variables, all members, values)``,
optionally Zarr v3 with shards of whole chunks. The plan is computed first, then executed:

- the *write unit* is a target shard when sharded, else a target chunk; units are written whole and
  never shared between two writers, so parts (:func:`write_part`) run as separate jobs;
- a *region* is a run of write units in one row of dates (a date range x a point range), read once
  from the source; it is the unit of memory: whole rows of dates when they fit ``max_mem``, else
  as many units along the points as fit, and a refusal only when one unit alone does not fit;
- a per-unit flag (``_rechunk_done``, like the dataset's ``_build_loaded``) is written after the
  unit's data, so an interrupted part resumes (``resume=True``) and nothing half-written is done.

:func:`init` writes the empty layout, :func:`write_part` one part, :func:`rechunk` both in one
process; :func:`verify` compares a layout with its source region by region.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import uuid as uuidlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .dataset import (
    BUILD,
    Dataset,
    Part,
    array,
    build_flags,
    check_statistics,
    chunk_file_codec,
    codecs,
    read,
    read_dates,
    remove_build,
    write_chunk_file,
)
from .errors import WxpipeError
from .fsutil import remove_temps
from .progress import progress

log = logging.getLogger(__name__)


def small_arrays(root: Any) -> list[str]:
    """Every array of a dataset but ``data`` and build bookkeeping: dates, grid, all statistics
    (tendency statistics included), so a layout carries the same contract as its source."""
    return sorted(k for k in root.array_keys() if k != "data" and not k.startswith("_"))


DONE = f"{BUILD}/done"  # per target chunk (shard); verify removes the build group of a complete layout
Extent = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """Target chunks (dates, values), optional shards (dates, values, multiples of the chunks), format."""

    chunks: Extent
    shards: Extent | None = None
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
    def of(cls, data: zarr.Array) -> Layout:
        """The layout of an existing ``data`` array."""
        shards = (data.shards[0], data.shards[3]) if data.shards else None
        return cls((data.chunks[0], data.chunks[3]), shards, data.metadata.zarr_format)


@dataclass(frozen=True)
class Region:
    """A date range x point range, covering write units ``units`` (flat, row-major) of one row."""

    dates: range
    values: range
    units: range


@dataclass(frozen=True)
class Plan:
    """Write units of the target and how many of them one region holds."""

    shape: tuple[int, int, int, int]
    layout: Layout
    unit: Extent  # dates, values of a write unit (a shard, else a chunk)
    grid: Extent  # write units along dates, along values
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


def plan(shape: tuple[int, ...], layout: Layout, max_mem: int) -> Plan:
    """Regions of whole write units that fit ``max_mem`` bytes: whole rows of dates if they fit, else
    split along the points; refuse only when one write unit (a chunk, or a shard) alone does not fit.

    A sharded layout also budgets zarr-python's copies of the one shard being written
    (:data:`SHARD_WRITE_OVERHEAD` times its size)."""
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


def parse_size(text: str) -> int:
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "b": 1}
    t = text.strip().lower()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * factor)
    return int(t)


def parse_extent(text: str) -> Extent:
    """``dates=250,values=1000`` as ``(250, 1000)``."""
    try:
        items = dict(item.split("=") for item in text.replace(" ", "").split(","))
        return int(items.pop("dates")), int(items.pop("values"))
    except (ValueError, KeyError):
        raise WxpipeError(f"{text!r} is not like 'dates=250,values=1000'") from None


def init(src: str | Path, dst: str | Path, layout: Layout) -> Plan:
    """Write the empty layout ``dst`` (replacing any) with all metadata, the small arrays and the flags."""
    source = Dataset(src)
    check_statistics(source)  # a layout never carries a set an interrupted run left mixed
    p = plan(source.data.shape, layout, max_mem=1 << 62)
    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    fmt = p.layout.zarr_format
    root = zarr.open_group(str(dst), mode="w", zarr_format=fmt)  # type: ignore[arg-type]
    root.create_array(
        "data",
        shape=source.data.shape,
        chunks=p.chunks,
        shards=p.shards,
        dtype="float32",
        fill_value=np.nan,
        compressors=codecs(None, fmt),
    )
    for name in small_arrays(source.root):
        root.create_array(name, data=read(array(source.root, name)))
    root.create_group(BUILD).create_array("done", shape=p.grid, chunks=(1, 1), dtype="bool", fill_value=False)
    attrs: dict[str, Any] = {k: v for k, v in source.attrs.items() if k not in ("total_size", "total_number_of_files")}
    attrs.update(
        {
            "uuid": str(uuidlib.uuid4()),
            "source_uuid": source.uuid,
            "chunks": list(p.chunks),
            # not "layout": anemoi-datasets reserves that attribute (gridded, tabular) and refuses others
            "wxpipe_layout": {"chunks": list(p.chunks), "shards": p.shards and list(p.shards), "zarr_format": fmt},
        }
    )
    root.attrs.update(attrs)
    log.info("initialised layout %s of %s: chunks %s, shards %s, Zarr v%d", dst, src, p.chunks, p.shards, fmt)
    return p


def done(dst: str | Path) -> np.ndarray:
    """The per-write-unit flags of a layout, flattened row-major."""
    return read(array(zarr.open_group(str(dst), mode="r"), DONE)).ravel()


def write_part(
    src: str | Path, dst: str | Path, part: Part, max_mem: int, resume: bool = False, threads: int = 1
) -> range:
    """Write the write units of ``part`` (all of them: a rerun part rewrites exactly its own).

    With ``resume``, units an interrupted run already flagged are kept. Returns the part's units.
    ``threads`` read a region's dates and encode its chunks side by side when both layouts allow
    chunk files to be read and written directly (Zarr v2, see :class:`_ChunkFiles`).
    """
    source = Dataset(src)
    root = zarr.open_group(str(dst), mode="r+")
    out = array(root, "data")
    if out.shape != source.data.shape:
        raise WxpipeError(f"{dst}: shape {out.shape} is not the source's {source.data.shape} (run rechunk-init)")
    p = plan(out.shape, Layout.of(out), max_mem)
    flags = build_flags(root, DONE, p.grid, (1, 1))
    units = p.part_units(part)
    flat = read(flags).ravel()
    if not resume:
        for r in p.regions(u for u in units if flat[u]):
            _flag(flags, p, r, False)
        flat[:] = False
    todo = [u for u in units if not flat[u]]
    regions = p.regions(todo)
    files = _ChunkFiles.of(Path(dst), out) if source.direct_codec is not None else None
    log.info(
        "rechunk part %d/%d: units %d..%d of %d, %d to write in %d regions of up to %.1f MB, %s, %d threads",
        *(part.index, part.count, units.start, units.stop - 1, p.n_units, len(todo), len(regions)),
        p.region_bytes / 1e6,
        "chunk files directly" if files else "through zarr-python",
        threads,
    )
    # one buffer for every region: fresh pages for each would cost the kernel as much as the decoding
    itemsize = source.data.dtype.itemsize
    buffer = np.empty(p.region_bytes // 4 * itemsize if files is not None and regions else 0, np.uint8)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for r in progress(iterable=regions, desc=f"rechunk {part.index}/{part.count}", unit="region"):
            sel = (slice(r.dates.start, r.dates.stop), slice(None), slice(None), slice(r.values.start, r.values.stop))
            if files is not None:
                files.write(_read_region(source, r, pool, threads, buffer), r, pool)
            elif p.shards is None:
                out[sel] = read(source.data, sel)
            else:  # one shard at a time: zarr holds one encoded shard beside the region, not all of them
                block = read(source.data, sel)
                for lo in range(0, len(r.values), p.unit[1]):
                    hi = min(lo + p.unit[1], len(r.values))
                    out[(*sel[:3], slice(r.values.start + lo, r.values.start + hi))] = block[..., lo:hi]
                del block
            _flag(flags, p, r, True)
    return units


def _read_region(source: Dataset, r: Region, pool: ThreadPoolExecutor, threads: int, buffer: np.ndarray) -> np.ndarray:
    """The region's data in ``buffer``, its dates read from the chunk files by ``threads`` threads in slices."""
    n_threads = max(1, threads)
    step = source.data.chunks[0]
    whole = len(r.values) == source.data.shape[3]
    shape = (len(r.dates), *source.data.shape[1:3], len(r.values))
    slab = buffer[: int(np.prod(shape)) * source.data.dtype.itemsize].view(source.data.dtype).reshape(shape)
    n_chunks = -(-len(r.dates) // step)
    cuts = sorted({r.dates.start + min(len(r.dates), k * n_chunks // n_threads * step) for k in range(n_threads + 1)})

    def fill(lo: int, hi: int) -> None:
        if whole:
            read_dates(source, lo, hi, out=slab[lo - r.dates.start : hi - r.dates.start])
            return
        for a in range(lo, hi, step):  # one source chunk at a time: memory stays that of the region
            b = min(a + step - a % step, hi)
            slab[a - r.dates.start : b - r.dates.start] = read_dates(source, a, b)[..., r.values.start : r.values.stop]

    for f in [pool.submit(fill, lo, hi) for lo, hi in itertools.pairwise(cuts)]:
        f.result()
    return slab


@dataclass(frozen=True)
class _ChunkFiles:
    """A Zarr v2 target whose chunk files wxpipe encodes and writes itself, each atomically (temporary
    name, then rename: no torn chunk after kill -9); zarr-python's per-call overhead and its single
    encoding thread cost more than the work. Edge chunks are stored whole, padded with NaN, as Zarr does."""

    path: Path
    codec: Any  # numcodecs codec, or False for uncompressed chunks
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, path: Path, data: zarr.Array) -> _ChunkFiles | None:
        codec = chunk_file_codec(path, data)
        return None if codec is None else cls(path, codec, tuple(data.chunks), np.dtype(data.dtype))

    def write(self, slab: np.ndarray, r: Region, pool: ThreadPoolExecutor) -> None:
        """Write the target chunks of region ``r``, whose data is ``slab``, with the pool's threads."""
        d, v = self.chunks[0], self.chunks[3]
        row = r.dates.start // d
        jobs = [
            pool.submit(self._write_chunk, slab[..., a : a + v], f"{row}.0.0.{(r.values.start + a) // v}")
            for a in range(0, len(r.values), v)
        ]
        for f in jobs:
            f.result()

    def _write_chunk(self, block: np.ndarray, key: str) -> None:
        piece = (
            np.full(self.chunks, np.nan, self.dtype)
            if block.shape != self.chunks
            else np.empty(self.chunks, self.dtype)
        )
        piece[: block.shape[0], ..., : block.shape[3]] = block
        write_chunk_file(self.path / "data" / key, self.codec, piece)


def _flag(flags: zarr.Array, p: Plan, r: Region, value: bool) -> None:
    row = r.units.start // p.grid[1]
    flags[row, r.units.start % p.grid[1] : (r.units.stop - 1) % p.grid[1] + 1] = value


def rechunk(src: str | Path, dst: str | Path, layout: Layout, max_mem: int, threads: int = 1) -> Dataset:
    """Write ``dst`` with the same contract as ``src`` in ``layout``, in one process."""
    plan(Dataset(src).data.shape, layout, max_mem)  # refuse before replacing anything
    init(src, dst, layout)
    write_part(src, dst, Part(1, 1), max_mem, threads=threads)
    return Dataset(dst)


def verify(src: str | Path, dst: str | Path, max_mem: int = 1_000_000_000) -> int:
    """Compare ``dst`` with ``src`` region by region (NaN equals NaN); returns the regions checked."""
    a, b = Dataset(src), Dataset(dst)
    check_statistics(a)
    check_statistics(b)
    names = small_arrays(a.root)
    if names != small_arrays(b.root):
        raise WxpipeError(f"{dst}: arrays {small_arrays(b.root)} differ from {src}'s {names}")
    for name in names:
        if not np.array_equal(read(array(a.root, name)), read(array(b.root, name))):
            raise WxpipeError(f"{dst}: {name} differ from {src}")
    if a.variables != b.variables or a.data.shape != b.data.shape:
        raise WxpipeError(f"{dst}: variables or shape differ from {src}")
    building = DONE in b.root
    if building:
        flags = done(dst)
        if not flags.all():
            raise WxpipeError(f"{dst}: {int((~flags).sum())} of {flags.size} target chunks not written yet")
        if removed := remove_temps(Path(dst)):
            log.info("%s: removed %d temporary files left by interrupted parts", dst, removed)
    p = plan(b.data.shape, Layout.of(b.data), max_mem // 3)  # both sides, and what reading them needs
    regions = p.regions()
    for r in progress(iterable=regions, desc="verify", unit="region"):
        sel = (slice(r.dates.start, r.dates.stop), slice(None), slice(None), slice(r.values.start, r.values.stop))
        if not _equal(read(a.data, sel), read(b.data, sel)):
            raise WxpipeError(
                f"{dst}: data differ from {src} in dates {r.dates.start}..{r.dates.stop - 1},"
                f" points {r.values.start}..{r.values.stop - 1}"
            )
    if building:  # identical to its source: the layout is complete
        root = zarr.open_group(str(dst), mode="r+")
        remove_build(root)
        root.attrs["build_complete"] = True
    return len(regions)


def _equal(x: np.ndarray, y: np.ndarray) -> bool:
    """``x == y`` with NaN equal to NaN, one date at a time (numpy's temporaries stay small)."""
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(x, y, strict=True))
