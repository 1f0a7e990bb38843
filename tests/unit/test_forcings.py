"""Forcings against independent formulas at known points, and against values earthkit-data computes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from wxpipe.recipe import Constants, Forcings
from wxpipe.sources.forcings import ForcingsSource, julian_day

ALL = list(Forcings.model_fields["param"].annotation.__args__[0].__args__)  # type: ignore[union-attr]


def _read(param: str, date: str, lat: list[float], lon: list[float]) -> np.ndarray:
    src = ForcingsSource(Forcings(param=[param]), np.array(lat), np.array(lon))
    return src.read(np.datetime64(date))[param][0]


def _global(step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.meshgrid(np.arange(90, -90 - step / 2, -step), np.arange(0, 360, step), indexing="ij")
    return lat.ravel(), lon.ravel()


def test_every_param_is_shaped_one_member_by_values() -> None:
    lat, lon = np.array([10.0, -20.0, 30.0]), np.array([0.0, 100.0, 250.0])
    src = ForcingsSource(Forcings(param=ALL), lat, lon)
    fields = src.read(np.datetime64("2020-05-01T06:00"))
    assert list(fields) == ALL == src.variables()
    for name, values in fields.items():
        assert values.shape == (1, 3), name
        assert values.dtype == np.float64, name
    assert src.files(np.datetime64("2020-05-01T06:00")) == []


def test_latitude_and_longitude_fields() -> None:
    assert _read("cos_latitude", "2020-01-01", [0.0, 60.0, -90.0], [0, 0, 0]) == pytest.approx([1.0, 0.5, 0.0])
    assert _read("sin_latitude", "2020-01-01", [90.0, 30.0, -90.0], [0, 0, 0]) == pytest.approx([1.0, 0.5, -1.0])
    assert _read("cos_longitude", "2020-01-01", [0, 0, 0], [0.0, 180.0, -60.0]) == pytest.approx([1.0, -1.0, 0.5])
    assert _read("sin_longitude", "2020-01-01", [0, 0, 0], [90.0, 270.0, -90.0]) == pytest.approx([1.0, -1.0, -1.0])


def test_julian_day_is_fractional_days_since_new_year() -> None:
    assert julian_day(dt.datetime(2021, 1, 1, 12)) == 0.5  # the example in anemoi's docs
    assert julian_day(dt.datetime(2020, 12, 31, 18)) == 365.75  # leap year
    assert _read("cos_julian_day", "2020-01-01T00", [0.0], [0.0]) == pytest.approx([1.0])
    assert _read("sin_julian_day", "2020-01-01T00", [0.0], [0.0]) == pytest.approx([0.0])
    # a quarter of the 365.25-day period after new year
    quarter = np.datetime64("2021-01-01T00") + np.timedelta64(int(365.25 / 4 * 86400), "s")
    assert _read("sin_julian_day", str(quarter), [0.0], [0.0]) == pytest.approx([1.0])


def test_local_time_follows_longitude() -> None:
    # 00 UTC: noon at the date line, midnight at Greenwich; 06 UTC: midnight at 90W
    assert _read("local_time", "2020-01-01T00", [0, 0, 0], [180.0, 0.0, -90.0]) == pytest.approx([12.0, 0.0, 18.0])
    assert _read("cos_local_time", "2020-01-01T00", [0.0], [180.0]) == pytest.approx([-1.0])
    assert _read("cos_local_time", "2020-01-01T06", [0.0], [-90.0]) == pytest.approx([1.0])
    assert _read("sin_local_time", "2020-01-01T00", [0.0], [90.0]) == pytest.approx([1.0])  # 06 local


def _textbook_cos_zenith(date: dt.datetime, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Spencer's (1971) declination and equation of time: an independent published fit."""
    g = 2 * np.pi * (date.timetuple().tm_yday - 1 + (date.hour - 12) / 24) / 365
    dec = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    eot_minutes = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )
    hour_angle = np.deg2rad(15 * (date.hour + date.minute / 60 - 12) + lon + eot_minutes / 4)
    phi = np.deg2rad(lat)
    return np.clip(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(hour_angle), 0, None)


@pytest.mark.parametrize("date", ["2020-03-20T12:00", "2020-06-21T12:00", "2021-12-21T00:00", "2020-09-10T18:00"])
def test_insolation_against_a_textbook_formula(date: str) -> None:
    lat, lon = _global(2.0)
    got = _read("insolation", date, list(lat), list(lon))
    expected = _textbook_cos_zenith(dt.datetime.fromisoformat(date), lat, lon)
    assert np.abs(got - expected).max() < 0.005
    assert got.min() == 0.0 and got.max() <= 1.0
    assert 0.4 < np.mean(got == 0) < 0.6  # half the globe is in the dark


def test_insolation_peaks_at_the_subsolar_point() -> None:
    lat, lon = _global(0.5)
    got = _read("insolation", "2020-06-21T12:00", list(lat), list(lon))
    i = int(np.argmax(got))
    assert got[i] == pytest.approx(1.0, abs=1e-3)
    assert lat[i] == pytest.approx(23.44, abs=0.5)  # tropic of Cancer at the June solstice
    assert min(lon[i], 360 - lon[i]) < 1.0  # noon near Greenwich at 12 UTC
    night = _read("insolation", "2020-06-21T12:00", [0.0, -70.0], [180.0, 0.0])
    assert list(night) == [0.0, 0.0]  # the date line at midnight; polar night


# Values from earthkit-data 0.20's ``forcings`` source (what anemoi-datasets uses), same points.
EARTHKIT = {
    ("2020-06-21T12:00", "insolation"): [0.9173491073411005, 0.921060596603783, 0.0, 0.460264679055435],
    ("2020-06-21T12:00", "cos_local_time"): [-1.0, -0.984807753012208, 0.9396926207859082, -0.25881904510252085],
    ("2020-06-21T12:00", "sin_julian_day"): [0.17329522734857222] * 4,
    ("2021-11-03T06:00", "insolation"): [0.06896292375453283, 0.0, 0.0, 0.0],
    ("2021-11-03T06:00", "cos_local_time"): [
        6.123233995736766e-17,
        -0.1736481776669303,
        0.342020143325669,
        0.9659258262890683,
    ],
    ("2021-11-03T06:00", "sin_julian_day"): [-0.8494504794814808] * 4,
}


@pytest.mark.parametrize(("date", "param"), list(EARTHKIT))
def test_matches_earthkit(date: str, param: str) -> None:
    got = _read(param, date, [0.0, 45.0, -30.0, 60.0], [0.0, 10.0, 200.0, -75.0])
    np.testing.assert_allclose(got, EARTHKIT[date, param], rtol=0, atol=1e-12)


def test_constant_variables_and_constants_alias() -> None:
    lat, lon = np.array([10.0, 20.0]), np.array([5.0, 6.0])
    params = ["cos_latitude", "insolation", "sin_longitude", "cos_julian_day"]
    src = ForcingsSource(Forcings(param=params), lat, lon)
    assert src.constant_variables() == ["cos_latitude", "sin_longitude"]
    alias = ForcingsSource(Constants.model_validate({"params": params}), lat, lon)
    date = np.datetime64("2020-02-03T06:00")
    a, b = src.read(date), alias.read(date)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_grid_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 latitudes but 3 longitudes"):
        ForcingsSource(Forcings(param=["cos_latitude"]), np.zeros(2), np.zeros(3))
