"""The chunk-file fast path: Zarr v2 chunk files that wxpipe encodes, decodes and writes itself.

zarr-python's per-call overhead (~20 ms) and its single encoding thread cost more than the work for
the default layout, where one chunk holds whole dates. Where the layout allows (Zarr v2, no filters,
C order, "." keys), chunks are read and written as files with the array's own codec, each written
atomically (temporary name, then rename: no torn chunk after kill -9); other layouts (v3, shards)
go through zarr-python. The chunk file name is built here and nowhere else.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..fsutil import atomic_path
from ._parts import write_unit_of
from ._store import LOADED, array, build_flags, read

if TYPE_CHECKING:
    from ._contract import Dataset


def chunk_file_codec(path: Path, data: zarr.Array[Any]) -> Any:
    """The codec of ``data``'s chunk files when wxpipe can read and write them itself (Zarr v2, no filters,
    C order, "." keys): a numcodecs codec, False for uncompressed chunks, None when zarr-python must do it."""
    if data.metadata.zarr_format != 2:
        return None
    import numcodecs

    spec = json.loads((path / data.path / ".zarray").read_text())
    if spec["filters"] is not None or spec["order"] != "C" or spec.get("dimension_separator", ".") != ".":
        return None
    return numcodecs.get_codec(spec["compressor"]) if spec["compressor"] else False


def direct_codec(path: Path, data: zarr.Array[Any]) -> Any:
    """:func:`chunk_file_codec` for the default layout, where one chunk spans every variable, member and
    point (chunk files hold whole dates): what date-wise reads and writes need."""
    if data.chunks[1:] != data.shape[1:]:
        return None
    return chunk_file_codec(path, data)


@dataclass(frozen=True)
class ChunkFiles:
    """The chunk files of one array of a store, read and written without zarr-python.

    A chunk is named by its index, or by an ``int``: that chunk along the first axis (dates), the
    first along every other. Edge chunks are stored whole, padded with NaN, as Zarr does.
    """

    folder: Path
    codec: Any  # a numcodecs codec, or False for uncompressed chunks
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, store: Path, data: zarr.Array[Any], whole_dates: bool = False) -> ChunkFiles | None:
        """The chunk files of ``data`` in ``store``, None when zarr-python must read and write them;
        ``whole_dates``: only for the layout whose chunks hold whole dates (:func:`direct_codec`)."""
        codec = direct_codec(store, data) if whole_dates else chunk_file_codec(store, data)
        return None if codec is None else cls(store / data.path, codec, tuple(data.chunks), np.dtype(data.dtype))

    def file(self, index: int | tuple[int, ...]) -> Path:
        key = (index, *(0,) * (len(self.chunks) - 1)) if isinstance(index, int) else index
        return self.folder / ".".join(map(str, key))

    def write(self, index: int | tuple[int, ...], block: np.ndarray) -> None:
        """Encode ``block`` as the chunk ``index`` and write it atomically."""
        if block.shape == self.chunks:
            piece = np.ascontiguousarray(block, dtype=self.dtype)
        else:
            piece = np.full(self.chunks, np.nan, self.dtype)
            piece[tuple(slice(0, n) for n in block.shape)] = block
        raw = piece.tobytes() if self.codec is False else self.codec.encode(piece)
        with atomic_path(self.file(index)) as tmp:
            tmp.write_bytes(raw)

    def read_into(self, index: int | tuple[int, ...], out: np.ndarray) -> None:
        """Decode the chunk ``index`` into ``out`` (shaped like a chunk); an absent chunk reads as NaN."""
        try:
            raw = self.file(index).read_bytes()
        except FileNotFoundError:
            out[...] = np.nan
            return
        if self.codec is False:
            out[...] = np.frombuffer(raw, dtype=self.dtype).reshape(self.chunks)
        else:
            self.codec.decode(raw, out=out)


def read_dates(ds: Dataset, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
    """``ds.data[start:stop]``, read chunk file by chunk file when the layout allows (several times
    faster than zarr-python's per-call overhead); an absent chunk reads as NaN, as in Zarr.

    ``out``, shaped like the result, receives the data (decoded straight into it when ``start`` and
    ``stop`` fall on chunk boundaries): callers that fill one buffer from several threads use it."""
    files = ds.chunk_files
    if files is None:
        block = read(ds.data, slice(start, stop))
    else:
        step = files.chunks[0]
        first, last = start // step, (stop - 1) // step
        whole = out if out is not None and start % step == 0 and stop % step == 0 else None
        buf = whole if whole is not None else np.empty(((last - first + 1) * step, *files.chunks[1:]), files.dtype)
        for k, c in enumerate(range(first, last + 1)):
            files.read_into(c, buf[k * step : (k + 1) * step])
        block = buf[start - first * step : stop - first * step]
        if whole is not None:
            return whole
    if out is None:
        return block
    out[...] = block
    return out


class Writer:
    """Writes blocks of whole chunks of dates into an initialised store, then flags them as loaded.

    Chunks go through :class:`ChunkFiles` where the layout allows, else through zarr-python.
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
        self.flags = build_flags(root, LOADED, (self.data.shape[0],), (write_unit_of(self.data),), redo)
        self._written: list[range] = []
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        self._files = ChunkFiles.of(self.path, self.data, whole_dates=True)
        self._flag_files = ChunkFiles.of(self.path, self.flags)

    def write(self, first: int, block: np.ndarray) -> None:
        """Write ``block`` (dates, variables, ensembles, values) at ``first``; flags go last."""
        step = self.data.chunks[0]
        if self._files is None or first % step:
            self.data[first : first + len(block)] = block
        else:
            for lo in range(0, len(block), step):
                self._files.write((first + lo) // step, block[lo : lo + step])
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
        if self._flag_files is None or lo % step or (hi % step and hi != n):
            self.flags[lo:hi] = True
            return
        chunk = np.ones(step, dtype=bool)  # the array's last chunk is stored whole, like every other
        for k in range(lo // step, -(-hi // step)):
            self._flag_files.write(k, chunk)
