"""``wxpipe inspect`` (know your data) and ``wxpipe recipe validate``'s look into the first date's files.

The archive is real GRIB2 written with ecCodes, with planted gaps (files absent) and planted missing
values (bitmap points); the survey's counts are checked against cfgrib/xarray reading the same files,
and the access patterns of a dataset against the chunks zarr-python actually fetches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cfgrib
import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, WrapperStore

from wxpipe.cli import main
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.rechunk import Layout, rechunk
from wxpipe.recipe import load_recipe
from wxpipe.summary import access, summary
from wxpipe.survey import KM_PER_DEGREE, archive_dates, check_first_date, grib_files, scan_grib
from wxpipe.timeutil import iso

DATES = np.arange(np.datetime64("2021-03-01T00:00:00"), np.datetime64("2021-03-03T00:00:00"), np.timedelta64(6, "h"))
GAP, DECLARED = 3, 5  # no file for either date; the recipes declare only DECLARED missing
MISSING = 9999.0
FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("regular_ll_sfc_grib2", {"shortName": "2t", "typeOfLevel": "heightAboveGround", "level": 2}),
    ("regular_ll_sfc_grib2", {"shortName": "msl", "typeOfLevel": "meanSea"}),
    ("regular_ll_pl_grib2", {"shortName": "t", "level": 500}),
    ("regular_ll_pl_grib2", {"shortName": "t", "level": 850}),
]


def _stamp(d: np.datetime64) -> str:
    return str(d)[:13].replace("-", "").replace("T", "")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, grib_message: Callable[..., bytes]) -> Path:
    """One file per date but GAP and DECLARED; some fields with a random share of missing points."""
    out = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(11)
    for i, d in enumerate(DATES):
        if i in (GAP, DECLARED):
            continue
        blob = b""
        for sample, keys in FIELDS:
            n = 496  # the samples' 16 x 31 grid
            holes = rng.random(n) < rng.choice([0.0, 0.0, 0.02, 0.1])
            values = np.where(holes, MISSING, 250.0 + 30.0 * rng.random(n))
            bitmap = {"bitmapPresent": 1, "missingValue": MISSING} if holes.any() else {}
            blob += grib_message(sample, d, values, **keys, **bitmap)
        (out / f"{_stamp(d)}.grib2").write_bytes(blob)
    return out


Counts = tuple[dict[str, tuple[int, int, int, set[np.datetime64]]], int, tuple[int, ...]]


def _name(short: str, level_type: str, level: float) -> str:
    return f"{short}_{int(level)}" if level_type == "isobaricInhPa" else short


def _cfgrib(files: list[Path]) -> Counts:
    """Per variable (fields, NaN points, fields with NaNs, valid dates) as cfgrib reads ``files``; points; shape."""
    out: dict[str, tuple[int, int, int, set[np.datetime64]]] = {}
    shape: tuple[int, ...] = ()
    for path in files:
        for ds in cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""}):
            valid = np.datetime64(ds["valid_time"].values, "s")
            shape = (ds.sizes["latitude"], ds.sizes["longitude"])
            for da in ds.data_vars.values():
                short, kind = da.attrs["GRIB_shortName"], da.attrs["GRIB_typeOfLevel"]
                slices = [da.sel({kind: lev}) for lev in da[kind].values] if kind in da.dims else [da]
                for field in slices:
                    level = float(field[kind]) if kind in field.coords else 0.0
                    name = _name(short, kind, level)
                    fields, nans, holed, dates = out.get(name, (0, 0, 0, set()))
                    n = int(field.isnull().sum())
                    out[name] = (fields + 1, nans + n, holed + (n > 0), dates | {valid})
    return out, int(np.prod(shape)), shape


@pytest.fixture(scope="module")
def by_cfgrib(archive: Path) -> Counts:
    return _cfgrib(sorted(archive.glob("*.grib2")))


def test_archive_counts_match_cfgrib(archive: Path, by_cfgrib: Counts) -> None:
    files = grib_files(str(archive))
    assert files == sorted(archive.glob("*.grib2")) and len(files) == len(DATES) - 2
    scan = scan_grib(files)
    expected, points, shape = by_cfgrib
    assert sum(n for n, *_ in expected.values()) == scan.messages
    assert sum(nans for _, nans, *_ in expected.values()) > 0  # the plant took
    got = {v.name: (v.fields, v.missing, v.fields_with_missing, v.dates) for v in scan.variables.values()}
    assert got == expected
    assert scan.size == sum(f.stat().st_size for f in files)
    assert scan.grid is not None and scan.grid.points == points and scan.grid.shape == shape
    lat = xr.open_dataset(files[0], engine="cfgrib", backend_kwargs={"indexpath": ""})["latitude"].values
    assert scan.grid.spacing_km == pytest.approx(abs(lat[1] - lat[0]) * KM_PER_DEGREE)

    # missing dates: the gaps of cfgrib's valid times at their step
    found = sorted(set().union(*(d for *_, d in expected.values())))
    step = min(np.diff(found))
    gaps = set(np.arange(found[0], found[-1] + step, step).tolist()) - {d.item() for d in found}
    dates = archive_dates(scan)
    assert {d.item() for d in dates.missing} == gaps == {DATES[GAP].item(), DATES[DECLARED].item()}
    assert not dates.incomplete and not dates.irregular


def _rows(text: str) -> dict[str, list[str]]:
    """The variables table of ``wxpipe inspect`` output, by variable name."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("variables")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_inspect_prints_what_cfgrib_reads(archive: Path, by_cfgrib: Counts, capsys: pytest.CaptureFixture[str]) -> None:
    expected, points, _ = by_cfgrib
    assert main(["inspect", str(archive), "--batch-size", "3"]) == 0
    text = capsys.readouterr().out
    assert f"archive     {archive}: {len(DATES) - 2} files, {4 * (len(DATES) - 2)} messages" in text
    assert f"missing     2: {iso(DATES[GAP])} (no field), {iso(DATES[DECLARED])} (no field)" in text
    rows = _rows(text)
    assert set(rows) == set(expected)
    for name, (fields, nans, holed, dates) in expected.items():
        # variable, level type, level, step, fields, dates, members, missing points, fields with missing, units
        assert rows[name][4:9] == [str(fields), str(len(dates)), "1", str(nans), str(holed)]
    one_date = len(expected) * points * 4
    assert f"x 4 bytes = {one_date / 1000:.1f} kB" in text
    assert f"one batch   3 samples (--batch-size) = {3 * 2 * one_date / 1000:.1f} kB" in text

    # a glob and a single file are archives too
    assert main(["inspect", str(archive / "*00.grib2")]) == 0
    n = len(list(archive.glob("*00.grib2")))
    assert f": {n} files, {4 * n} messages" in capsys.readouterr().out
    one = sorted(archive.glob("*.grib2"))[0]
    assert main(["inspect", str(one)]) == 0
    assert ": 1 file, 4 messages" in capsys.readouterr().out


def test_inspect_refuses_what_is_not_grib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.grib2"
    junk.write_bytes(b"not a field")
    assert main(["inspect", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{junk}: not a GRIB file" in err and "Traceback" not in err
    assert main(["inspect", str(tmp_path / "nothing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["inspect", str(tmp_path / "empty")]) == 1
    assert "no GRIB files in the folder" in capsys.readouterr().err


def _recipe(tmp_path: Path, archive: Path, join: list[dict[str, Any]] | None = None, **dates: Any) -> Path:
    pattern = str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    recipe = {
        "dates": {
            "start": str(DATES[0]),
            "end": str(DATES[-1]),
            "frequency": "6h",
            "missing": [str(DATES[DECLARED])],
            **dates,
        },
        "input": {
            "join": join
            or [
                {"grib": {"path": pattern, "param": ["2t", "msl"]}},
                {"grib": {"path": pattern, "param": ["t"], "levtype": "pl", "levelist": [500, 850]}},
            ]
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_inspect_recipe_reports_absent_files_not_declared(
    tmp_path: Path, archive: Path, by_cfgrib: Counts, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path, archive)
    assert main(["inspect", str(recipe)]) == 0
    text = capsys.readouterr().out
    gap = archive / f"{_stamp(DATES[GAP])}.grib2"
    assert f"missing     1: {iso(DATES[GAP])} (file {gap} absent)" in text
    assert f"declared    1 missing in the recipe: {iso(DATES[DECLARED])}" in text
    _, points, _ = by_cfgrib
    assert f"4 variables x 1 member x {points} points x 4 bytes" in text
    assert f"  all dates   {len(DATES)} dates" in text


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"grib": {"param": ["2tt", "msl"]}}, r"input\.join\.0\.grib: param 2tt not in \S+ \(it holds: 2t, msl, t\)"),
        (
            {"grib": {"param": ["t"], "levtype": "pl", "levelist": [500, 925]}},
            r"input\.join\.0\.grib: param t level 925 not in \S+ \(it holds levels: 500, 850\)",
        ),
        (
            {"grib": {"param": ["2t"], "number": [0, 3]}},
            r"input\.join\.0\.grib: param 2t member 3 not in \S+ \(it holds members: 0\)",
        ),
        (
            {"grib": {"param": ["t"]}},
            r"input\.join\.0\.grib: param t is not a surface field in \S+ \(it is on isobaricInhPa\)",
        ),
        ({"accumulations": {"param": ["2t"]}}, r"input\.join\.0\.accumulations: param 2t in \S+ is not accumulated"),
        (
            {"grib": {"param": ["2t"], "path": "{archive}/2021030106.grib2"}},
            r"input\.join\.0\.grib: param 2t: no field valid at 2021-03-01T00:00:00 in \S+ \(valid: 2021-03-01T06",
        ),
    ],
)
def test_validate_refuses_what_the_first_date_lacks(
    tmp_path: Path, archive: Path, source: dict[str, dict[str, Any]], message: str
) -> None:
    (kind, spec), pattern = next(iter(source.items())), str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    spec = {"path": pattern, **spec}
    spec["path"] = spec["path"].replace("{archive}", str(archive))
    path = _recipe(tmp_path, archive, [{kind: spec}])
    with pytest.raises(WxpipeError, match=f"^recipe {path}: {message}") as err:
        check_first_date(load_recipe(path), path)
    assert f" {archive}/20210301" in str(err.value)  # the file is named


def test_validate_cli(tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _recipe(tmp_path, archive)
    assert main(["recipe", "validate", str(good)]) == 0
    assert "valid; 8 dates, 4 variables: 2t msl t_500 t_850" in capsys.readouterr().out

    pattern = str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    bad = _recipe(tmp_path, archive, [{"grib": {"path": pattern, "param": ["2tt", "msl", "q"]}}])
    assert main(["recipe", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"recipe {bad}: input.join.0.grib: param 2tt not in" in err
    assert f"recipe {bad}: input.join.0.grib: param q not in" in err and "Traceback" not in err

    # the first date's file is not there (yet): valid, with a note
    later = _recipe(tmp_path, archive, start=str(DATES[GAP]))
    assert main(["recipe", "validate", str(later)]) == 0
    assert "input.join.0.grib: not checked:" in capsys.readouterr().out


def test_validate_reads_netcdf_sources_through_xarray(tmp_path: Path, archive: Path) -> None:
    ds = xr.Dataset(
        {"sst": (("time", "latitude", "longitude"), np.zeros((len(DATES), 31, 16), np.float32))},
        coords={"time": DATES.astype("datetime64[ns]"), "latitude": np.arange(31.0), "longitude": np.arange(16.0)},
    )
    ds.to_netcdf(tmp_path / "sst.nc")
    pattern = str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    join = [
        {"grib": {"path": pattern, "param": ["2t"]}},
        {"netcdf": {"path": str(tmp_path / "sst.nc"), "param": ["sstt"]}},
    ]
    path = _recipe(tmp_path, archive, join)
    with pytest.raises(WxpipeError, match=r"input\.join\.1\.netcdf: \S+sst\.nc: no variable 'sstt'.*variables: sst"):
        check_first_date(load_recipe(path), path)


class _Counting(WrapperStore[LocalStore]):
    """The keys zarr-python fetches: what a read really touches."""

    def __init__(self, store: LocalStore) -> None:
        super().__init__(store)
        self.keys: list[str] = []

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        self.keys.append(key)
        return await super().get(key, prototype, byte_range)


def _chunks_read(path: Path, selection: tuple[Any, ...]) -> int:
    store = _Counting(LocalStore(path, read_only=True))
    data = zarr.open_array(store, path="data", mode="r")
    store.keys.clear()
    data[selection]
    return len(set(store.keys))


def test_access_patterns_match_the_chunks_zarr_reads(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=16, missing=())  # chunks: one date
    layout = rechunk(src.path, tmp_path / "series.zarr", Layout((16, 64)), max_mem=10**8)
    n = src.data.shape[0]
    verdicts = {}
    for ds in (src, layout):
        one_date = access(ds.data, "date", (1, *ds.data.shape[1:]))
        series = access(ds.data, "series", (n, *ds.data.shape[1:3], 1))
        assert one_date.chunks == _chunks_read(ds.path, (0,))
        assert series.chunks == _chunks_read(ds.path, (slice(None), slice(None), slice(None), 0))
        assert one_date.decoded == one_date.chunks * np.prod(ds.data.chunks) * 4
        verdicts[ds.path.name] = (one_date.served_well, series.served_well)
        text = summary(ds.path)
        date_line = next(line for line in text.splitlines() if line.startswith("  one date (all"))
        assert ("serves it well" in date_line) == one_date.served_well
    assert verdicts == {"src.zarr": (True, False), "series.zarr": (False, True)}
