"""Forcings: fields that depend only on the grid point and the date, computed on the dataset's grid.

They give a model its position in space, in the year and in the day. The definitions follow
anemoi-datasets' ``forcings`` source (earthkit-data's ``ForcingMaker`` and earthkit's
``cos_solar_zenith_angle``), so a dataset built here and one built by anemoi agree:

- ``julian_day``: fractional days since 1 January 00:00 of the date's year (1 Jan 12:00 is 0.5);
  ``cos/sin_julian_day`` take it over a 365.25-day period.
- ``local_time``: ``(longitude / 15 + UTC hours) mod 24``; ``cos/sin_local_time`` over 24 hours.
- ``insolation`` (alias ``cos_solar_zenith_angle``): the cosine of the solar zenith angle clipped
  at 0, with the declination and the equation of time from the same Fourier series as earthkit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..recipe import Forcings
from ..timeutil import to_datetime

DAYS_PER_YEAR = 365.25

#: Fields that do not change with the date (they belong in a dataset's ``constant_fields``).
DATE_INDEPENDENT = frozenset(
    {
        "cos_latitude",
        "sin_latitude",
        "cos_longitude",
        "sin_longitude",
        "latitude",
        "longitude",
        "ecef_x",
        "ecef_y",
        "ecef_z",
    }
)


def julian_day(date: dt.datetime) -> float:
    """Fractional days since 1 January 00:00 of ``date``'s year."""
    return (date - dt.datetime(date.year, 1, 1)).total_seconds() / 86400.0


def utc_hours(date: dt.datetime) -> float:
    """Fractional hours since 00:00 UTC of ``date``'s day."""
    return (date - dt.datetime(date.year, date.month, date.day)).total_seconds() / 3600.0


def local_time(date: dt.datetime, longitudes: np.ndarray) -> np.ndarray:
    """Local solar time in hours, from the longitude alone (no time zones), in [0, 24)."""
    return np.mod(longitudes / 15.0 + utc_hours(date), 24.0)


def solar_declination(date: dt.datetime) -> tuple[float, float]:
    """Solar declination (degrees) and equation of time (degrees of hour angle) at ``date``.

    The same truncated Fourier series in the year angle as earthkit-meteo (after the IFS), so the
    insolation matches anemoi-built datasets to rounding.
    """
    a = 2.0 * np.pi * julian_day(date) / DAYS_PER_YEAR
    declination = (
        0.396372
        - 22.91327 * np.cos(a)
        + 4.025430 * np.sin(a)
        - 0.387205 * np.cos(2 * a)
        + 0.051967 * np.sin(2 * a)
        - 0.154527 * np.cos(3 * a)
        + 0.084798 * np.sin(3 * a)
    )
    time_correction = (
        0.004297 + 0.107029 * np.cos(a) - 1.837877 * np.sin(a) - 0.837378 * np.cos(2 * a) - 2.340475 * np.sin(2 * a)
    )
    return float(declination), float(time_correction)


def cos_solar_zenith_angle(date: dt.datetime, latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    """Cosine of the solar zenith angle, clipped at 0 (night side).

    earthkit takes the hour angle from ``date.hour`` alone; this uses the fractional hour, which is
    the same for every date on a whole hour (all wxpipe frequencies are whole hours).
    """
    declination, time_correction = solar_declination(date)
    dec = np.deg2rad(declination)
    lat = np.deg2rad(latitudes)
    hour_angle = np.deg2rad((utc_hours(date) - 12.0) * 15.0 + longitudes + time_correction)
    cos_zenith = np.sin(dec) * np.sin(lat) + np.cos(dec) * np.cos(lat) * np.cos(hour_angle)
    clipped: np.ndarray = np.clip(cos_zenith, 0.0, None)
    return clipped


class ForcingsSource:
    """A ``forcings`` source (implements :class:`~wxpipe.sources.base.FieldSource`).

    Computed on the dataset's grid rather than on the ``template`` source's: every source of a
    dataset shares one grid, so the two are the same, and no file needs opening. It reads anemoi's
    ``constants`` source too: a deprecated alias with the same keys and fields (not "fields repeated
    from one date", which is anemoi's ``repeated_dates``); :meth:`constant_variables` tells which
    fields are constant in time.
    """

    def __init__(self, spec: Forcings, latitudes: np.ndarray, longitudes: np.ndarray) -> None:
        self.spec = spec
        self.latitudes = np.asarray(latitudes, dtype=np.float64).ravel()
        self.longitudes = np.asarray(longitudes, dtype=np.float64).ravel()
        if self.latitudes.shape != self.longitudes.shape:
            raise ValueError(f"{len(self.latitudes)} latitudes but {len(self.longitudes)} longitudes")
        lat, lon = np.deg2rad(self.latitudes), np.deg2rad(self.longitudes)
        n = len(lat)
        full = np.full
        self._fields: dict[str, Callable[[dt.datetime], np.ndarray]] = {
            "latitude": lambda d: self.latitudes,
            "longitude": lambda d: self.longitudes,
            "cos_latitude": lambda d: np.cos(lat),
            "sin_latitude": lambda d: np.sin(lat),
            "cos_longitude": lambda d: np.cos(lon),
            "sin_longitude": lambda d: np.sin(lon),
            "ecef_x": lambda d: np.cos(lat) * np.cos(lon),
            "ecef_y": lambda d: np.cos(lat) * np.sin(lon),
            "ecef_z": lambda d: np.sin(lat),
            "julian_day": lambda d: full(n, julian_day(d)),
            "cos_julian_day": lambda d: full(n, np.cos(2 * np.pi * julian_day(d) / DAYS_PER_YEAR)),
            "sin_julian_day": lambda d: full(n, np.sin(2 * np.pi * julian_day(d) / DAYS_PER_YEAR)),
            "local_time": lambda d: local_time(d, self.longitudes),
            "cos_local_time": lambda d: np.cos(2 * np.pi * local_time(d, self.longitudes) / 24.0),
            "sin_local_time": lambda d: np.sin(2 * np.pi * local_time(d, self.longitudes) / 24.0),
            "insolation": lambda d: cos_solar_zenith_angle(d, self.latitudes, self.longitudes),
            "cos_solar_zenith_angle": lambda d: cos_solar_zenith_angle(d, self.latitudes, self.longitudes),
        }

    def variables(self) -> list[str]:
        return list(self.spec.param)

    def constant_variables(self) -> list[str]:
        """The variables that are the same at every date (for the dataset's ``constant_fields``)."""
        return [p for p in self.spec.param if p in DATE_INDEPENDENT]

    def files(self, date: np.datetime64) -> list[Path]:
        return []

    def metadata(self) -> dict[str, dict[str, object]]:
        return {p: {"param": p, "computed": "forcing"} for p in self.spec.param}

    def read(self, date: np.datetime64) -> dict[str, np.ndarray]:
        """Every forcing at ``date``, shaped (1, values) float64 (one member: forcings are not perturbed)."""
        d = to_datetime(date)
        return {p: np.array(self._fields[p](d), dtype=np.float64).reshape(1, -1) for p in self.spec.param}
