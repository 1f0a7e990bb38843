"""The demo archive: real GRIB2 that ecCodes reads back, reproducible to the byte, with learnable weather."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import eccodes
import numpy as np
import pytest

from wxpipe.errors import WxpipeError
from wxpipe.sources.demo import DEMO_VARIABLES, demo_path, octahedral_grid, write_demo_archive

H6 = np.timedelta64(6, "h")
JANUARY = np.arange(np.datetime64("2021-01-15T00", "s"), np.datetime64("2021-01-16T06", "s"), H6)  # 6 dates
JULY = np.array(["2021-07-15T00"], dtype="datetime64[s]")


def read(path: Path) -> dict[str, dict[str, Any]]:
    """Every message of a file by variable name (``param`` or ``param_level``), with keys and values."""
    out: dict[str, dict[str, Any]] = {}
    with open(path, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                keys = {
                    k: eccodes.codes_get(h, k)
                    for k in (
                        "edition", "shortName", "typeOfLevel", "level", "stepType", "stepRange", "dataDate",
                        "dataTime", "validityDate", "validityTime", "gridType", "N", "isOctahedral",
                        "numberOfDataPoints",
                    )
                }  # fmt: skip
                keys["pl"] = eccodes.codes_get_array(h, "pl")
                keys["latitudes"] = eccodes.codes_get_array(h, "latitudes")
                keys["longitudes"] = eccodes.codes_get_array(h, "longitudes")
                keys["values"] = eccodes.codes_get_values(h)
            finally:
                eccodes.codes_release(h)
            name = keys["shortName"]
            if keys["typeOfLevel"] == "isobaricInhPa":
                name = f"{name}_{keys['level']}"
            assert name not in out, f"{name} twice in {path}"
            out[name] = keys
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict[np.datetime64, Path]:
    out = tmp_path_factory.mktemp("demo")
    dates = np.concatenate([JANUARY, JULY])
    paths = write_demo_archive(out, dates, grid="O32", seed=0)
    return dict(zip(dates, paths, strict=True))


def fields(archive: dict[np.datetime64, Path], date: np.datetime64) -> dict[str, np.ndarray]:
    return {name: m["values"] for name, m in read(archive[date]).items()}


def rows(pl: np.ndarray) -> list[slice]:
    ends = np.cumsum(pl)
    return [slice(int(e - p), int(e)) for p, e in zip(pl, ends, strict=True)]


def test_demo_path_is_one_file_per_hour() -> None:
    assert demo_path(Path("a"), np.datetime64("2020-03-01T18:00:00")) == Path("a/2020030118.grib2")
    with pytest.raises(WxpipeError, match="on the hour"):
        demo_path(Path("a"), np.datetime64("2020-03-01T18:30:00"))


@pytest.mark.parametrize("n", [1, 32, 48])
def test_octahedral_grid(n: int) -> None:
    pl, lat, lon = octahedral_grid(n)
    assert len(pl) == 2 * n
    assert pl[0] == 20 and np.all(np.diff(pl[:n]) == 4)
    np.testing.assert_array_equal(pl, pl[::-1])
    assert lat.shape == lon.shape == (pl.sum(),)
    row_lat = np.array([lat[r][0] for r in rows(pl)])
    assert np.all(np.diff(row_lat) < 0), "rows run north to south"
    np.testing.assert_allclose(row_lat, -row_lat[::-1], atol=1e-12)
    # Gaussian latitudes: sin(lat) are the roots of the Legendre polynomial of degree 2n
    p2n = np.polynomial.legendre.Legendre.basis(2 * n)
    np.testing.assert_allclose(p2n(np.sin(np.radians(row_lat))), 0.0, atol=1e-9)
    for r, p in zip(rows(pl), pl, strict=True):
        assert np.all(lat[r] == lat[r][0])
        np.testing.assert_allclose(lon[r], 360.0 * np.arange(p) / p)


def test_messages_are_the_expected_grib2(archive: dict[np.datetime64, Path]) -> None:
    pl, lat, lon = octahedral_grid(32)
    assert pl.sum() == 5248
    for date, path in archive.items():
        assert path == demo_path(path.parent, date)
        messages = read(path)
        assert tuple(messages) == DEMO_VARIABLES
        expected_levels = {
            "2t": ("heightAboveGround", 2), "10u": ("heightAboveGround", 10), "10v": ("heightAboveGround", 10),
            "msl": ("meanSea", 0), "z_500": ("isobaricInhPa", 500), "z_850": ("isobaricInhPa", 850),
            "t_500": ("isobaricInhPa", 500), "t_850": ("isobaricInhPa", 850), "tp": ("surface", 0),
        }  # fmt: skip
        valid = np.datetime_as_string(date, unit="m")
        start = np.datetime_as_string(date - H6, unit="m")
        for name, m in messages.items():
            assert (m["typeOfLevel"], m["level"]) == expected_levels[name], name
            assert m["edition"] == 2
            assert (m["gridType"], m["N"], m["isOctahedral"]) == ("reduced_gg", 32, 1)
            assert m["numberOfDataPoints"] == m["values"].size == pl.sum()
            np.testing.assert_array_equal(m["pl"], pl)
            np.testing.assert_allclose(m["latitudes"], lat, atol=1e-6)
            np.testing.assert_allclose(m["longitudes"], lon, atol=1e-6)
            assert _stamp(m["validityDate"], m["validityTime"]) == valid, name
            if name == "tp":
                assert (m["stepType"], m["stepRange"]) == ("accum", "0-6")
                assert _stamp(m["dataDate"], m["dataTime"]) == start
            else:
                assert (m["stepType"], m["stepRange"]) == ("instant", "0")
                assert _stamp(m["dataDate"], m["dataTime"]) == valid


def _stamp(date: int, time: int) -> str:
    d, t = f"{date:08d}", f"{time:04d}"
    return f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:]}"


def test_reruns_and_subsets_write_the_same_bytes(archive: dict[np.datetime64, Path], tmp_path: Path) -> None:
    dates = np.array(list(archive))
    again = write_demo_archive(tmp_path / "again", dates)
    subset = write_demo_archive(tmp_path / "subset", dates[[3, 1]])  # other order, other neighbours
    for date, path in zip(dates, again, strict=True):
        assert path.read_bytes() == archive[date].read_bytes()
    for date, path in zip(dates[[3, 1]], subset, strict=True):
        assert path.read_bytes() == archive[date].read_bytes()
    assert sorted(p.name for p in (tmp_path / "subset").iterdir()) == sorted(p.name for p in subset), "no .tmp left"
    other_seed = write_demo_archive(tmp_path / "seed1", dates[:1], seed=1)[0]
    assert other_seed.read_bytes() != archive[dates[0]].read_bytes()


def test_rejects_bad_grid_and_dates_before_writing(tmp_path: Path) -> None:
    with pytest.raises(WxpipeError, match="grid"):
        write_demo_archive(tmp_path / "x", JANUARY[:1], grid="N320")
    bad = np.array(["2021-01-01T00", "2021-01-01T00:30"], dtype="datetime64[s]")
    with pytest.raises(WxpipeError, match="on the hour"):
        write_demo_archive(tmp_path / "y", bad)
    assert not (tmp_path / "y").exists()


def test_o48_has_its_own_point_count(tmp_path: Path) -> None:
    pl, lat, _ = octahedral_grid(48)
    (path,) = write_demo_archive(tmp_path, JANUARY[:1], grid="O48")
    m = read(path)["2t"]
    assert (m["N"], m["numberOfDataPoints"]) == (48, pl.sum())
    np.testing.assert_allclose(m["latitudes"], lat, atol=1e-6)


def test_values_are_physical(archive: dict[np.datetime64, Path]) -> None:
    ranges = {
        "2t": (200.0, 330.0), "10u": (-40.0, 40.0), "10v": (-40.0, 40.0), "msl": (94_000.0, 106_000.0),
        "z_500": (4.5e4, 6.0e4), "z_850": (0.9e4, 1.8e4), "t_500": (200.0, 280.0), "t_850": (220.0, 305.0),
        "tp": (0.0, 0.1),
    }  # fmt: skip
    for date in archive:
        f = fields(archive, date)
        for name, (lo, hi) in ranges.items():
            assert lo <= f[name].min() and f[name].max() <= hi, (name, f[name].min(), f[name].max())
        assert np.all(np.isfinite(np.stack(list(f.values()))))
        assert f["tp"].min() >= 0.0
        assert 0.0 < np.mean(f["tp"] > 0) < 1.0, "rain somewhere, dry elsewhere"
        assert np.all(f["t_500"] < f["t_850"]) and np.all(f["z_500"] > f["z_850"])  # lapse rate, hydrostatics


def test_warm_tropics_cold_poles(archive: dict[np.datetime64, Path]) -> None:
    _, lat, _ = octahedral_grid(32)
    t2 = fields(archive, JANUARY[0])["2t"]
    tropics, poles = t2[np.abs(lat) < 15].mean(), t2[np.abs(lat) > 70].mean()
    assert tropics > poles + 20.0


def test_consecutive_dates_are_correlated_but_not_equal(archive: dict[np.datetime64, Path]) -> None:
    for a, b in itertools.pairwise(JANUARY):
        fa, fb = fields(archive, a), fields(archive, b)
        for name in ("2t", "msl", "z_500", "10u"):
            corr = np.corrcoef(fa[name], fb[name])[0, 1]
            assert 0.9 < corr < 1.0, (name, a, corr)


def test_waves_travel_east(archive: dict[np.datetime64, Path]) -> None:
    """The msl pattern of a mid-latitude row six hours on is the same waves shifted east by a few degrees."""
    pl, lat, _ = octahedral_grid(32)
    for hemisphere in (1, -1):
        row = rows(pl)[int(np.argmin(np.abs(np.array([lat[r][0] for r in rows(pl)]) - 47.0 * hemisphere)))]
        for a, b in itertools.pairwise(JANUARY):
            before = np.fft.rfft(fields(archive, a)["msl"][row])
            after = np.fft.rfft(fields(archive, b)["msl"][row])
            for k in range(3, 7):
                shift = -np.angle(after[k] / before[k]) / k  # radians of longitude, east positive
                assert 0.2 < np.degrees(shift) < 10.0, (hemisphere, a, k, np.degrees(shift))


def test_diurnal_cycle_follows_local_solar_time(archive: dict[np.datetime64, Path]) -> None:
    """Twelve hours on, places that were in the afternoon have cooled and those before dawn have warmed."""
    _, lat, lon = octahedral_grid(32)
    a, b = JANUARY[0], JANUARY[2]  # 00 and 12 UTC
    change = fields(archive, b)["2t"] - fields(archive, a)["2t"]
    utc = (a - a.astype("datetime64[D]")) / np.timedelta64(1, "h")
    local = np.mod(utc + lon / 15.0, 24.0)
    tropics = np.abs(lat) < 30
    afternoon = tropics & (local > 12) & (local < 18)
    night = tropics & (local > 0) & (local < 6)
    assert change[afternoon].mean() < -2.0 < 2.0 < change[night].mean()


def test_seasons_swap_between_hemispheres(archive: dict[np.datetime64, Path]) -> None:
    _, lat, _ = octahedral_grid(32)
    january, july = fields(archive, JANUARY[0])["2t"], fields(archive, JULY[0])["2t"]
    north, south = (lat > 40) & (lat < 70), (lat < -40) & (lat > -70)
    assert july[north].mean() > january[north].mean() + 5.0
    assert january[south].mean() > july[south].mean() + 5.0


def test_winds_blow_along_isobars(archive: dict[np.datetime64, Path]) -> None:
    """Geostrophy: v follows the east-west pressure gradient, with the sign of the Coriolis parameter."""
    pl, lat, _ = octahedral_grid(32)
    f = fields(archive, JANUARY[0])
    for hemisphere in (1, -1):
        dpdx, v = [], []
        for r in rows(pl):
            if 35 < hemisphere * lat[r][0] < 65:
                msl = f["msl"][r]
                dpdx.append(np.roll(msl, -1) - np.roll(msl, 1))
                v.append(f["10v"][r])
        corr = np.corrcoef(np.concatenate(dpdx), np.concatenate(v))[0, 1]
        assert hemisphere * corr > 0.8, (hemisphere, corr)


def test_rain_comes_with_the_travelling_lows(archive: dict[np.datetime64, Path]) -> None:
    _, lat, _ = octahedral_grid(32)
    f = fields(archive, JANUARY[0])
    midlat = (np.abs(lat) > 35) & (np.abs(lat) < 65)
    wet = midlat & (f["tp"] > 0)
    dry = midlat & (f["tp"] == 0)
    assert f["msl"][wet].mean() < f["msl"][dry].mean() - 300.0
