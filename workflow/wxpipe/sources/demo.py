"""The demo archive: real GRIB2 files of synthetic weather, so the whole pipeline runs offline in minutes.

The weather (:mod:`~wxpipe.sources._demo_weather`) is a deterministic function of (seed, date,
latitude, longitude), and so is every byte written here: reruns and partial reruns write
byte-identical files. The grid is the octahedral reduced Gaussian grid (ECMWF's ``O<n>``), written
the way ECMWF writes it, so the GRIB reader is exercised on the same layout as real IFS or ERA5 data.
ecCodes is imported when a file is encoded: the workflow imports :func:`demo_path` to build its DAG.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WxpipeError
from ..fsutil import write_atomic
from ..progress import progress
from ._demo_weather import ACCUMULATION, HOUR, VARIABLES, Weather

log = logging.getLogger(__name__)

__all__ = ["DEMO_VARIABLES", "demo_path", "octahedral_grid", "write_demo_archive"]

_GRID = re.compile(r"^O([1-9]\d*)$")
_SAMPLE = "reduced_gg_pl_grib2"
_BITS_PER_VALUE = 16  # as ERA5: steps of ~1 mK for 2t, ~0.1 Pa for msl, ~5e-7 m for tp over their ranges


@dataclass(frozen=True)
class _Param:
    """The ecCodes keys that identify one variable's message."""

    short_name: str
    level_type: str
    level: int
    accumulated: bool = False


_PARAMS = {
    "2t": _Param("2t", "heightAboveGround", 2),
    "10u": _Param("10u", "heightAboveGround", 10),
    "10v": _Param("10v", "heightAboveGround", 10),
    "msl": _Param("msl", "meanSea", 0),
    "z_500": _Param("z", "isobaricInhPa", 500),
    "z_850": _Param("z", "isobaricInhPa", 850),
    "t_500": _Param("t", "isobaricInhPa", 500),
    "t_850": _Param("t", "isobaricInhPa", 850),
    "tp": _Param("tp", "surface", 0, accumulated=True),
}

#: Variables of every demo file, in message order, named as the dataset names them (``param_level``).
DEMO_VARIABLES: tuple[str, ...] = VARIABLES


def demo_path(out: Path, date: np.datetime64) -> Path:
    """The file that holds ``date``: one file per date, so a rerun of one date rewrites one file."""
    return Path(out) / f"{_hour_stamp(date)}.grib2"


def octahedral_grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points per row, latitudes and longitudes of the octahedral grid ``O<n>``, flattened as GRIB orders them.

    The ``2 n`` rows run north to south at the Gaussian latitudes (arcsines of the roots of the
    Legendre polynomial of degree ``2 n``); row ``i`` counted from either pole has ``20 + 4 i`` equally
    spaced points starting at longitude 0. These are the coordinates ecCodes computes for the files
    written here, so datasets built from them can be checked against this function.
    """
    if n < 1:
        raise ValueError(f"octahedral grid needs n >= 1, got {n}")
    half = 20 + 4 * np.arange(n, dtype=np.int64)
    pl = np.concatenate([half, half[::-1]])
    roots, _ = np.polynomial.legendre.leggauss(2 * n)  # ascending sin(latitude)
    rows = np.degrees(np.arcsin(roots[::-1]))
    latitudes = np.repeat(rows, pl)
    longitudes = np.concatenate([360.0 * np.arange(p) / p for p in pl])
    return pl, latitudes, longitudes


def write_demo_archive(out: Path, dates: np.ndarray, grid: str = "O32", seed: int = 0) -> list[Path]:
    """Write one GRIB2 file per date under ``out`` and return their paths, in the order of ``dates``.

    Each file is written under a temporary name and renamed (:func:`~wxpipe.fsutil.write_atomic`), so a
    reader never sees half a file and an interrupted run leaves only complete files behind. The bytes
    depend on (seed, date, grid) alone.
    """
    n = _grid_number(grid)
    if seed < 0:
        raise WxpipeError(f"demo seed must be >= 0, got {seed}")
    dates = np.asarray(dates).astype("datetime64[s]")
    for date in dates:
        _hour_stamp(date)  # fail before writing anything
    pl, lat, lon = octahedral_grid(n)
    weather = Weather(seed, lat, lon)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("writing %d demo GRIB2 files on %s (%d points) to %s, seed %d", len(dates), grid, lat.size, out, seed)
    started = time.perf_counter()
    paths = []
    handles = _handles(pl, lat[0])
    try:
        for date in progress(iterable=dates, desc="demo archive", unit="date"):
            values = weather.at(date)
            message = b"".join(_encode(handles[v], _PARAMS[v], date, values[v]) for v in DEMO_VARIABLES)
            path = demo_path(out, date)
            write_atomic(path, message)
            log.debug("wrote %s (%d bytes)", path, len(message))
            paths.append(path)
    finally:
        _release(handles.values())
    log.info("wrote %d files in %.1f s", len(paths), time.perf_counter() - started)
    return paths


# --- dates and files ---------------------------------------------------------------------------------


def _hour_stamp(date: np.datetime64) -> str:
    """``YYYYmmddHH``; dates off the hour are refused since neither file names nor tp windows could hold them."""
    d = np.asarray(date).astype("datetime64[s]")
    if d != d.astype("datetime64[h]"):
        raise WxpipeError(f"demo dates must be on the hour, got {d}")
    return str(np.datetime_as_string(d, unit="h")).replace("-", "").replace("T", "")


def _grid_number(grid: str) -> int:
    m = _GRID.match(grid)
    if not m:
        raise WxpipeError(f"demo grid must be an octahedral grid like 'O32' or 'O48', got {grid!r}")
    return int(m.group(1))


# --- GRIB encoding -----------------------------------------------------------------------------------


def _handles(pl: np.ndarray, first_latitude: float) -> dict[str, Any]:
    """One ecCodes handle per variable with grid, parameter and level set; dates only change per file.

    The reduced Gaussian sample carries an N32 grid of the classic (non-octahedral) kind; replacing
    ``pl`` makes ecCodes report ``isOctahedral = 1``, but ``numberOfDataPoints``, the row count and the
    corner coordinates must be set by hand. The last longitude is the east-most point of the longest
    row, as ECMWF writes octahedral grids, so ecCodes sees the grid as global.
    """
    import eccodes

    n = len(pl) // 2
    base = eccodes.codes_grib_new_from_samples(_SAMPLE)
    handles: dict[str, Any] = {}
    try:
        eccodes.codes_set(base, "numberOfParallelsBetweenAPoleAndTheEquator", n)
        eccodes.codes_set(base, "Nj", 2 * n)
        eccodes.codes_set_long_array(base, "pl", [int(p) for p in pl])
        eccodes.codes_set(base, "numberOfDataPoints", int(pl.sum()))
        eccodes.codes_set(base, "latitudeOfFirstGridPointInDegrees", float(first_latitude))
        eccodes.codes_set(base, "longitudeOfFirstGridPointInDegrees", 0.0)
        eccodes.codes_set(base, "latitudeOfLastGridPointInDegrees", -float(first_latitude))
        eccodes.codes_set(base, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / float(pl.max()))
        eccodes.codes_set(base, "packingType", "grid_simple")
        eccodes.codes_set(base, "bitsPerValue", _BITS_PER_VALUE)
        for name in DEMO_VARIABLES:
            p = _PARAMS[name]
            h = eccodes.codes_clone(base)
            handles[name] = h
            eccodes.codes_set(h, "typeOfLevel", p.level_type)
            eccodes.codes_set(h, "level", p.level)
            if p.accumulated:
                # a 6-hour total from a short forecast: product template 4.8, stepRange 0-6
                eccodes.codes_set(h, "stepType", "accum")
                eccodes.codes_set(h, "typeOfProcessedData", "fc")
                eccodes.codes_set(h, "typeOfGeneratingProcess", 2)
            else:
                eccodes.codes_set(h, "typeOfProcessedData", "an")
                eccodes.codes_set(h, "typeOfGeneratingProcess", 0)
            eccodes.codes_set(h, "shortName", p.short_name)
    except BaseException:
        _release(handles.values())
        raise
    finally:
        _release([base])
    return handles


def _encode(handle: Any, param: _Param, date: np.datetime64, values: np.ndarray) -> bytes:
    """One message valid at ``date``; accumulations start 6 hours earlier with stepRange ``0-6``.

    The handle is reused from file to file (a clone costs ten times the encoding); every key that
    differs between files is set here on every call, so a message depends on its date and values only.
    """
    import eccodes

    reference = date - np.timedelta64(int(ACCUMULATION), "s") if param.accumulated else date
    stamp = _hour_stamp(reference)
    eccodes.codes_set(handle, "dataDate", int(stamp[:8]))
    eccodes.codes_set(handle, "dataTime", int(stamp[8:]) * 100)
    if param.accumulated:
        eccodes.codes_set(handle, "startStep", 0)
        eccodes.codes_set(handle, "endStep", int(ACCUMULATION // HOUR))
    else:
        eccodes.codes_set(handle, "step", 0)
    eccodes.codes_set_values(handle, values)
    return bytes(eccodes.codes_get_message(handle))


def _release(handles: Iterable[Any]) -> None:
    import eccodes

    for h in handles:
        eccodes.codes_release(h)
