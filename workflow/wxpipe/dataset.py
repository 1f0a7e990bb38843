"""The on-disk dataset contract (DESIGN.md): an anemoi-compatible Zarr group.

Creation is split as on HPC: :func:`init` writes the empty store and its metadata, :func:`load_part`
writes a chunk-aligned range of dates (parts never share a chunk, so they run as separate jobs), and
:func:`finalise` checks that every date is present or declared missing. A per-date flag
(``_build/loaded``; ``finalise`` removes the ``_build`` group) is written after the date's data, so an
interrupted part resumes and nothing half-written is marked done.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from .errors import WxpipeError
from .fsutil import atomic_path
from .recipe import Blosc, Compressor, NoCompression, Recipe, Zstd
from .timeutil import date_range, format_frequency, iso, parse_frequency, seconds

log = logging.getLogger(__name__)

FORMAT_VERSION = "0.30"
# build bookkeeping lives in one group, removed once the store is complete, as anemoi-datasets removes
# its own ``_build``: what readers (anemoi's open_dataset, zarr listings) see is the dataset alone
BUILD = "_build"
LOADED = f"{BUILD}/loaded"
STATISTICS = ("mean", "stdev", "minimum", "maximum")
# the statistics arrays are one set: ``wxpipe statistics`` flags the set pending before it touches any of
# them and writes their digest (with the period) last, so an interrupted write is found, never read as valid
STATISTICS_SET = (*STATISTICS, "sums", "squares", "count", "has_nans")
STATISTICS_DIGEST = "statistics_digest"
STATISTICS_PENDING = "statistics_pending"


@dataclass(frozen=True)
class Part:
    """Part ``index`` (1-based) of ``count``: a contiguous, chunk-aligned range of date indices."""

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

    def dates(self, n_dates: int, chunk: int) -> range:
        """Whole chunks are shared out as evenly as possible, so no two parts touch one chunk."""
        n_chunks = -(-n_dates // chunk)
        lo = (self.index - 1) * n_chunks // self.count
        hi = self.index * n_chunks // self.count
        return range(lo * chunk, min(hi * chunk, n_dates))


def array(group: zarr.Group, name: str) -> zarr.Array:
    """``group[name]`` as an array (zarr types it as array-or-group)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise WxpipeError(f"{group.store_path}: {name} is not an array")
    return node


def read(arr: zarr.Array, selection: Any = slice(None)) -> np.ndarray:
    """A selection of ``arr`` as a numpy array."""
    return np.asarray(arr[selection])


class Dataset:
    """Read access to a dataset: arrays stay lazy, small metadata is loaded."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.root = zarr.open_group(str(self.path), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise WxpipeError(f"{self.path}: not a dataset ({exc})") from None
        self.attrs: dict[str, Any] = dict(self.root.attrs)
        self.data = array(self.root, "data")
        self.variables: list[str] = list(self.attrs["variables"])
        self.dates = read(array(self.root, "dates"))
        self.latitudes = read(array(self.root, "latitudes"))
        self.longitudes = read(array(self.root, "longitudes"))
        self.frequency: dt.timedelta = parse_frequency(self.attrs["frequency"])
        self.direct_codec = direct_codec(self.path, self.data)

    @property
    def uuid(self) -> str:
        return str(self.attrs["uuid"])

    @property
    def missing_dates(self) -> list[np.datetime64]:
        return [seconds(d) for d in self.attrs.get("missing_dates", [])]

    def statistics(self) -> dict[str, np.ndarray]:
        """mean/stdev/minimum/maximum per variable; an error if the statistics stage has not run, or if
        an interrupted run left a set that is not the one it wrote whole."""
        if "mean" not in self.root and not self.attrs.get(STATISTICS_PENDING):
            raise WxpipeError(f"{self.path}: no statistics yet (run `wxpipe statistics`)")
        check_statistics(self)
        return {k: read(array(self.root, k)) for k in STATISTICS}

    def index_of(self, date: np.datetime64 | dt.datetime) -> int:
        d = seconds(date)
        i = int(np.searchsorted(self.dates, d))
        if i >= len(self.dates) or self.dates[i] != d:
            raise WxpipeError(f"{self.path}: date {iso(d)} is not in the dataset")
        return i

    def indices(self, start: dt.datetime, end: dt.datetime) -> np.ndarray:
        """Indices of the dates in ``[start, end]``."""
        d = self.dates
        return np.nonzero((d >= seconds(start)) & (d <= seconds(end)))[0]


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(path)


def statistics_arrays(root: zarr.Group) -> list[str]:
    """The names of the statistics set in a store: the base arrays and every tendency array."""
    names = set(root.array_keys())
    return sorted(n for n in names if n in STATISTICS_SET or n.startswith("statistics_tendencies_"))


def statistics_digest(arrays: dict[str, np.ndarray], start: str, end: str) -> str:
    """SHA-256 of a statistics set (names, dtypes, shapes, bytes) and its period."""
    import hashlib

    h = hashlib.sha256(f"{start} {end}".encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name} {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_statistics(ds: Dataset) -> None:
    """Refuse a statistics set that an interrupted ``wxpipe statistics`` left mixed or incomplete.

    Sets written before digests existed (no digest, nothing pending) are taken as they are.
    """
    pending, expected = ds.attrs.get(STATISTICS_PENDING), ds.attrs.get(STATISTICS_DIGEST)
    if not pending and expected is None:
        return
    arrays = {n: read(array(ds.root, n)) for n in statistics_arrays(ds.root)}
    start, end = str(ds.attrs.get("statistics_start_date")), str(ds.attrs.get("statistics_end_date"))
    if pending or statistics_digest(arrays, start, end) != expected:
        raise WxpipeError(
            f"{ds.path}: statistics incomplete (a `wxpipe statistics` was interrupted): rerun `wxpipe statistics`"
        )


def provenance() -> dict[str, Any]:
    """Software versions, git commit and host: what made this artefact."""
    packages = {}
    for name in ("wxpipe", "zarr", "numpy", "eccodes", "xarray", "torch", "mlflow", "snakemake"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "packages": packages,
        "git": git_commit(),
        "host": platform.node(),
    }


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def init(
    path: str | Path,
    recipe: Recipe,
    variables: list[str],
    latitudes: np.ndarray,
    longitudes: np.ndarray,
    field_shape: list[int],
    resolution: str | float,
    recipe_path: str | Path = "",
    ensembles: int = 1,
    variables_metadata: dict[str, dict[str, Any]] | None = None,
    constant_fields: list[str] | None = None,
) -> None:
    """Write the empty store with all metadata; ``data`` holds no chunk until a part writes it."""
    path = Path(path)
    out = recipe.output
    dates = recipe.dates.all()
    n_values = len(latitudes)
    chunk = out.dates_chunk
    ens_chunk = min(out.chunking.get("ensembles", ensembles), ensembles)
    root = zarr.open_group(str(path), mode="w", zarr_format=out.zarr_format)
    root.create_array(
        "data",
        shape=(len(dates), len(variables), ensembles, n_values),
        chunks=(chunk, len(variables), ens_chunk, n_values),
        shards=(out.shards, len(variables), ensembles, n_values) if out.shards else None,
        dtype=out.dtype,
        fill_value=np.nan,
        compressors=codecs(out.compressor, out.zarr_format),
    )
    unit = out.shards or chunk
    root.create_array("dates", data=dates.astype("datetime64[s]"), chunks=(len(dates),))
    root.create_array("latitudes", data=np.asarray(latitudes, dtype="float64"))
    root.create_array("longitudes", data=np.asarray(longitudes, dtype="float64"))
    root.create_group(BUILD).create_array("loaded", shape=(len(dates),), chunks=(unit,), dtype="bool", fill_value=False)
    missing = [iso(m) for m in recipe.dates.missing]
    period = recipe.statistics_period()
    root.attrs.update(
        {
            "variables": variables,
            "frequency": format_frequency(recipe.dates.frequency),
            "start_date": iso(dates[0]),
            "end_date": iso(dates[-1]),
            "missing_dates": missing,
            "resolution": resolution,
            "field_shape": field_shape,
            "version": FORMAT_VERSION,
            "uuid": str(uuidlib.uuid4()),
            "recipe": json.loads(recipe.model_dump_json()),
            "recipe_path": str(recipe_path),
            "variables_metadata": {v: (variables_metadata or {}).get(v, {}) for v in variables},
            "constant_fields": list(constant_fields or []),
            "statistics_start_date": iso(period.start),
            "statistics_end_date": iso(period.end),
            "licence": recipe.licence,
            "attribution": recipe.attribution,
            "description": recipe.description,
            "name": recipe.name or path.stem,
            "provenance": provenance(),
            "build_complete": False,
            "dimensions": ["time", "variable", "ensemble", "cell"],
            "shape": [len(dates), len(variables), ensembles, n_values],
            "chunks": [chunk, len(variables), ens_chunk, n_values],
            "dtype": out.dtype,
            "allow_nans": recipe.build.allow_nans,
        }
    )
    log.info("initialised %s: %d dates x %d variables x %d points", path, len(dates), len(variables), n_values)


def codecs(compressor: Compressor | None, zarr_format: int) -> Any:
    """The recipe's compressor in the form each Zarr format wants; by default Blosc lz4 level 5 with
    byte shuffle, as anemoi-datasets writes."""
    import numcodecs
    from zarr.codecs import BloscCodec, ZstdCodec

    c = compressor or Blosc.model_validate({"name": "blosc"})
    if isinstance(c, NoCompression):
        return None
    if isinstance(c, Zstd):
        return numcodecs.Zstd(level=c.level) if zarr_format == 2 else ZstdCodec(level=c.level)
    shuffles: dict[bool | str, Literal["shuffle", "noshuffle", "bitshuffle"]] = {
        True: "shuffle",
        False: "noshuffle",
        "bitshuffle": "bitshuffle",
    }
    shuffle = shuffles[c.shuffle]
    if zarr_format == 2:
        flag = {"shuffle": numcodecs.Blosc.SHUFFLE, "noshuffle": numcodecs.Blosc.NOSHUFFLE}
        return numcodecs.Blosc(cname=c.cname, clevel=c.clevel, shuffle=flag.get(shuffle, numcodecs.Blosc.BITSHUFFLE))
    return BloscCodec(cname=c.cname, clevel=c.clevel, shuffle=shuffle)


def write_unit(data: zarr.Array) -> int:
    """Dates written at once: a shard when sharded (a shard is written whole), else a chunk."""
    return data.shards[0] if data.shards else data.chunks[0]


def part_dates(path: str | Path, part: Part) -> range:
    data = array(zarr.open_group(str(path), mode="r"), "data")
    return part.dates(data.shape[0], write_unit(data))


def chunk_file_codec(path: Path, data: zarr.Array) -> Any:
    """The codec of ``data``'s chunk files when wxpipe can read and write them itself (Zarr v2, no filters,
    C order, "." keys): a numcodecs codec, False for uncompressed chunks, None when zarr-python must do it."""
    if data.metadata.zarr_format != 2:
        return None
    import numcodecs

    spec = json.loads((path / data.path / ".zarray").read_text())
    if spec["filters"] is not None or spec["order"] != "C" or spec.get("dimension_separator", ".") != ".":
        return None
    return numcodecs.get_codec(spec["compressor"]) if spec["compressor"] else False


def write_chunk_file(file: Path, codec: Any, chunk: np.ndarray) -> None:
    """Encode one whole chunk with a :func:`chunk_file_codec` codec (False: raw bytes) and write it atomically."""
    raw = chunk.tobytes() if codec is False else codec.encode(chunk)
    with atomic_path(file) as tmp:
        tmp.write_bytes(raw)


def direct_codec(path: Path, data: zarr.Array) -> Any:
    """:func:`chunk_file_codec` for the default layout, where one chunk spans every variable, member and
    point (chunk files hold whole dates): what date-wise reads and writes need."""
    if data.chunks[1:] != data.shape[1:]:
        return None
    return chunk_file_codec(path, data)


def read_dates(ds: Dataset, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
    """``ds.data[start:stop]``, read chunk file by chunk file when the layout allows (several times
    faster than zarr-python's per-call overhead); an absent chunk reads as NaN, as in Zarr.

    ``out``, shaped like the result, receives the data (decoded straight into it when ``start`` and
    ``stop`` fall on chunk boundaries): callers that fill one buffer from several threads use it."""
    codec = ds.direct_codec
    if codec is None:
        block = read(ds.data, slice(start, stop))
    else:
        step = ds.data.chunks[0]
        first, last = start // step, (stop - 1) // step
        whole = out if out is not None and start % step == 0 and stop % step == 0 else None
        buf = whole if whole is not None else np.empty(((last - first + 1) * step, *ds.data.shape[1:]), ds.data.dtype)
        _decode_chunks(ds, codec, range(first, last + 1), buf)
        block = buf[start - first * step : stop - first * step]
        if whole is not None:
            return whole
    if out is None:
        return block
    out[...] = block
    return out


def _decode_chunks(ds: Dataset, codec: Any, chunks: range, buf: np.ndarray) -> None:
    """Decode the date-chunk files ``chunks`` into ``buf``, one after the other."""
    step = ds.data.chunks[0]
    shape = (step, *ds.data.shape[1:])
    for k, c in enumerate(chunks):
        part = buf[k * step : (k + 1) * step]
        try:
            raw = (ds.path / "data" / f"{c}.0.0.0").read_bytes()
        except FileNotFoundError:
            part[...] = np.nan
            continue
        if codec is False:
            part[...] = np.frombuffer(raw, dtype=ds.data.dtype).reshape(shape)
        else:
            codec.decode(raw, out=part)


class Writer:
    """Writes blocks of whole chunks of dates into an initialised store, then flags them as loaded.

    For the default layout (Zarr v2, one chunk spans all variables, members and points) a chunk is
    encoded with the array's own codec and written as one file, atomically (temporary name, then
    rename): no torn chunk after a kill, and none of zarr-python's per-call overhead, which costs
    more than encoding. Other layouts (v3, shards) go through zarr-python.
    """

    # flags are written in batches (each write is a round trip through zarr): every few seconds or
    # chunks, so an interrupted part loses little finished work
    FLUSH_SECONDS = 2.0
    FLUSH_CHUNKS = 16

    def __init__(self, path: str | Path, dates: range | None = None) -> None:
        self.path = Path(path)
        root = zarr.open_group(str(path), mode="r+")
        self.data = array(root, "data")
        redo = None if dates is None else slice(dates.start, dates.stop)
        self.flags = build_flags(root, LOADED, (self.data.shape[0],), (write_unit(self.data),), redo)
        self._written: list[range] = []
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        self._codec = direct_codec(self.path, self.data)
        self._flag_codec = chunk_file_codec(self.path, self.flags)

    def write(self, first: int, block: np.ndarray) -> None:
        """Write ``block`` (dates, variables, ensembles, values) at ``first``; flags go last."""
        step = self.data.chunks[0]
        if self._codec is None or first % step:
            self.data[first : first + len(block)] = block
        else:
            block = np.ascontiguousarray(block, dtype=self.data.dtype)
            for lo in range(0, len(block), step):
                piece = block[lo : lo + step]
                if len(piece) < step:  # the last chunk of the array is stored whole, padded
                    piece = np.concatenate([piece, np.full((step - len(piece), *piece.shape[1:]), np.nan, piece.dtype)])
                write_chunk_file(self.path / "data" / f"{(first + lo) // step}.0.0.0", self._codec, piece)
        with self._lock:
            self._written.append(range(first, first + len(block)))
            if len(self._written) >= self.FLUSH_CHUNKS or time.monotonic() - self._flushed > self.FLUSH_SECONDS:
                self._flush()

    def close(self) -> None:
        """Flag every date written so far (also call after an error: what is on disk is whole)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        # each run of adjacent written ranges is set in one write, nothing read back (reading every flag
        # chunk at each flush made a load part quadratic in the dataset's length)
        spans: list[list[int]] = []
        for r in sorted(self._written, key=lambda r: r.start):
            if spans and spans[-1][1] == r.start:
                spans[-1][1] = r.stop
            else:
                spans.append([r.start, r.stop])
        for lo, hi in spans:
            self._set_flags(lo, hi)
        self._written.clear()
        self._flushed = time.monotonic()

    def _set_flags(self, lo: int, hi: int) -> None:
        """Flag dates ``lo:hi``: whole flag chunks are written as files, like the data (a zarr-python call
        costs ~20 ms, a small file well under 1 ms), anything else through zarr."""
        step, n = self.flags.chunks[0], self.flags.shape[0]
        if self._flag_codec is None or lo % step or (hi % step and hi != n):
            self.flags[lo:hi] = True
            return
        chunk = np.ones(step, dtype=bool)  # the array's last chunk is stored whole, like every other
        for k in range(lo // step, -(-hi // step)):
            write_chunk_file(self.path / self.flags.path / str(k), self._flag_codec, chunk)


def build_flags(
    root: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], redo: Any = None
) -> zarr.Array:
    """The flags array ``name`` of the build group; recreated when a complete store is written again.

    Completion removed the build group, and completion means every flag was set: so the flags come
    back all set, but for ``redo`` (the selection about to be rewritten), and the store is marked
    unfinished until it is completed again (a part rerun alone after ``finalise``).
    """
    if name in root:
        return array(root, name)
    if not root.attrs.get("build_complete", True):
        raise WxpipeError(f"{root.store_path}: no {name} flags (not made by wxpipe init)")
    flags = root.require_group(BUILD).create_array(
        name.removeprefix(f"{BUILD}/"), shape=shape, chunks=chunks, dtype="bool", fill_value=True
    )
    if redo is not None:
        flags[redo] = False
    root.attrs["build_complete"] = False
    log.info("%s: complete store written again: build flags recreated", root.store_path)
    return flags


def write_dates(path: str | Path, first: int, block: np.ndarray) -> None:
    writer = Writer(path)
    writer.write(first, block)
    writer.close()


def loaded(path: str | Path) -> np.ndarray:
    """Which dates are loaded: the build flags, or all of them in a complete store (flags removed)."""
    root = zarr.open_group(str(path), mode="r")
    if LOADED not in root:
        return np.ones(array(root, "dates").shape[0], dtype=bool)
    return read(array(root, LOADED))


def chunks_of(rng: range, chunk: int) -> Iterator[range]:
    """Split a chunk-aligned range into whole chunks."""
    for lo in range(rng.start, rng.stop, chunk):
        yield range(lo, min(lo + chunk, rng.stop))


def finalise(path: str | Path) -> Dataset:
    """Refuse, listing the dates, unless every date is loaded or declared missing; then mark complete."""
    root = zarr.open_group(str(path), mode="r+")
    dates = read(array(root, "dates"))
    done = loaded(path)
    missing = {seconds(m) for m in root.attrs.get("missing_dates", [])}  # type: ignore[union-attr]
    absent = [iso(d) for d, ok in zip(dates, done, strict=True) if not ok and d not in missing]
    if absent:
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise WxpipeError(f"{path}: {len(absent)} dates not loaded: {shown}")
    from .fsutil import remove_temps, tree_size

    if removed := remove_temps(Path(path)):
        log.info("%s: removed %d temporary files left by interrupted writers", path, removed)
    remove_build(root)
    size, files = tree_size(Path(path))
    root.attrs.update({"build_complete": True, "total_size": size, "total_number_of_files": files})
    return Dataset(path)


def remove_build(root: zarr.Group) -> None:
    """Delete the build group (flags, resolved GRIB headers) of a store that is complete."""
    if BUILD in root:
        del root[BUILD]


__all__ = ["Dataset", "Part", "date_range", "finalise", "init", "open_dataset", "write_dates"]
