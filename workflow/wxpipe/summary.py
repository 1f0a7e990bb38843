"""``wxpipe inspect``: the progress of an unfinished build, or the summary of a finished dataset.

A dataset's or layout's summary also says which reads its chunks serve well: one date (what a
training sample reads) or a time series at one point (what a point forecast or a verification at a
station reads). A read costs about one request and one decompression per chunk it touches, so a
pattern is served well when it touches not many more chunks than its bytes would fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .dataset import LOADED, STATISTICS_PENDING, Dataset, Part, array, read, write_unit_of
from .errors import WxpipeError
from .fsutil import tree_size
from .progress import human
from .rechunk import DONE


def summary(path: str | Path, parts: int | None = None, batch_size: int = 4, sample_dates: int = 2) -> str:
    """The text ``wxpipe inspect STORE`` prints; ``batch_size`` and ``sample_dates`` size a batch."""
    ds = Dataset(path)
    lines = _overview(ds, path, batch_size, sample_dates)
    if "wxpipe_layout" in ds.attrs:  # a layout (wxpipe rechunk): target chunks, or shards, written so far
        lines += _layout_state(ds)
        if DONE in ds.root:  # statistics are the source's, but the data are not all there: none are shown
            return "\n".join(lines)
    if not ds.attrs.get("build_complete", True) and LOADED in ds.root:
        return "\n".join(lines + _build_progress(ds, parts))
    return "\n".join([*lines, "build       complete", *_statistics_lines(ds)])


def _overview(ds: Dataset, path: str | Path, batch_size: int, sample_dates: int) -> list[str]:
    """What the store holds, how it is laid out on disk, what its dates weigh and which reads it serves."""
    size, files = tree_size(Path(path))
    n_dates, n_vars, n_ens, n_values = ds.data.shape
    fmt = ds.root.metadata.zarr_format
    lines = [
        f"dataset     {path}",
        f"uuid        {ds.uuid}",
        f"dates       {ds.attrs['start_date']} .. {ds.attrs['end_date']}, every {ds.attrs['frequency']} ({n_dates})",
        f"missing     {len(ds.missing_dates)}: {', '.join(str(d) for d in ds.missing_dates[:5])}",
        f"grid        {ds.attrs.get('resolution')} field shape {ds.attrs.get('field_shape')}, {n_values} points",
        f"shape       {ds.data.shape}, chunks {ds.data.chunks}"
        + (f", shards {ds.data.shards}" if ds.data.shards else ""),
        f"format      Zarr v{fmt}, {ds.data.dtype}; " + _anemoi(fmt),
        f"on disk     {size / 1e6:.1f} MB in {files} files",
    ]
    sizes = Sizes(n_vars, n_ens, n_values, ds.data.dtype.itemsize, n_dates, sample_dates, batch_size)
    return lines + sizes.lines(ds.data.dtype.name) + access_patterns(ds.data)


def _layout_state(ds: Dataset) -> list[str]:
    """A layout's source, and whether every target unit is written and verified."""
    unit = "shards" if ds.data.shards else "chunks"
    lines = [f"source      {ds.attrs.get('source_uuid')}"]
    if DONE not in ds.root:
        return [*lines, f"layout      complete: every {unit[:-1]} written and verified against the source"]
    flags = read(array(ds.root, DONE))
    state = "written, not verified yet (`wxpipe verify`)" if flags.all() else "UNFINISHED"
    return [*lines, f"layout      {state}: {int(flags.sum())}/{flags.size} {unit} written"]


def _build_progress(ds: Dataset, parts: int | None) -> list[str]:
    """An unfinished build: dates and write units loaded, and which of ``parts`` parts are done."""
    done = read(array(ds.root, LOADED))
    n_dates, unit = len(done), write_unit_of(ds.data)
    units_done = sum(bool(done[i : i + unit].all()) for i in range(0, n_dates, unit))
    lines = [
        f"build       UNFINISHED: {int(np.sum(done))}/{n_dates} dates loaded, {units_done}/{-(-n_dates // unit)} chunks"
    ]
    if parts:
        finished = [
            f"{i}/{parts}" for i in range(1, parts + 1) if done[list(Part(i, parts).dates(n_dates, unit))].all()
        ]
        lines.append(f"parts done  {len(finished)}/{parts}: {' '.join(finished) or '-'}")
    return lines


def _statistics_lines(ds: Dataset) -> list[str]:
    """The stored statistics per variable, else those of a sample of dates; a set left incomplete is named."""
    if "mean" in ds.root or ds.attrs.get(STATISTICS_PENDING):
        try:
            st = ds.statistics()
        except WxpipeError:  # an interrupted write: none of the set is shown as if it were valid
            return ["statistics  INCOMPLETE (an interrupted `wxpipe statistics`): rerun `wxpipe statistics`"]
        lines = [f"statistics  {ds.attrs.get('statistics_start_date')} .. {ds.attrs.get('statistics_end_date')}"]
    else:
        st, used = sample_statistics(ds)
        if not np.isfinite(st["minimum"]).any():  # every sampled value NaN: nothing to show
            return [f"statistics  none stored yet (`wxpipe statistics`); the {used} dates sampled hold no values"]
        lines = [f"statistics  none stored yet (`wxpipe statistics`); below: {used} dates sampled evenly"]
    meta = ds.attrs.get("variables_metadata", {})
    lines.append(f"  {'variable':<14} {'minimum':>12} {'maximum':>12} {'mean':>12} {'stdev':>12}  units")
    for i, v in enumerate(ds.variables):
        row = " ".join(f"{st[k][i]:12.5g}" for k in ("minimum", "maximum", "mean", "stdev"))
        lines.append(f"  {v:<14} {row}  {meta.get(v, {}).get('units', '')}")
    return lines


def sample_statistics(ds: Dataset, dates: int = 50) -> tuple[dict[str, np.ndarray], int]:
    """Per-variable statistics of up to ``dates`` evenly spaced dates (a glance, not the stored ones)."""
    from .statistics import Moments

    missing = set(ds.missing_dates)
    present = [i for i, d in enumerate(ds.dates) if d not in missing]
    pick = [present[int(k)] for k in np.linspace(0, len(present) - 1, min(dates, len(present)))]
    total = Moments.empty(len(ds.variables))
    for i in sorted(set(pick)):
        total = total.merge(Moments.of(read(ds.data, i).reshape(len(ds.variables), -1)))
    stats = {"minimum": total.minimum, "maximum": total.maximum, "mean": total.mean, "stdev": total.stdev}
    return stats, len(set(pick))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class Sizes:
    """What one date, one training sample and one batch weigh in memory (uncompressed)."""

    variables: int
    members: int
    points: int
    itemsize: int
    dates: int
    sample_dates: int = 2
    """Dates in one sample: the input state and the target, by default."""
    batch_size: int = 4
    """Samples in a batch: the training config's default ``batch_size``."""

    def __post_init__(self) -> None:
        if self.sample_dates < 1 or self.batch_size < 1:
            raise WxpipeError(
                f"a sample needs at least 1 date and a batch 1 sample, not {self.sample_dates}, {self.batch_size}"
            )

    @property
    def date(self) -> int:
        return self.variables * self.members * self.points * self.itemsize

    def lines(self, dtype: str) -> list[str]:
        head = (
            f"{plural(self.variables, 'variable')} x {plural(self.members, 'member')} x "
            f"{plural(self.points, 'point')} x {self.itemsize} bytes"
        )
        role = "input state + target" if self.sample_dates == 2 else "input states + target"
        return [
            f"sizes       in memory, as {dtype}",
            f"  one date    {head} = {human(self.date)}",
            f"  one sample  {self.sample_dates} dates ({role}) = {human(self.sample_dates * self.date)}",
            f"  one batch   {self.batch_size} samples (--batch-size) = "
            f"{human(self.batch_size * self.sample_dates * self.date)}",
            f"  all dates   {self.dates} dates = {human(self.dates * self.date)}",
        ]


@dataclass(frozen=True)
class Access:
    """The cost of one read pattern on an array's chunks (and shards, the files of Zarr v3)."""

    pattern: str
    chunks: int
    """Chunks the read touches, each read and decompressed whole."""
    files: int
    """Files it opens: the chunks, or with shards the shards that hold them."""
    chunk_bytes: int
    needed: int
    """Bytes the read asks for."""

    @property
    def decoded(self) -> int:
        return self.chunks * self.chunk_bytes

    @property
    def fewest(self) -> int:
        """Chunks of this size that the bytes asked for would fill: the least any chunk shape touches."""
        return max(1, -(-self.needed // self.chunk_bytes))

    @property
    def served_well(self) -> bool:
        return self.chunks <= 2 * self.fewest


def _touched(selection: tuple[int, ...], block: tuple[int, ...]) -> int:
    """Blocks of shape ``block`` that a selection of extents ``selection`` from the origin touches."""
    return math.prod(-(-s // b) for s, b in zip(selection, block, strict=True))


def access(data: zarr.Array[Any], pattern: str, selection: tuple[int, ...]) -> Access:
    """The cost of reading ``selection`` (extents from the array's origin) from ``data``."""
    chunks = _touched(selection, data.chunks)
    files = _touched(selection, data.shards) if data.shards else chunks
    item = data.dtype.itemsize
    return Access(pattern, chunks, files, math.prod(data.chunks) * item, math.prod(selection) * item)


def access_patterns(data: zarr.Array[Any], series: int | None = None) -> list[str]:
    """Lines on the two reads that decide a chunk shape: one whole date, and a time series at one point."""
    n_dates, n_vars, n_ens, n_values = data.shape
    n = min(series or n_dates, n_dates)
    reads = [
        access(data, "one date (all variables, members, points)", (1, n_vars, n_ens, n_values)),
        access(data, f"time series of {n} dates at one point", (n, n_vars, n_ens, 1)),
    ]
    lines = [f"access      chunks {data.chunks}, {human(reads[0].chunk_bytes)} each decoded; a read touches"]
    for r in reads:
        where = f" in {plural(r.files, 'shard')}" if data.shards else ""
        verdict = "serves it well" if r.served_well else f"serves it poorly ({r.chunks / r.fewest:.0f}x the fewest)"
        lines.append(
            f"  {r.pattern}: {plural(r.chunks, 'chunk')}{where}, {human(r.decoded)} decoded "
            f"for {human(r.needed)}: {verdict}"
        )
    return lines


def _anemoi(zarr_format: int) -> str:
    """Whether a stock anemoi-datasets reads the store: 0.5.x opens Zarr v2 only (it depends on zarr 2)."""
    if zarr_format == 2:
        return "anemoi-datasets opens it (open_dataset)"
    return "not readable by anemoi-datasets 0.5.x (Zarr v2 only): rechunk to zarr_format 2 for it"
