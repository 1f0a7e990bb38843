"""Writing a layout: the empty target with its metadata, then parts of whole write units, region by region."""

from __future__ import annotations

import itertools
import logging
import shutil
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..dataset import (
    BUILD,
    ChunkFiles,
    Dataset,
    Part,
    array,
    build_flags,
    check_statistics,
    codecs,
    read,
    read_dates,
)
from ..errors import WxpipeError
from ..progress import progress
from ._plan import Layout, Plan, Region, plan

log = logging.getLogger(__name__)


def small_arrays(root: Any) -> list[str]:
    """Every array of a dataset but ``data`` and build bookkeeping: dates, grid, all statistics
    (tendency statistics included), so a layout carries the same contract as its source."""
    return sorted(k for k in root.array_keys() if k != "data" and not k.startswith("_"))


DONE = f"{BUILD}/done"  # per target chunk (shard); verify removes the build group of a complete layout


def init(src: str | Path, dst: str | Path, layout: Layout | Plan) -> Plan:
    """Write the empty layout ``dst`` (replacing any) with all metadata, the small arrays and the flags;
    ``layout`` is planned here unless it comes planned."""
    source = Dataset(src)
    check_statistics(source)  # a layout never carries a set an interrupted run left mixed
    p = layout if isinstance(layout, Plan) else plan(source.data.shape, layout)
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
    src: str | Path,
    dst: str | Path,
    part: Part,
    max_mem: int,
    resume: bool = False,
    threads: int = 1,
    planned: Plan | None = None,
) -> range:
    """Write the write units of ``part`` (all of them: a rerun part rewrites exactly its own).

    With ``resume``, units an interrupted run already flagged are kept. Returns the part's units.
    ``threads`` read a region's dates and encode its chunks side by side when both layouts allow
    chunk files to be read and written directly (Zarr v2, :class:`~wxpipe.dataset.ChunkFiles`).
    ``planned``: the plan of ``dst`` under ``max_mem``, when the caller made it already.
    """
    source = Dataset(src)
    root = zarr.open_group(str(dst), mode="r+")
    out = array(root, "data")
    if out.shape != source.data.shape:
        raise WxpipeError(f"{dst}: shape {out.shape} is not the source's {source.data.shape} (run rechunk-init)")
    if planned is not None and planned.layout != Layout.of(out):
        raise WxpipeError(f"{dst}: its layout {Layout.of(out)} is not the planned {planned.layout}")
    p = planned or plan(out.shape, Layout.of(out), max_mem)
    flags = build_flags(root, DONE, p.grid, (1, 1))
    units = p.part_units(part)
    todo = _units_to_write(flags, p, units, resume)
    regions = p.regions(todo)
    files = ChunkFiles.of(Path(dst), out) if source.chunk_files is not None else None
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
            if files is not None:
                _write_region(files, _read_region(source, r, pool, threads, buffer), r, pool)
            else:
                _write_through_zarr(source, out, p, r)
            _flag(flags, p, r, True)
    return units


def _units_to_write(flags: zarr.Array[Any], p: Plan, units: range, resume: bool) -> list[int]:
    """The part's units not flagged done; without ``resume`` all of them, their flags cleared first."""
    flat = read(flags).ravel()
    if resume:
        return [u for u in units if not flat[u]]
    for r in p.regions(u for u in units if flat[u]):
        _flag(flags, p, r, False)
    return list(units)


def _write_through_zarr(source: Dataset, out: zarr.Array[Any], p: Plan, r: Region) -> None:
    """Copy region ``r`` through zarr-python; sharded, one shard at a time (zarr holds one encoded shard
    beside the region, not all of them)."""
    sel = r.selection
    if p.shards is None:
        out[sel] = read(source.data, sel)
        return
    block = read(source.data, sel)
    for lo in range(0, len(r.values), p.unit[1]):
        hi = min(lo + p.unit[1], len(r.values))
        out[(*sel[:3], slice(r.values.start + lo, r.values.start + hi))] = block[..., lo:hi]


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


def _write_region(files: ChunkFiles, slab: np.ndarray, r: Region, pool: ThreadPoolExecutor) -> None:
    """Write the target chunks of region ``r``, whose data is ``slab``, as chunk files with the pool's threads."""
    d, v = files.chunks[0], files.chunks[3]
    row = r.dates.start // d
    jobs = [
        pool.submit(files.write, (row, 0, 0, (r.values.start + a) // v), slab[..., a : a + v])
        for a in range(0, len(r.values), v)
    ]
    for f in jobs:
        f.result()


def _flag(flags: zarr.Array[Any], p: Plan, r: Region, value: bool) -> None:
    row = r.units.start // p.grid[1]
    flags[row, r.units.start % p.grid[1] : (r.units.stop - 1) % p.grid[1] + 1] = value


def rechunk(src: str | Path, dst: str | Path, layout: Layout, max_mem: int, threads: int = 1) -> Dataset:
    """Write ``dst`` with the same contract as ``src`` in ``layout``, in one process, planned once."""
    p = plan(Dataset(src).data.shape, layout, max_mem)  # refuses before anything is replaced
    init(src, dst, p)
    write_part(src, dst, Part(1, 1), max_mem, threads=threads, planned=p)
    return Dataset(dst)
