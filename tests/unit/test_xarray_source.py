"""netCDF and Zarr written with xarray, read back through XarraySource: values, names, members, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from wxpipe.errors import WxpipeError
from wxpipe.recipe import NetcdfSource, XarrayZarrSource
from wxpipe.sources.xarray_source import XarraySource

TIMES = np.array(["2020-01-01T00", "2020-01-01T06", "2020-01-01T12"], dtype="datetime64[ns]")
LAT = np.array([-45.0, 0.0, 45.0])  # south to north: must come out north to south, as GRIB does
LON = np.array([0.0, 90.0, 180.0, 270.0])
LEVELS = np.array([500, 850])


def _t(time: int, level: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A field whose every value says where it came from."""
    return 1000.0 * time + level + lat[:, None] * 10 + lon[None, :] / 10


def _regular(path: Path) -> Path:
    """One netCDF-3 file with three times, a surface and a pressure-level variable."""
    t = np.stack([np.stack([_t(i, lev, LAT, LON) for lev in LEVELS]) for i in range(len(TIMES))])
    ds = xr.Dataset(
        {
            "t": (("time", "level", "latitude", "longitude"), t.astype(np.float32)),
            "2t": (("time", "latitude", "longitude"), t[:, 0].astype(np.float32) + 0.5),
        },
        coords={"time": TIMES, "level": LEVELS, "latitude": LAT, "longitude": LON},
    )
    ds.to_netcdf(path)
    return path


def _north_to_south(field: np.ndarray) -> np.ndarray:
    return field[::-1].ravel()


def test_netcdf_many_times_levels_and_north_to_south(tmp_path: Path) -> None:
    path = _regular(tmp_path / "era.nc")
    src = XarraySource(NetcdfSource(path=str(path), param=["t"], levelist=[850, 500]))
    assert src.variables() == ["t_850", "t_500"]
    fields = src.read(np.datetime64("2020-01-01T06:00"))
    assert list(fields) == ["t_850", "t_500"]
    for lev in (850, 500):
        assert fields[f"t_{lev}"].shape == (1, 12)
        assert fields[f"t_{lev}"].dtype == np.float64
        np.testing.assert_allclose(fields[f"t_{lev}"][0], _north_to_south(_t(1, lev, LAT, LON)), rtol=1e-6)
    lats, lons, shape, resolution = src.grid(np.datetime64("2020-01-01T06:00"))
    assert shape == [3, 4] and resolution == "90"
    np.testing.assert_array_equal(lats, np.repeat([45.0, 0.0, -45.0], 4))
    np.testing.assert_array_equal(lons, np.tile(LON, 3))
    assert src.files(np.datetime64("2020-01-01T06:00")) == [path]


def test_variable_naming_and_surface_variables(tmp_path: Path) -> None:
    path = _regular(tmp_path / "era.nc")
    src = XarraySource(NetcdfSource(path=str(path), param=["t"], levelist=[500]), naming="{levelist}{param}")
    assert list(src.read(np.datetime64("2020-01-01T00:00"))) == ["500t"]
    sfc = XarraySource(NetcdfSource(path=str(path), param="2t"))
    got = sfc.read(np.datetime64("2020-01-01T12:00"))["2t"][0]
    np.testing.assert_allclose(got, _north_to_south(_t(2, 500, LAT, LON)) + 0.5, rtol=1e-6)


def test_one_file_per_date_without_a_time_coordinate(tmp_path: Path) -> None:
    for i, d in enumerate(["2020010100", "2020010106"]):
        xr.Dataset(
            {"msl": (("lat", "lon"), _t(i, 0, LAT[::-1], LON))},  # already north to south
            coords={"lat": LAT[::-1], "lon": LON},
        ).to_netcdf(tmp_path / f"msl_{d}.nc")
    src = XarraySource(NetcdfSource(path=str(tmp_path / "msl_{date:strftime(%Y%m%d%H)}.nc"), param=["msl"]))
    date = np.datetime64("2020-01-01T06:00")
    assert src.files(date) == [tmp_path / "msl_2020010106.nc"]
    np.testing.assert_allclose(src.read(date)["msl"][0], _t(1, 0, LAT[::-1], LON).ravel())
    with pytest.raises(WxpipeError, match=r"msl_2020010112\.nc: file does not exist"):
        src.read(np.datetime64("2020-01-01T12:00"))


def test_globbed_files_split_by_variable(tmp_path: Path) -> None:
    for name in ("u", "v"):
        xr.Dataset(
            {name: (("time", "lat", "lon"), np.full((1, 3, 4), 1.0 if name == "u" else 2.0))},
            coords={"time": TIMES[:1], "lat": LAT, "lon": LON},
        ).to_netcdf(tmp_path / f"{name}_20200101.nc")
    src = XarraySource(NetcdfSource(path=str(tmp_path / "*_{date:strftime(%Y%m%d)}.nc"), param=["v", "u"]))
    fields = src.read(np.datetime64("2020-01-01T00:00"))
    assert fields["u"].max() == 1.0 and fields["v"].max() == 2.0
    assert [p.name for p in src.files(np.datetime64("2020-01-01T00:00"))] == ["u_20200101.nc", "v_20200101.nc"]


def _ensemble_zarr(path: Path) -> Path:
    """An unstructured grid (``values``) with members, pressure levels in Pa, and ``valid_time``."""
    n = 5
    lat, lon = np.linspace(80, -80, n), np.linspace(0, 350, n)
    data = np.array(
        [
            [[[100.0 * m + 10.0 * k + t + j / 10 for j in range(n)] for k in range(2)] for m in range(4)]
            for t in range(3)
        ]
    )
    xr.Dataset(
        {"q": (("valid_time", "number", "plev", "values"), data)},
        coords={
            "valid_time": TIMES,
            "number": [0, 1, 2, 3],
            "plev": ("plev", [50000.0, 85000.0], {"units": "Pa"}),
            "latitude": ("values", lat),
            "longitude": ("values", lon),
        },
    ).to_zarr(path, zarr_format=2, consolidated=True)
    return path


def test_zarr_ensembles_levels_in_pa_and_unstructured_grid(tmp_path: Path) -> None:
    store = _ensemble_zarr(tmp_path / "ens.zarr")
    src = XarraySource(XarrayZarrSource(url=str(store), param=["q"], levelist=[850], number=[3, 1]))
    got = src.read(np.datetime64("2020-01-01T12:00"))["q_850"]
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got[:, 0], [300 + 10 + 2, 100 + 10 + 2])
    np.testing.assert_allclose(got[0], 312 + np.arange(5) / 10)
    every = XarraySource(XarrayZarrSource(url=str(store), param=["q"], levelist=[500]))
    assert every.read(np.datetime64("2020-01-01T00:00"))["q_500"].shape == (4, 5)
    lats, _, shape, _ = every.grid(np.datetime64("2020-01-01T00:00"))
    assert shape == [5] and lats[0] == 80.0


def test_remote_urls_are_not_files() -> None:
    src = XarraySource(XarrayZarrSource(url="s3://bucket/era5.zarr", param=["t"]))
    assert src.files(np.datetime64("2020-01-01T00:00")) == []


def test_errors_name_the_file_variable_and_date(tmp_path: Path) -> None:
    path = _regular(tmp_path / "era.nc")
    date = np.datetime64("2020-01-01T06:00")
    cases: list[tuple[NetcdfSource, str]] = [
        (
            NetcdfSource(path=str(path), param=["tp"]),
            rf"{path}: no variable 'tp' for 2020-01-01T06:00:00 \(variables: 2t, t\)",
        ),
        (
            NetcdfSource(path=str(path), param=["t"], levelist=[700]),
            rf"{path}: t at 2020-01-01T06:00:00: level 700 not in",
        ),
        (
            NetcdfSource(path=str(path), param=["t"]),
            r"t at 2020-01-01T06:00:00: variable has levels \(500, 850\): give a levelist",
        ),
        (
            NetcdfSource(path=str(path), param=["2t"], levelist=[500]),
            r"2t at .*: levelist given but the variable has no level",
        ),
        (
            NetcdfSource(path=str(path), param=["2t"], number=[1]),
            r"2t at .*: number \[1\] given but .* no member dimension",
        ),
    ]
    for spec, message in cases:
        with pytest.raises(WxpipeError, match=message):
            XarraySource(spec).read(date)
    with pytest.raises(
        WxpipeError, match=rf"{path}: t at 2020-01-02T00:00:00: date not in the file \(times: 2020-01-01T00"
    ):
        XarraySource(NetcdfSource(path=str(path), param=["t"], levelist=[500])).read(np.datetime64("2020-01-02T00:00"))


def test_missing_members_and_unknown_dimensions(tmp_path: Path) -> None:
    store = _ensemble_zarr(tmp_path / "ens.zarr")
    with pytest.raises(WxpipeError, match=r"q at 2020-01-01T00:00:00: ensemble member\(s\) \[7\] not in the file"):
        XarraySource(XarrayZarrSource(url=str(store), param=["q"], levelist=[500], number=[7])).read(
            np.datetime64("2020-01-01T00:00")
        )
    odd = tmp_path / "odd.nc"
    xr.Dataset(
        {"x": (("time", "step", "lat", "lon"), np.zeros((1, 2, 3, 4)))},
        coords={"time": TIMES[:1], "lat": LAT, "lon": LON},
    ).to_netcdf(odd)
    with pytest.raises(WxpipeError, match=r"x at .*: unexpected dimension\(s\) step"):
        XarraySource(NetcdfSource(path=str(odd), param=["x"])).read(np.datetime64("2020-01-01T00:00"))
    zonal = tmp_path / "zonal.nc"
    xr.Dataset(
        {"u": (("time", "lat"), np.zeros((1, 3)))}, coords={"time": TIMES[:1], "lat": LAT, "lon": LON}
    ).to_netcdf(zonal)
    with pytest.raises(WxpipeError, match=r"u at .*: the variable lacks the grid's dimension\(s\) lon"):
        XarraySource(NetcdfSource(path=str(zonal), param=["u"])).read(np.datetime64("2020-01-01T00:00"))


def test_not_a_netcdf_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(WxpipeError, match=rf"{bad}: cannot open with xarray"):
        XarraySource(NetcdfSource(path=str(bad), param=["t"])).read(np.datetime64("2020-01-01T00:00"))
