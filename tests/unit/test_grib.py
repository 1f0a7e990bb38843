"""GRIB sources: GRIB 1 and 2, regular lat-lon, ensemble members, accumulations, globs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from wxpipe import create
from wxpipe.errors import WxpipeError

DATES = np.arange(np.datetime64("2021-06-01T00:00:00"), np.datetime64("2021-06-02T00:00:00"), np.timedelta64(6, "h"))


def _name(d: np.datetime64) -> str:
    return str(d)[:13].replace("-", "").replace("T", "")


def _values(seed: int) -> np.ndarray:
    return 280.0 + np.random.default_rng(seed).standard_normal(16 * 31).round(2)


def _recipe(tmp_path: Path, join: list[dict[str, Any]]) -> Path:
    recipe = {
        "dates": {"start": str(DATES[0]), "end": str(DATES[-1]), "frequency": "6h"},
        "input": {"join": join},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("edition", [1, 2])
def test_regular_latlon_surface_and_levels(tmp_path: Path, edition: int, grib_message: Callable[..., bytes]) -> None:
    expected: dict[tuple[int, str], np.ndarray] = {}
    for i, d in enumerate(DATES):
        blob = b""
        for j, (name, sample, keys) in enumerate(
            [
                ("2t", f"regular_ll_sfc_grib{edition}", {"shortName": "2t"}),
                ("t_500", f"regular_ll_pl_grib{edition}", {"shortName": "t", "level": 500}),
                ("t_850", f"regular_ll_pl_grib{edition}", {"shortName": "t", "level": 850}),
            ]
        ):
            expected[i, name] = _values(10 * i + j)
            blob += grib_message(sample, d, expected[i, name], **keys)
        (tmp_path / f"{_name(d)}-an.grib").write_bytes(blob)  # found through the glob below
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}-*.grib")
    recipe = _recipe(
        tmp_path,
        [
            {"grib": {"path": pattern, "param": ["2t"]}},
            {"grib": {"path": pattern, "param": ["t"], "levtype": "pl", "levelist": [500, 850]}},
        ],
    )
    ds = create.create(recipe, tmp_path / "ds.zarr")
    assert ds.variables == ["2t", "t_500", "t_850"]
    assert ds.attrs["field_shape"] == [31, 16] and ds.attrs["resolution"] == 2.0
    assert ds.latitudes[0] == 60.0 and ds.latitudes[-1] == 0.0  # north to south, as ecCodes scans
    for i in range(len(DATES)):
        for k, name in enumerate(ds.variables):
            np.testing.assert_allclose(ds.data[i, k, 0], expected[i, name], atol=0.01)


def test_ensemble_members_make_the_ensembles_axis(tmp_path: Path, grib_message: Callable[..., bytes]) -> None:
    for i, d in enumerate(DATES):
        blob = b"".join(
            grib_message(
                "regular_ll_sfc_grib2",
                d,
                _values(100 * i + n),
                productDefinitionTemplateNumber=1,
                number=n,
                numberOfForecastsInEnsemble=3,
                shortName="2t",
            )
            for n in (2, 0, 1)
        )
        (tmp_path / f"{_name(d)}.grib2").write_bytes(blob)
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib2")
    ds = create.create(_recipe(tmp_path, [{"grib": {"path": pattern, "param": ["2t"]}}]), tmp_path / "ds.zarr")
    assert ds.data.shape == (len(DATES), 1, 3, 16 * 31)
    for n in range(3):
        np.testing.assert_allclose(ds.data[2, 0, n], _values(100 * 2 + n), atol=0.01)

    only = _recipe(tmp_path, [{"grib": {"path": pattern, "param": ["2t"], "number": [1, 5]}}])
    with pytest.raises(WxpipeError, match=r"2t has no ensemble member\(s\) \[5\]"):
        create.create(only, tmp_path / "ds2.zarr")


def test_accumulation_from_two_steps_of_one_forecast(tmp_path: Path, grib_message: Callable[..., bytes]) -> None:
    """tp over 6 h ending at the date = acc(0-12) - acc(0-6) of the run 12 h earlier."""
    for d in DATES:
        run = d - np.timedelta64(12, "h")
        a6, a12 = np.abs(_values(1)) * 1e-5, np.abs(_values(1)) * 1e-5 + np.abs(_values(2)) * 1e-5
        blob = b"".join(
            grib_message("regular_ll_sfc_grib2", run, v, shortName="tp", stepType="accum", startStep=0, endStep=e)
            for v, e in [(a6, 6), (a12, 12)]
        )
        (tmp_path / f"{_name(d)}.grib2").write_bytes(blob)
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib2")
    ds = create.create(
        _recipe(tmp_path, [{"accumulations": {"path": pattern, "param": ["tp"], "accumulation_period": 6}}]),
        tmp_path / "ds.zarr",
    )
    np.testing.assert_allclose(ds.data[1, 0, 0], np.abs(_values(2)) * 1e-5, rtol=1e-3, atol=1e-7)
    meta = ds.attrs["variables_metadata"]["tp"]
    assert meta["process"] == "accumulation" and meta["period"] == ["0h", "6h"] and meta["mars"]["param"] == "tp"


def test_field_missing_for_one_date_is_named(tmp_path: Path, grib_message: Callable[..., bytes]) -> None:
    for i, d in enumerate(DATES):
        keys = {"shortName": "2t"} if i != 2 else {"shortName": "msl"}
        (tmp_path / f"{_name(d)}.grib2").write_bytes(grib_message("regular_ll_sfc_grib2", d, _values(i), **keys))
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib2")
    with pytest.raises(WxpipeError, match=r"date 2021-06-01T12:00:00: variable\(s\) 2t not found in .*2021060112"):
        create.create(_recipe(tmp_path, [{"grib": {"path": pattern, "param": ["2t"]}}]), tmp_path / "ds.zarr")


def test_nans_refused_unless_allowed(tmp_path: Path, grib_message: Callable[..., bytes]) -> None:
    for i, d in enumerate(DATES):
        v = _values(i)
        if i == 3:
            v[5] = 9999.0  # encoded as missing in the bitmap, decoded as NaN
        (tmp_path / f"{_name(d)}.grib2").write_bytes(
            grib_message("regular_ll_sfc_grib2", d, v, shortName="2t", bitmapPresent=int(i == 3), missingValue=9999.0)
        )
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib2")
    with pytest.raises(WxpipeError, match=r"date 2021-06-01T18:00:00: NaN values in 2t"):
        create.create(_recipe(tmp_path, [{"grib": {"path": pattern, "param": ["2t"]}}]), tmp_path / "ds.zarr")


@pytest.mark.parametrize("edition", [1, 2])
def test_headers_saved_by_init_serve_other_processes(
    tmp_path: Path, edition: int, monkeypatch: pytest.MonkeyPatch, grib_message: Callable[..., bytes]
) -> None:
    """A load job starts from the headers ``init`` resolved (same fingerprint, same keys), and ignores them
    when they come from another ecCodes."""
    from wxpipe.sources import gribfile as grib

    for i, d in enumerate(DATES):
        blob = grib_message(f"regular_ll_sfc_grib{edition}", d, _values(i), shortName="2t")
        blob += grib_message(f"regular_ll_pl_grib{edition}", d, _values(i + 9), shortName="t", level=500)
        (tmp_path / f"{_name(d)}.grib").write_bytes(blob)
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib")
    recipe = _recipe(
        tmp_path,
        [
            {"grib": {"path": pattern, "param": ["2t"]}},
            {"grib": {"path": pattern, "param": ["t"], "levtype": "pl", "levelist": [500]}},
        ],
    )
    monkeypatch.setattr(grib, "_HEADERS", {})
    create.init(recipe, tmp_path / "ds.zarr")
    resolved = dict(grib._HEADERS)
    assert len(resolved) == 2
    saved = tmp_path / "ds.zarr" / create.GRIB_HEADERS
    monkeypatch.setattr(grib, "_HEADERS", {})
    assert grib.load_headers(saved) == 2
    assert resolved == grib._HEADERS
    monkeypatch.setattr(grib, "_HEADERS", {})
    monkeypatch.setattr(grib, "_eccodes_id", lambda: "another ecCodes")
    assert grib.load_headers(saved) == 0 and grib._HEADERS == {}
