"""Zarr access and the build bookkeeping: per-write-unit flags in the ``_build`` group.

The flags are written after the data they vouch for, so an interrupted job resumes and nothing
half-written is marked done; the group is removed once the store is complete, as anemoi-datasets
removes its own ``_build``, so readers see the dataset alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import WxpipeError

log = logging.getLogger(__name__)

BUILD = "_build"
LOADED = f"{BUILD}/loaded"


def array(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """``group[name]`` as an array (zarr types it as array-or-group)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise WxpipeError(f"{group.store_path}: {name} is not an array")
    return node


def read(arr: zarr.Array[Any], selection: Any = slice(None)) -> np.ndarray:
    """A selection of ``arr`` as a numpy array."""
    return np.asarray(arr[selection])


def build_flags(
    root: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], redo: Any = None
) -> zarr.Array[Any]:
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


def loaded(path: str | Path) -> np.ndarray:
    """Which dates are loaded: the build flags, or all of them in a complete store (flags removed)."""
    root = zarr.open_group(str(path), mode="r")
    if LOADED not in root:
        return np.ones(array(root, "dates").shape[0], dtype=bool)
    return read(array(root, LOADED))


def remove_build(root: zarr.Group) -> None:
    """Delete the build group (flags, resolved GRIB headers) of a store that is complete."""
    if BUILD in root:
        del root[BUILD]
