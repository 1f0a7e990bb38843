"""The lat/lon boxes an evaluation is scored in: WeatherBench2's standard regions, then the config's.

A box's longitudes and the grid's are both brought to [-180, 180) before comparing, so a dataset on
0..360 and a box written either way select the same points; a box whose west is east of its east crosses
the antimeridian.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import WxpipeError

if TYPE_CHECKING:
    from .._evaluation import RegionConfig


@dataclass(frozen=True)
class Region:
    """A named box in degrees; latitude bounds inclusive."""

    name: str
    south: float
    north: float
    west: float = -180.0
    east: float = 180.0

    def box(self) -> str:
        return f"lat {self.south:g}..{self.north:g}, lon {self.west:g}..{self.east:g}"


STANDARD: tuple[Region, ...] = (
    Region("global", -90.0, 90.0),
    Region("n-extratropics", 20.0, 90.0),
    Region("s-extratropics", -90.0, -20.0),
    Region("tropics", -20.0, 20.0),
    Region("europe", 35.0, 75.0, -12.5, 42.5),
)


def regions(boxes: Mapping[str, RegionConfig]) -> list[Region]:
    """:data:`STANDARD`, then the config's boxes in their order; a config box may not reuse a standard name."""
    taken = {r.name for r in STANDARD}
    out = list(STANDARD)
    for name, box in boxes.items():
        if name in taken:
            raise WxpipeError(f"evaluation.regions.{name}: {name!r} is a standard region; choose another name")
        out.append(Region(name, box.lat[0], box.lat[1], box.lon[0], box.lon[1]))
    return out


def masks(regions: Sequence[Region], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(regions, values) booleans: which grid points each region holds. A region with no point is an error,
    since its scores would all be NaN."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = _normalise(np.asarray(lon, dtype=np.float64))
    out = np.zeros((len(regions), lat.size), dtype=bool)
    for k, r in enumerate(regions):
        out[k] = (lat >= r.south) & (lat <= r.north) & _within(lon, r.west, r.east)
        if not out[k].any():
            raise WxpipeError(f"region {r.name!r} ({r.box()}) holds no point of the grid")
    return out


def _normalise(lon: np.ndarray) -> np.ndarray:
    out: np.ndarray = (lon + 180.0) % 360.0 - 180.0
    return out


def _within(lon: np.ndarray, west: float, east: float) -> np.ndarray:
    """Longitudes (already in [-180, 180)) between ``west`` and ``east`` going east, bounds included."""
    if east - west >= 360.0:
        return np.ones(lon.shape, dtype=bool)
    w, e = _normalise(np.array([west, east], dtype=np.float64))
    inside: np.ndarray = (lon >= w) & (lon <= e) if w <= e else (lon >= w) | (lon <= e)
    return inside
