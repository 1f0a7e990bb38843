"""A benchmark GRIB2 archive: one file per date, 8 instantaneous analyses on a regular 1° grid.

Each file holds ``2t``, ``msl``, ``10u``, ``10v`` (surface) and ``z``, ``t`` at 500 and 850 hPa on the
global 1° lat-lon grid (181 x 360 = 65 160 points, north to south, 0° to 359° east), packed at 16 bits
as ERA5 is. Values are smooth travelling waves plus a little seeded noise, so GRIB packing and Zarr
compression see realistic entropy. The archive lives under ``bench/work`` and only missing files are
written: each file is a function of its date and the seed alone.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eccodes
import numpy as np
from tqdm import tqdm

from ._env import WORK

log = logging.getLogger("bench.gribgen")

LAYOUT_VERSION = 1
START = np.datetime64("2020-01-01T00:00:00", "s")
STEP = np.timedelta64(6 * 3600, "s")
NI, NJ = 360, 181
ARCHIVE = WORK / "grib-1deg"
PATTERN = "{date:strftime(%Y%m%d%H)}.grib2"


@dataclass(frozen=True)
class Param:
    """One message per file: the ecCodes keys, and the field's climate (mean, amplitude) in SI units."""

    short_name: str
    sample: str
    type_of_level: str
    level: int
    mean: float
    amplitude: float
    meridional: float  # pole-to-equator contrast

    @property
    def name(self) -> str:
        return f"{self.short_name}_{self.level}" if self.type_of_level == "isobaricInhPa" else self.short_name


PARAMS: tuple[Param, ...] = (
    Param("2t", "regular_ll_sfc_grib2", "heightAboveGround", 2, 278.0, 6.0, 40.0),
    Param("msl", "regular_ll_sfc_grib2", "meanSea", 0, 101_300.0, 1_200.0, 800.0),
    Param("10u", "regular_ll_sfc_grib2", "heightAboveGround", 10, 2.0, 8.0, 6.0),
    Param("10v", "regular_ll_sfc_grib2", "heightAboveGround", 10, 0.0, 8.0, 2.0),
    Param("z", "regular_ll_pl_grib2", "isobaricInhPa", 500, 55_000.0, 1_500.0, 4_000.0),
    Param("z", "regular_ll_pl_grib2", "isobaricInhPa", 850, 14_000.0, 600.0, 1_200.0),
    Param("t", "regular_ll_pl_grib2", "isobaricInhPa", 500, 252.0, 4.0, 25.0),
    Param("t", "regular_ll_pl_grib2", "isobaricInhPa", 850, 275.0, 5.0, 35.0),
)
VARIABLES: tuple[str, ...] = tuple(p.name for p in PARAMS)
SURFACE: tuple[str, ...] = ("2t", "msl", "10u", "10v")
PRESSURE: tuple[str, ...] = ("z", "t")
LEVELS: tuple[int, ...] = (500, 850)


def dates(n: int) -> np.ndarray:
    """The first ``n`` dates of the archive (6-hourly from 2020-01-01T00)."""
    return START + STEP * np.arange(n)


def file_of(archive: Path, date: np.datetime64) -> Path:
    return archive / f"{_stamp(date)}.grib2"


def _stamp(date: np.datetime64) -> str:
    s = str(date.astype("datetime64[h]"))  # 2020-01-01T06
    return s[:4] + s[5:7] + s[8:10] + s[11:13]


def ensure_archive(n_dates: int, archive: Path = ARCHIVE, seed: int = 0) -> Path:
    """Make sure the first ``n_dates`` files are there; only missing ones are written. Returns the folder.

    A file depends only on its date, the seed and the layout version (kept in ``archive.json``), so an
    archive of 100 dates grows to 500 by writing the 400 files that follow; a stamp that differs wipes it.
    """
    stamp = archive / "archive.json"
    want = {"layout": LAYOUT_VERSION, "seed": seed, "start": str(START), "grid": [NJ, NI]}
    if stamp.exists() and json.loads(stamp.read_text()) != want:
        log.info("%s was written with other settings: rewriting it", archive)
        for f in archive.glob("*.grib2"):
            f.unlink()
    archive.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(want) + "\n")
    todo = np.array([d for d in dates(n_dates) if not file_of(archive, d).exists()], dtype="datetime64[s]")
    if len(todo):
        log.info("writing %d of %d dates to %s", len(todo), n_dates, archive)
        write(archive, todo, seed)
    else:
        log.info("reusing %s (%d dates)", archive, n_dates)
    return archive


def write(archive: Path, when: np.ndarray, seed: int = 0) -> None:
    lat = np.linspace(90.0, -90.0, NJ)
    lon = np.arange(NI, dtype=np.float64)
    lon2, lat2 = np.meshgrid(np.deg2rad(lon), np.deg2rad(lat))
    rng = np.random.default_rng(seed)
    waves = {p.name: _Waves.draw(rng) for p in PARAMS}
    handles = _handles()
    try:
        for date in tqdm(when, desc="gribgen", unit="date"):
            t = float((date - START).astype(np.int64)) / 86400.0  # days
            noise = np.random.default_rng([seed, int(date.astype(np.int64))])
            parts = []
            for p in PARAMS:
                values = _field(p, waves[p.name], lat2, lon2, t, noise)
                parts.append(_encode(handles[p.name], date, values))
            _write_atomic(file_of(archive, date), b"".join(parts))
    finally:
        for h in handles.values():
            eccodes.codes_release(h)


@dataclass(frozen=True)
class _Waves:
    """Three eastward-travelling zonal waves with latitude envelopes."""

    k: np.ndarray
    speed: np.ndarray  # rad / day
    phase: np.ndarray
    centre: np.ndarray  # rad

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Waves:
        return cls(
            k=rng.integers(1, 7, 3).astype(np.float64),
            speed=rng.uniform(0.05, 0.4, 3),
            phase=rng.uniform(0, 2 * np.pi, 3),
            centre=np.deg2rad(rng.uniform(-60, 60, 3)),
        )


def _field(p: Param, w: _Waves, lat: np.ndarray, lon: np.ndarray, t: float, noise: np.random.Generator) -> np.ndarray:
    out = p.mean - p.meridional * (np.sin(lat) ** 2 - 1.0 / 3.0)
    for j in range(3):
        envelope = np.exp(-(((lat - w.centre[j]) / 0.35) ** 2))
        out = out + p.amplitude * envelope * np.cos(w.k[j] * lon - w.speed[j] * w.k[j] * t + w.phase[j])
    out = out + 0.02 * p.amplitude * noise.standard_normal(out.shape)
    return out.ravel()


def _handles(params: tuple[Param, ...] | list[Param] = PARAMS) -> dict[str, Any]:
    """One handle per variable with grid, parameter and level set; only dates and values change per file."""
    handles: dict[str, Any] = {}
    try:
        for p in params:
            h = eccodes.codes_grib_new_from_samples(p.sample)
            handles[p.name] = h
            for key, value in (
                ("Ni", NI),
                ("Nj", NJ),
                ("latitudeOfFirstGridPointInDegrees", 90.0),
                ("longitudeOfFirstGridPointInDegrees", 0.0),
                ("latitudeOfLastGridPointInDegrees", -90.0),
                ("longitudeOfLastGridPointInDegrees", 359.0),
                ("iDirectionIncrementInDegrees", 1.0),
                ("jDirectionIncrementInDegrees", 1.0),
                ("numberOfDataPoints", NI * NJ),
                ("packingType", "grid_simple"),
                ("bitsPerValue", 16),
                ("typeOfProcessedData", "an"),
                ("typeOfGeneratingProcess", 0),
                ("typeOfLevel", p.type_of_level),
                ("level", p.level),
                ("shortName", p.short_name),
                ("step", 0),
            ):
                eccodes.codes_set(h, key, value)
    except BaseException:
        for h in handles.values():
            eccodes.codes_release(h)
        raise
    return handles


ENSEMBLE = WORK / "grib-1deg-ens"
ENSEMBLE_PARAMS: tuple[str, ...] = ("2t", "msl")
MEMBERS = 4


def ensure_ensemble(n_dates: int, archive: Path = ENSEMBLE, members: int = MEMBERS) -> Path:
    """Make sure an ensemble archive holds its first ``n_dates`` files: ``2t`` and ``msl`` of members
    0 to ``members - 1`` (GRIB 2 product template 1, so ``number`` is the perturbation number)."""
    stamp = archive / "archive.json"
    want = {"layout": LAYOUT_VERSION, "members": members, "start": str(START), "grid": [NJ, NI]}
    if stamp.exists() and json.loads(stamp.read_text()) != want:
        for f in archive.glob("*.grib2"):
            f.unlink()
    archive.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(want) + "\n")
    todo = [d for d in dates(n_dates) if not file_of(archive, d).exists()]
    if not todo:
        return archive
    lat = np.linspace(90.0, -90.0, NJ)
    lon2, lat2 = np.meshgrid(np.deg2rad(np.arange(NI, dtype=np.float64)), np.deg2rad(lat))
    params = [p for p in PARAMS if p.name in ENSEMBLE_PARAMS]
    waves = {p.name: _Waves.draw(np.random.default_rng(1)) for p in params}
    handles = _handles(params)
    try:
        for h in handles.values():
            for key, value in (
                ("productDefinitionTemplateNumber", 1),
                ("typeOfProcessedData", 4),
                ("typeOfEnsembleForecast", 3),
                ("numberOfForecastsInEnsemble", members),
            ):
                eccodes.codes_set(h, key, value)
        for date in todo:
            t = float((date - START).astype(np.int64)) / 86400.0
            parts = []
            for n in range(members):
                noise = np.random.default_rng([n, int(date.astype(np.int64))])
                for p in params:
                    eccodes.codes_set(handles[p.name], "perturbationNumber", n)
                    parts.append(_encode(handles[p.name], date, _field(p, waves[p.name], lat2, lon2, t, noise)))
            _write_atomic(file_of(archive, date), b"".join(parts))
    finally:
        for h in handles.values():
            eccodes.codes_release(h)
    return archive


def _encode(handle: Any, date: np.datetime64, values: np.ndarray) -> bytes:
    stamp = _stamp(date)
    eccodes.codes_set(handle, "dataDate", int(stamp[:8]))
    eccodes.codes_set(handle, "dataTime", int(stamp[8:]) * 100)
    eccodes.codes_set_values(handle, values)
    return bytes(eccodes.codes_get_message(handle))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(n_dates: int = 500) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(ensure_archive(n_dates))


if __name__ == "__main__":
    main()
