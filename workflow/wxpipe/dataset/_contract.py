"""The dataset contract (DESIGN.md): an anemoi-compatible Zarr group, its metadata and its statistics set.

:func:`init` writes the empty store and its metadata, parts write whole write units through
:class:`~wxpipe.dataset.Writer`, and :func:`finalise` checks that every date is present or declared
missing before it marks the store complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid as uuidlib
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import WxpipeError, some
from ..fsutil import remove_temps, tree_size
from ..provenance import provenance
from ..recipe import Recipe
from ..timeutil import format_frequency, iso, parse_frequency, seconds
from ._chunks import ChunkFiles
from ._codecs import codecs
from ._parts import write_unit_of
from ._store import BUILD, array, loaded, read, remove_build

log = logging.getLogger(__name__)

FORMAT_VERSION = "0.30"
STATISTICS_BASE = ("mean", "stdev", "minimum", "maximum")
# the statistics arrays are one set: ``wxpipe statistics`` flags the set pending before it touches any of
# them and writes their digest (with the period) last, so an interrupted write is found, never read as valid
STATISTICS_SET = (*STATISTICS_BASE, "sums", "squares", "count", "has_nans")
STATISTICS_DIGEST = "statistics_digest"
STATISTICS_PENDING = "statistics_pending"


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
        self.chunk_files = ChunkFiles.of(self.path, self.data, whole_dates=True)

    @property
    def direct_codec(self) -> Any:
        """The codec of the chunk files that date-wise reads decode themselves; None: through zarr-python."""
        return None if self.chunk_files is None else self.chunk_files.codec

    @property
    def uuid(self) -> str:
        return str(self.attrs["uuid"])

    @property
    def source_uuid(self) -> str:
        """The uuid of the dataset whose data this store holds: a layout's source, else its own.

        A model trained on a layout of a dataset is a model of that dataset (same values, other chunks).
        """
        return str(self.attrs.get("source_uuid") or self.uuid)

    @property
    def missing_dates(self) -> list[np.datetime64]:
        return [seconds(d) for d in self.attrs.get("missing_dates", [])]

    def statistics(self) -> dict[str, np.ndarray]:
        """mean/stdev/minimum/maximum per variable; an error if the statistics stage has not run, or if
        an interrupted run left a set that is not the one it wrote whole."""
        if "mean" not in self.root and not self.attrs.get(STATISTICS_PENDING):
            raise WxpipeError(f"{self.path}: no statistics yet (run `wxpipe statistics`)")
        check_statistics(self)
        return {k: read(array(self.root, k)) for k in STATISTICS_BASE}

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
    shape = [len(dates), len(variables), ensembles, len(latitudes)]
    chunks = [out.dates_chunk, len(variables), min(out.chunking.get("ensembles", ensembles), ensembles), shape[3]]
    root = zarr.open_group(str(path), mode="w", zarr_format=out.zarr_format)
    _create_arrays(root, recipe, dates, (shape, chunks), latitudes, longitudes)
    period = recipe.statistics_period()
    root.attrs.update(
        {
            "variables": variables,
            "frequency": format_frequency(recipe.dates.frequency),
            "start_date": iso(dates[0]),
            "end_date": iso(dates[-1]),
            "missing_dates": [iso(m) for m in recipe.dates.missing],
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
            "shape": shape,
            "chunks": chunks,
            "dtype": out.dtype,
            "allow_nans": recipe.build.allow_nans,
        }
    )
    log.info("initialised %s: %d dates x %d variables x %d points", path, shape[0], shape[1], shape[3])


def _create_arrays(
    root: zarr.Group,
    recipe: Recipe,
    dates: np.ndarray,
    layout: tuple[list[int], list[int]],
    latitudes: np.ndarray,
    longitudes: np.ndarray,
) -> None:
    """The empty ``data`` array (``layout``: its shape and chunks), the coordinates, and the loaded flags
    (one chunk per write unit)."""
    out = recipe.output
    shape, chunks = layout
    root.create_array(
        "data",
        shape=tuple(shape),
        chunks=tuple(chunks),
        shards=(out.shards, *shape[1:]) if out.shards else None,
        dtype=out.dtype,
        fill_value=np.nan,
        compressors=codecs(out.compressor, out.zarr_format),
    )
    root.create_array("dates", data=dates.astype("datetime64[s]"), chunks=(len(dates),))
    root.create_array("latitudes", data=np.asarray(latitudes, dtype="float64"))
    root.create_array("longitudes", data=np.asarray(longitudes, dtype="float64"))
    unit = write_unit_of(out)
    root.create_group(BUILD).create_array("loaded", shape=(len(dates),), chunks=(unit,), dtype="bool", fill_value=False)


def finalise(path: str | Path) -> Dataset:
    """Refuse, listing the dates, unless every date is loaded or declared missing; then mark complete."""
    root = zarr.open_group(str(path), mode="r+")
    dates = read(array(root, "dates"))
    done = loaded(path)
    missing = {seconds(m) for m in root.attrs.get("missing_dates", [])}  # type: ignore[union-attr]
    absent = [iso(d) for d, ok in zip(dates, done, strict=True) if not ok and d not in missing]
    if absent:
        raise WxpipeError(f"{path}: {len(absent)} dates not loaded: {some(absent, 10)}")
    if removed := remove_temps(Path(path)):
        log.info("%s: removed %d temporary files left by interrupted writers", path, removed)
    remove_build(root)
    size, files = tree_size(Path(path))
    root.attrs.update({"build_complete": True, "total_size": size, "total_number_of_files": files})
    return Dataset(path)
