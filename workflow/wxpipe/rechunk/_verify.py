"""Verifying a layout against its source, region by region; a verified layout is complete."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import zarr

from ..dataset import Dataset, array, check_statistics, read, remove_build
from ..errors import WxpipeError
from ..fsutil import remove_temps
from ..progress import progress
from ._plan import Layout, plan
from ._run import DONE, done, small_arrays

log = logging.getLogger(__name__)


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
        if not _equal(read(a.data, r.selection), read(b.data, r.selection)):
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
