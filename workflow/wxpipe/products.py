"""The small Zarr **v2** stores wxpipe writes besides datasets (the forecasts file, the climatology): float32 fields
with a chunk per index of their first two axes, the grid, every array naming its dimensions in
``_ARRAY_DIMENSIONS`` (so ``xarray.open_zarr`` opens them as they are), and a ``format`` and ``version`` that a
reader checks before anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .dataset import codecs
from .errors import WxpipeError


def dims(table: Mapping[str, list[str]], name: str) -> dict[str, Any]:
    """The attribute that names array ``name``'s dimensions, from a store's ``table`` of them."""
    return {"_ARRAY_DIMENSIONS": table[name]}


def new_store(
    path: Path,
    name: str,
    shape: tuple[int, ...],
    table: Mapping[str, list[str]],
    latitudes: np.ndarray,
    longitudes: np.ndarray,
) -> zarr.Group:
    """A Zarr v2 group holding ``name``, float32 fields of ``shape`` (NaN fill, a chunk per index of the first two
    axes), and the grid; every array names its dimensions from ``table``, so ``xarray.open_zarr`` opens it as is."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array(
        name,
        shape=shape,
        chunks=(1, 1, *shape[2:]),
        dtype="float32",
        fill_value=np.nan,
        compressors=codecs(None, 2),
        attributes=dims(table, name),
    )
    for key, values in (("latitudes", latitudes), ("longitudes", longitudes)):
        root.create_array(key, data=np.asarray(values, dtype=np.float64), attributes=dims(table, key))
    return root


@contextmanager
def stored(path: Path, fmt: str, version: int, what: str) -> Iterator[tuple[zarr.Group, dict[str, Any]]]:
    """The group at ``path`` and its attributes, checked to be ``fmt`` ``version``; what fails in the block (a
    missing array or attribute) is an error naming ``path`` as no readable ``what``."""
    try:
        root = zarr.open_group(str(path), mode="r")
        attrs: dict[str, Any] = dict(root.attrs)
        if attrs.get("format") != fmt or attrs.get("version") != version:
            raise WxpipeError(f"{path}: not a {what} ({fmt} version {version})")
        yield root, attrs
    except (FileNotFoundError, KeyError, ValueError, TypeError, zarr.errors.GroupNotFoundError) as exc:
        raise WxpipeError(f"{path}: not a readable {what} ({exc!r})") from None
