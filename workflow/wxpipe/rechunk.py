"""Rechunking a dataset into another layout, and verifying a layout against its source.

The plan is computed first (slabs of whole target date-chunks, each read once from the source),
then executed; a slab is the unit of memory, so peak memory is one slab plus codec buffers.
"""

from __future__ import annotations

import logging
import shutil
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from .dataset import STATISTICS, Dataset, array, chunks_of, codecs, read
from .errors import WxpipeError
from .progress import progress

log = logging.getLogger(__name__)

EXTRA_ARRAYS = (*STATISTICS, "sums", "squares", "count", "has_nans")


@dataclass(frozen=True)
class Plan:
    """Target chunks and the date slabs that fill them."""

    chunks: tuple[int, int, int, int]
    slabs: tuple[range, ...]
    slab_bytes: int


def plan(shape: tuple[int, ...], dates_chunk: int, values_chunk: int, max_mem: int) -> Plan:
    """Slabs are whole target date-chunks; refuse when one slab does not fit ``max_mem`` bytes."""
    n_dates, n_vars, n_ens, n_values = shape
    dates_chunk = min(dates_chunk, n_dates)
    values_chunk = min(values_chunk, n_values)
    slab_bytes = dates_chunk * n_vars * n_ens * n_values * 4
    if slab_bytes > max_mem:
        raise WxpipeError(
            f"one slab of {dates_chunk} dates needs {slab_bytes / 1e9:.2f} GB, more than max_mem {max_mem / 1e9:.2f} GB"
        )
    slabs = tuple(chunks_of(range(n_dates), dates_chunk))
    return Plan((dates_chunk, n_vars, n_ens, values_chunk), slabs, slab_bytes)


def parse_size(text: str) -> int:
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "b": 1}
    t = text.strip().lower()
    for unit, factor in units.items():
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * factor)
    return int(t)


def rechunk(src: str | Path, dst: str | Path, dates_chunk: int, values_chunk: int, max_mem: int) -> Dataset:
    """Write ``dst`` with the same contract as ``src`` in (dates_chunk, all vars, 1, values_chunk) chunks."""
    source = Dataset(src)
    p = plan(source.data.shape, dates_chunk, values_chunk, max_mem)
    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    root = zarr.open_group(str(dst), mode="w", zarr_format=2)
    out = root.create_array(
        "data",
        shape=source.data.shape,
        chunks=p.chunks,
        dtype="float32",
        fill_value=np.nan,
        compressors=codecs(None, 2),
    )
    for name in ("dates", "latitudes", "longitudes", *EXTRA_ARRAYS):
        if name in source.root:
            root.create_array(name, data=read(array(source.root, name)))
    attrs = dict(source.attrs)
    attrs.update({"uuid": str(uuidlib.uuid4()), "source_uuid": source.uuid, "layout": {"chunks": list(p.chunks)}})
    root.attrs.update(attrs)
    log.info("rechunk %s -> %s: chunks %s, %d slabs of %.1f MB", src, dst, p.chunks, len(p.slabs), p.slab_bytes / 1e6)
    for slab in progress(iterable=p.slabs, desc="rechunk", unit="slab"):
        out[slab.start : slab.stop] = read(source.data, slice(slab.start, slab.stop))
    return Dataset(dst)


def verify(src: str | Path, dst: str | Path) -> int:
    """Compare ``dst`` with ``src`` region by region (NaN equals NaN); returns the regions checked."""
    a, b = Dataset(src), Dataset(dst)
    for name in ("dates", "latitudes", "longitudes"):
        if not np.array_equal(read(array(a.root, name)), read(array(b.root, name))):
            raise WxpipeError(f"{dst}: {name} differ from {src}")
    if a.variables != b.variables or a.data.shape != b.data.shape:
        raise WxpipeError(f"{dst}: variables or shape differ from {src}")
    step = b.data.chunks[0]
    regions = list(chunks_of(range(a.data.shape[0]), step))
    for r in progress(iterable=regions, desc="verify", unit="region"):
        x, y = read(a.data, slice(r.start, r.stop)), read(b.data, slice(r.start, r.stop))
        if not np.array_equal(x, y, equal_nan=True):
            raise WxpipeError(f"{dst}: data differ from {src} in dates {r.start}..{r.stop - 1}")
    return len(regions)
