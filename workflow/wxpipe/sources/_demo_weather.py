"""The demo archive's synthetic weather: every field a deterministic function of (seed, date, point).

The weather is made to be learnable: a few eastward-travelling planetary waves per hemisphere set the
pressure, temperature and rain patterns, winds follow the pressure field geostrophically, and the
sun drives a diurnal and a seasonal cycle. A small model can therefore beat persistence, which is what
the demo's evaluation stage needs to show. Values are in GRIB units; :mod:`~wxpipe.sources.demo`
encodes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_RADIUS = 6.371e6  # m
EARTH_OMEGA = 7.292e-5  # rad s-1
DRY_AIR_R = 287.05  # J kg-1 K-1
AIR_DENSITY = 1.225  # kg m-3, near the surface

HOUR = 3600.0
DAY = 86400.0
YEAR = 365.2422 * DAY
ACCUMULATION = 6 * HOUR  # the tp window: the 6 hours that end at the date

#: The variables, in the order of a file's messages; a variable's noise is drawn in this order, so it
#: is part of the archive's bytes.
VARIABLES = ("2t", "10u", "10v", "msl", "z_500", "z_850", "t_500", "t_850", "tp")

# Seconds are counted from J2000 so that phases stay small; the vernal equinox of 2000 anchors the seasons.
_EPOCH = np.datetime64("2000-01-01T12:00:00", "s")
_EQUINOX = float((np.datetime64("2000-03-20T07:35:00", "s") - _EPOCH).astype(np.int64))
_SEASON_LAG = 30 * DAY  # temperatures peak about a month after the solstice
_NOISE_STREAM = 1  # separates the per-date noise stream from the per-seed climate stream
_CLIMATE_STREAM = 2


class Weather:
    """One seed's weather on one grid: the climate and the grid's patterns are computed once."""

    def __init__(self, seed: int, lat: np.ndarray, lon: np.ndarray) -> None:
        self.seed = seed
        self.climate = _Climate.draw(seed)
        self.basis = _Basis.build(self.climate, lat, lon)

    def at(self, date: np.datetime64) -> dict[str, np.ndarray]:
        """Every variable at ``date``, by name, in GRIB units."""
        t = float((date - _EPOCH).astype(np.int64))
        return _fields(t, self.basis, self.climate, _noise(self.seed, date, self.basis.lat.size))


@dataclass(frozen=True)
class _Climate:
    """What a seed fixes for all dates: the travelling waves, a stationary pattern, tropical convection.

    Wave ``j`` is ``amp_j(t) envelope_j(lat) cos(k_j (lon - omega_j t) + phase_j)``: a rigid eastward
    rotation, so six hours on it is the same wave shifted east by ``omega_j 6 h``. Its amplitude
    swells and fades slowly (periods of one to four weeks) so that the future is not a pure repeat.
    """

    k: np.ndarray  # zonal wavenumber
    amp: np.ndarray  # dimensionless; the waves of a hemisphere add up to about one
    omega: np.ndarray  # eastward angular speed, rad s-1
    phase: np.ndarray
    centre: np.ndarray  # storm-track latitude, degrees
    width: np.ndarray  # degrees
    swell_period: np.ndarray  # s
    swell_phase: np.ndarray
    static_m: np.ndarray  # stationary "continents": wavenumbers 1-2 at fixed latitudes
    static_amp: np.ndarray
    static_phase: np.ndarray
    static_centre: np.ndarray
    convection_m: np.ndarray  # tropical convective envelopes travelling east
    convection_amp: np.ndarray
    convection_omega: np.ndarray
    convection_phase: np.ndarray

    @classmethod
    def draw(cls, seed: int) -> _Climate:
        rng = np.random.default_rng([seed, _CLIMATE_STREAM])
        k = np.tile(np.arange(3.0, 7.0), 2)  # wavenumbers 3-6 in each hemisphere
        hemisphere = np.repeat([1.0, -1.0], 4)
        speed = rng.uniform(6.0, 14.0, k.size)  # m s-1 at 45 degrees
        return cls(
            k=k,
            amp=rng.uniform(0.55, 1.0, k.size) / np.sqrt(2.0),
            omega=speed / (EARTH_RADIUS * np.cos(np.radians(45.0))),
            phase=rng.uniform(0.0, 2 * np.pi, k.size),
            centre=hemisphere * rng.uniform(40.0, 55.0, k.size),
            width=rng.uniform(10.0, 16.0, k.size),
            swell_period=rng.uniform(7.0, 28.0, k.size) * DAY,
            swell_phase=rng.uniform(0.0, 2 * np.pi, k.size),
            static_m=np.array([1.0, 2.0, 1.0, 2.0]),
            static_amp=rng.uniform(0.5, 1.0, 4) / np.sqrt(2.0),
            static_phase=rng.uniform(0.0, 2 * np.pi, 4),
            static_centre=np.array([45.0, 40.0, -45.0, -40.0]) + rng.uniform(-10.0, 10.0, 4),
            convection_m=np.array([1.0, 2.0]),
            convection_amp=np.array([0.35, 0.25]),
            convection_omega=np.array([5.0, 5.0]) / EARTH_RADIUS,  # 5 m s-1 at the equator
            convection_phase=rng.uniform(0.0, 2 * np.pi, 2),
        )

    def wave_coefficients(self, t: np.ndarray) -> np.ndarray:
        """Complex amplitude of each wave at times ``t``, shape (waves, times); the grid part is in _Basis."""
        t = np.atleast_1d(t)[None, :]
        swell = 1.0 + 0.35 * np.sin(2 * np.pi * t / self.swell_period[:, None] + self.swell_phase[:, None])
        angle = self.phase[:, None] - self.k[:, None] * self.omega[:, None] * t
        coefficients: np.ndarray = self.amp[:, None] * swell * np.exp(1j * angle)
        return coefficients

    def convection_coefficients(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(t)[None, :]
        angle = self.convection_phase[:, None] - self.convection_m[:, None] * self.convection_omega[:, None] * t
        coefficients: np.ndarray = self.convection_amp[:, None] * np.exp(1j * angle)
        return coefficients


@dataclass(frozen=True)
class _Basis:
    """The time-independent part of every pattern on one grid, computed once per archive.

    A travelling wave at time t is ``Re(wave @ c(t))`` with ``c`` from :meth:`_Climate.wave_coefficients`,
    its quadrature ``Im(wave @ c(t))``; one small matrix product per time instead of re-evaluating
    every wave. The derivatives are there for the geostrophic wind.
    """

    lat: np.ndarray
    lon: np.ndarray
    wave: np.ndarray  # (points, waves) complex: envelope(lat) exp(i k lon)
    wave_dlat: np.ndarray  # d/dlat, per degree
    wave_dlon: np.ndarray  # d/dlon, per degree
    static: np.ndarray  # (points,) real
    static_dlat: np.ndarray
    static_dlon: np.ndarray
    convection: np.ndarray  # (points, envelopes) complex: exp(i m lon)

    @classmethod
    def build(cls, climate: _Climate, lat: np.ndarray, lon: np.ndarray) -> _Basis:
        per_degree = np.radians(1.0)
        lam = np.radians(lon)[:, None]
        offset = lat[:, None] - climate.centre
        envelope = np.exp(-((offset / climate.width) ** 2))
        rotor = np.exp(1j * climate.k * lam)
        wave = envelope * rotor
        s_offset = lat[:, None] - climate.static_centre
        s_envelope = climate.static_amp * np.exp(-((s_offset / 25.0) ** 2))
        s_angle = climate.static_m * lam + climate.static_phase
        return cls(
            lat=lat,
            lon=lon,
            wave=wave,
            wave_dlat=wave * (-2.0 * offset / climate.width**2),
            wave_dlon=wave * (1j * climate.k * per_degree),
            static=(s_envelope * np.cos(s_angle)).sum(axis=1),
            static_dlat=(s_envelope * (-2.0 * s_offset / 25.0**2) * np.cos(s_angle)).sum(axis=1),
            static_dlon=(-s_envelope * climate.static_m * per_degree * np.sin(s_angle)).sum(axis=1),
            convection=np.exp(1j * climate.convection_m * lam),
        )


def _combine(basis: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``basis @ coefficients`` without BLAS: a threaded BLAS spends milliseconds on this tiny product."""
    combined: np.ndarray = np.einsum("pw,w...->p...", basis, coefficients)
    return combined


def _season(t: float) -> float:
    """Sine of the solar season: +1 at the northern summer solstice, -1 at the southern one."""
    return float(np.sin(2 * np.pi * (t - _EQUINOX) / YEAR))


def _local_hour(lon: np.ndarray, t: float) -> np.ndarray:
    """Local (mean) solar time in hours; J2000 is at noon UTC."""
    return np.mod(t / HOUR + 12.0 + lon / 15.0, 24.0)


def _noise(seed: int, date: np.datetime64, size: int) -> np.ndarray:
    """Standard normal draws, one row per variable, from (seed, date) alone: any subset of dates reproduces."""
    key = int((np.asarray(date).astype("datetime64[s]") - np.datetime64("0001-01-01", "s")).astype(np.int64))
    rng = np.random.default_rng([seed, _NOISE_STREAM, key])
    return rng.standard_normal((len(VARIABLES), size))


def _zonal_msl(lat: np.ndarray, t: float) -> np.ndarray:
    """Zonal-mean sea-level pressure (Pa): equatorial trough, subtropical highs, subpolar lows, following the sun."""
    x = lat - 5.0 * _season(t)
    return (
        101_100.0
        + 1_000.0 * np.exp(-(((np.abs(x) - 32.0) / 11.0) ** 2))
        - 1_500.0 * np.exp(-(((np.abs(x) - 62.0) / 10.0) ** 2))
        - 300.0 * np.exp(-((x / 8.0) ** 2))
    )


_MSL_STATIC = 600.0  # Pa per unit of the stationary pattern
_MSL_WAVE = 1_300.0  # Pa per unit of the travelling waves; lows where the wave's cosine peaks


def _wind(basis: _Basis, coefficients: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """10 m wind: geostrophic from the noise-free msl, slowed by friction and turned towards low pressure.

    The Coriolis parameter is smoothly bounded near the equator so the winds stay finite there.
    """
    d = 0.01
    zonal_dlat = (_zonal_msl(basis.lat + d, t) - _zonal_msl(basis.lat - d, t)) / (2 * d)
    dlat = zonal_dlat + _MSL_STATIC * basis.static_dlat - _MSL_WAVE * _combine(basis.wave_dlat, coefficients).real
    dlon = _MSL_STATIC * basis.static_dlon - _MSL_WAVE * _combine(basis.wave_dlon, coefficients).real
    metres = np.radians(1.0) * EARTH_RADIUS  # per degree of latitude
    dpdy = dlat / metres
    dpdx = dlon / (metres * np.cos(np.radians(basis.lat)))
    sinlat = np.sin(np.radians(basis.lat))
    inverse_f = sinlat / (sinlat**2 + np.sin(np.radians(10.0)) ** 2) / (2 * EARTH_OMEGA)
    ug = -dpdy * inverse_f / AIR_DENSITY
    vg = dpdx * inverse_f / AIR_DENSITY
    turn = np.radians(20.0) * np.tanh(basis.lat / 10.0)  # anticlockwise in the north, clockwise in the south
    return 0.7 * (ug * np.cos(turn) - vg * np.sin(turn)), 0.7 * (ug * np.sin(turn) + vg * np.cos(turn))


def _rain(basis: _Basis, climate: _Climate, t: float) -> np.ndarray:
    """Noise-free rain (mm) in the hours up to ``t``: east of the travelling lows and in the ITCZ.

    Midpoint rule over hourly rates, so the total is an accumulation over the window, not a snapshot.
    """
    hours = t - ACCUMULATION + HOUR * (np.arange(int(ACCUMULATION // HOUR)) + 0.5)
    waves = _combine(basis.wave, climate.wave_coefficients(hours))  # (points, hours)
    ahead = 0.6  # rad of phase east of each low (xi = 0), where warm moist air is lifted
    storm = (waves * np.exp(-1j * ahead)).real  # = sum of amp envelope cos(xi - ahead)
    extratropical = 1.6 * np.maximum(storm - 0.3, 0.0)
    envelopes = 1.0 + _combine(basis.convection, climate.convection_coefficients(hours)).real
    local = np.mod(hours[None, :] / HOUR + 12.0 + basis.lon[:, None] / 15.0, 24.0)
    afternoon = 1.0 + 0.5 * np.cos(2 * np.pi * (local - 16.0) / 24.0)
    itcz = 8.0 * _season(t - _SEASON_LAG)
    band = 0.45 * np.exp(-(((basis.lat - itcz) / 8.0) ** 2))
    tropical = band[:, None] * envelopes * afternoon
    rain: np.ndarray = (extratropical + tropical).sum(axis=1)  # mm h-1 times one hour each
    return rain


def _fields(t: float, basis: _Basis, climate: _Climate, noise: np.ndarray) -> dict[str, np.ndarray]:
    """All variables at ``t`` (seconds from J2000) in GRIB units, tied together hydrostatically."""
    lat, lon = basis.lat, basis.lon
    sinlat = np.sin(np.radians(lat))
    coslat = np.cos(np.radians(lat))
    coefficients = climate.wave_coefficients(np.array([t]))[:, 0]
    waves = _combine(basis.wave, coefficients)
    warm_summer = _season(t - _SEASON_LAG) * sinlat  # > 0 in the summer hemisphere
    anomaly = 4.0 * waves.imag  # K: warm air a quarter wave east of each low, cold air west of it
    static = 3.0 * basis.static
    diurnal = (0.5 + 4.0 * coslat) * np.cos(2 * np.pi * (_local_hour(lon, t) - 15.0) / 24.0)

    t2 = 300.0 - 45.0 * sinlat**2 + 14.0 * warm_summer + 0.7 * anomaly + static
    t850 = 286.0 - 40.0 * sinlat**2 + 10.0 * warm_summer + anomaly + 0.5 * static
    t500 = 264.0 - 32.0 * sinlat**2 + 6.0 * warm_summer + 0.8 * anomaly
    msl = _zonal_msl(lat, t) + _MSL_STATIC * basis.static - _MSL_WAVE * waves.real

    # hydrostatic thicknesses z(p2) - z(p1) = R T ln(p1 / p2), from z(1000 hPa) = (msl - 1000 hPa) / rho;
    # the upper trough lands west of the surface low: the westward tilt of growing mid-latitude waves
    z1000 = (msl - 100_000.0) / AIR_DENSITY
    z850 = z1000 + DRY_AIR_R * np.log(1000.0 / 850.0) * 0.5 * (t2 + t850)
    z500 = z850 + DRY_AIR_R * np.log(850.0 / 500.0) * 0.5 * (t850 + t500)
    u10, v10 = _wind(basis, coefficients, t)

    fields = {
        "2t": (t2 + diurnal, 0.3),
        "10u": (u10, 0.4),
        "10v": (v10, 0.4),
        "msl": (msl, 30.0),
        "z_500": (z500, 20.0),
        "z_850": (z850, 15.0),
        "t_500": (t500, 0.2),
        "t_850": (t850 + 0.15 * diurnal, 0.2),
    }
    out = {name: value + spread * noise[VARIABLES.index(name)] for name, (value, spread) in fields.items()}
    wet = _rain(basis, climate, t) * np.exp(0.3 * noise[VARIABLES.index("tp")] - 0.045)
    out["tp"] = np.maximum(wet - 0.05, 0.0) / 1000.0  # m; under 0.05 mm in 6 h counts as dry
    return out
