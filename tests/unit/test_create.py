"""Dataset creation from real GRIB2 (written by the demo generator, decoded by ecCodes)."""

from __future__ import annotations

from pathlib import Path

import eccodes
import numpy as np
import pytest
import yaml

from wxpipe import create, dataset
from wxpipe.dataset import Part
from wxpipe.errors import WxpipeError
from wxpipe.sources.demo import demo_path, write_demo_archive
from wxpipe.summary import summary
from wxpipe.timeutil import date_range

REPO = Path(__file__).resolve().parents[2]
START, END = np.datetime64("2020-01-01T00:00:00"), np.datetime64("2020-01-02T18:00:00")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grib")
    dates = np.arange(START, END + np.timedelta64(6, "h"), np.timedelta64(6, "h"))
    write_demo_archive(out, dates, grid="O32", seed=3)
    return out


def _recipe(tmp_path: Path, archive: Path, **changes: object) -> Path:
    recipe = yaml.safe_load((REPO / "config/recipes/demo.yaml").read_text())
    recipe["dates"].update(start=str(START), end=str(END), **changes)
    for item in recipe["input"]["join"]:
        src = next(iter(item.values()))
        src["path"] = str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("n_dates,chunk,count", [(40, 1, 2), (41, 4, 3), (7, 2, 5), (3, 5, 2)])
def test_parts_are_disjoint_aligned_and_cover(n_dates: int, chunk: int, count: int) -> None:
    ranges = [Part(i, count).dates(n_dates, chunk) for i in range(1, count + 1)]
    covered = [d for r in ranges for d in r]
    assert covered == list(range(n_dates))
    assert all(r.start % chunk == 0 for r in ranges if len(r))


def test_create_matches_ecccodes(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "ds.zarr"
    ds = create.create(_recipe(tmp_path, archive), store, statistics=False)
    assert ds.variables == sorted(ds.variables) and "z_500" in ds.variables and "tp" in ds.variables
    assert ds.data.shape == (8, 9, 1, 5248)
    assert np.array_equal(ds.dates, date_range(START.item(), END.item(), np.timedelta64(6, "h").item()))
    with open(demo_path(archive, ds.dates[3]), "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            if eccodes.codes_get(h, "shortName") == "t" and eccodes.codes_get(h, "level") == 850:
                expected = eccodes.codes_get_values(h).astype(np.float32)
            eccodes.codes_release(h)
    np.testing.assert_array_equal(ds.data[3, ds.variables.index("t_850"), 0], expected)
    assert ds.attrs["resolution"] == "O32" and ds.attrs["build_complete"] is True
    text = summary(store)
    assert "on disk" in text and "8 dates sampled" in text
    t850 = ds.data[:, ds.variables.index("t_850")]
    row = next(line for line in text.splitlines() if line.strip().startswith("t_850"))
    assert row.split()[1:3] == [f"{t850.min():.5g}", f"{t850.max():.5g}"] and row.split()[-1] == "K"


def test_parts_then_finalise_and_progress(tmp_path: Path, archive: Path) -> None:
    recipe, store = _recipe(tmp_path, archive), tmp_path / "ds.zarr"
    create.init(recipe, store)
    create.load(recipe, store, Part(2, 2))
    assert "UNFINISHED: 4/8 dates loaded" in summary(store)
    assert "parts done  1/2: 2/2" in summary(store, parts=2)
    with pytest.raises(WxpipeError, match="4 dates not loaded: 2020-01-01T00:00:00"):
        dataset.finalise(store)
    create.load(recipe, store, Part(1, 2))
    assert dataset.finalise(store).attrs["build_complete"] is True


def test_missing_file_named_before_writing(tmp_path: Path, archive: Path) -> None:
    grib = tmp_path / "grib"
    grib.mkdir()
    for p in archive.iterdir():
        if "2020010112" not in p.name:
            (grib / p.name).symlink_to(p)
    store = tmp_path / "ds.zarr"
    with pytest.raises(WxpipeError, match=r"date 2020-01-01T12:00:00: input file .*2020010112.grib2 does not exist"):
        create.init(_recipe(tmp_path, grib), store)
    assert not store.exists()
    # declared missing: the slot stays NaN and finalise accepts it
    ds = create.create(_recipe(tmp_path, grib, missing=["2020-01-01T12:00"]), store)
    assert np.isnan(ds.data[2]).all() and not np.isnan(ds.data[3]).any()


def test_corrupt_file_is_named(tmp_path: Path, archive: Path) -> None:
    grib = tmp_path / "grib"
    grib.mkdir()
    for p in archive.iterdir():
        (grib / p.name).write_bytes(p.read_bytes())
    bad = grib / "2020010206.grib2"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(WxpipeError, match=r"2020010206\.grib2"):
        create.create(_recipe(tmp_path, grib), tmp_path / "ds.zarr")


def test_zarr3_shards_and_compressor_keep_the_data(tmp_path: Path, archive: Path) -> None:
    v2 = create.create(_recipe(tmp_path, archive), tmp_path / "v2.zarr")
    recipe = yaml.safe_load(_recipe(tmp_path, archive).read_text())
    recipe["output"].update(zarr_format=3, shards=4, chunking={"dates": 2}, compressor={"name": "zstd", "level": 5})
    path = tmp_path / "v3.yaml"
    path.write_text(yaml.safe_dump(recipe))
    v3 = create.create(path, tmp_path / "v3.zarr")
    assert v3.data.shards == (4, 9, 1, 5248) and v3.data.chunks == (2, 9, 1, 5248)
    np.testing.assert_array_equal(v3.data[:], v2.data[:])
    assert (tmp_path / "v3.zarr/zarr.json").exists()
    chunk_files = [p for p in (tmp_path / "v3.zarr/data").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(chunk_files) == 2  # 8 dates in shards of 4: one file per shard


def test_concat_pipe_rename_and_forcings(tmp_path: Path, archive: Path) -> None:
    grib = str(archive / "{date:strftime(%Y%m%d%H)}.grib2")
    half = str(START + np.timedelta64(18, "h"))
    surface = {"grib": {"path": grib, "param": ["2t", "msl"]}}
    renamed = {"pipe": [{"grib": {"path": grib, "param": ["2t", "msl"]}}, {"rename": {"param": {"msl": "mslp"}}}]}
    forcings = {
        "forcings": {"param": ["cos_latitude", "insolation"], "template": "${input.concat.0.join.0.pipe.0.grib}"}
    }
    recipe = {
        "dates": {"start": str(START), "end": str(END), "frequency": "6h"},
        "input": {
            "concat": [
                {"dates": {"start": str(START), "end": half}, "join": [renamed, forcings]},
                {
                    "dates": {"start": str(np.datetime64(half) + np.timedelta64(6, "h")), "end": str(END)},
                    "join": [
                        {"pipe": [surface, {"rename": {"param": {"msl": "mslp"}}}]},
                        {"forcings": {"param": ["cos_latitude", "insolation"]}},
                    ],
                },
            ]
        },
    }
    path = tmp_path / "concat.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ds = create.create(path, tmp_path / "ds.zarr")
    assert ds.variables == ["2t", "cos_latitude", "insolation", "mslp"]
    assert ds.attrs["constant_fields"] == ["cos_latitude"]
    np.testing.assert_allclose(ds.data[5, 1, 0], np.cos(np.deg2rad(ds.latitudes)), rtol=1e-6)
    insolation = ds.data[:, 2, 0]
    assert insolation.min() == 0.0 and 0.9 < insolation.max() <= 1.0
    with open(demo_path(archive, ds.dates[6]), "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            if eccodes.codes_get(h, "shortName") == "msl":
                expected = eccodes.codes_get_values(h).astype(np.float32)
            eccodes.codes_release(h)
    np.testing.assert_array_equal(ds.data[6, 3, 0], expected)


def test_netcdf_source_end_to_end(tmp_path: Path) -> None:
    import xarray as xr

    times = np.arange(START, END + np.timedelta64(6, "h"), np.timedelta64(6, "h"))
    lat, lon = np.linspace(90, -90, 19), np.arange(0, 360, 20.0)
    rng = np.random.default_rng(0)
    t = rng.standard_normal((len(times), 2, len(lat), len(lon))).astype(np.float32) + 250
    xr.Dataset(
        {"t": (("time", "level", "latitude", "longitude"), t)},
        coords={"time": times, "level": [500, 850], "latitude": lat, "longitude": lon},
    ).to_netcdf(tmp_path / "t.nc")
    recipe = {
        "dates": {"start": str(START), "end": str(END), "frequency": "6h"},
        "input": {"join": [{"netcdf": {"path": str(tmp_path / "t.nc"), "param": ["t"], "levelist": [500, 850]}}]},
    }
    path = tmp_path / "nc.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ds = create.create(path, tmp_path / "ds.zarr")
    assert ds.variables == ["t_500", "t_850"] and ds.attrs["field_shape"] == [19, 18]
    np.testing.assert_array_equal(ds.data[3, 1, 0], t[3, 1].ravel())
    np.testing.assert_array_equal(ds.latitudes[:18], np.full(18, 90.0))


def test_threads_write_the_same_bytes(tmp_path: Path, archive: Path) -> None:
    one = create.create(_recipe(tmp_path, archive), tmp_path / "one.zarr", threads=1)
    three = create.create(_recipe(tmp_path, archive), tmp_path / "three.zarr", threads=3)
    for i in range(len(one.dates)):
        assert (tmp_path / f"one.zarr/data/{i}.0.0.0").read_bytes() == (
            tmp_path / f"three.zarr/data/{i}.0.0.0"
        ).read_bytes()
    assert three.attrs["build_complete"] is True


def test_flags_follow_writes_in_any_order(tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags are flushed in batches over the span written since the last flush: dates flagged by an
    earlier batch stay flagged, dates inside the span but not written stay unflagged."""
    store = tmp_path / "d.zarr"
    create.init(_recipe(tmp_path, archive), store)
    n = len(dataset.open_dataset(store).dates)
    monkeypatch.setattr(dataset.Writer, "FLUSH_CHUNKS", 2)
    writer = dataset.Writer(store)
    block = np.zeros((1, *writer.data.shape[1:]), np.float32)
    order = [5, 1, 0, 3, n - 1]  # flushes after (5, 1), after (0, 3), then at close
    for i in order:
        writer.write(i, block)
    writer.close()
    expected = np.zeros(n, bool)
    expected[order] = True
    assert np.array_equal(dataset.loaded(store), expected)


def test_create_writes_statistics_and_never_replaces_a_complete_store(tmp_path: Path, archive: Path) -> None:
    from wxpipe import statistics

    recipe, store = _recipe(tmp_path, archive), tmp_path / "ds.zarr"
    ds = create.create(recipe, store)
    stats = ds.statistics()  # as `wxpipe statistics` computes them, over the recipe's period
    start, end = statistics.period_of(ds, None, None)
    expected = statistics.compute(ds, start, end, False, {}, None, 1)
    np.testing.assert_array_equal(stats["mean"], expected.moments.mean)
    uuid = ds.uuid
    with pytest.raises(WxpipeError, match="a complete dataset is already there; --overwrite replaces it"):
        create.create(recipe, store)
    assert dataset.open_dataset(store).uuid == uuid
    assert create.create(recipe, store, overwrite=True, statistics=False).uuid != uuid
    assert "mean" not in dataset.open_dataset(store).root  # replaced whole, no statistics of the old one


def test_create_resumes_an_unfinished_build_of_its_recipe_only(tmp_path: Path, archive: Path) -> None:
    recipe, store = _recipe(tmp_path, archive), tmp_path / "ds.zarr"
    create.init(recipe, store)
    create.load(recipe, store, Part(1, 2))
    uuid = dataset.open_dataset(store).uuid
    chunk = store / "data" / "0.0.0.0"
    before = chunk.stat().st_mtime_ns
    (tmp_path / "other").mkdir()
    other = _recipe(tmp_path / "other", archive, missing=["2020-01-02T12:00"])
    with pytest.raises(WxpipeError, match="an unfinished build of another recipe; --overwrite starts it again"):
        create.create(other, store)
    ds = create.create(recipe, store, statistics=False)
    assert ds.uuid == uuid and ds.attrs["build_complete"] is True
    assert chunk.stat().st_mtime_ns == before  # the finished part was kept, not rewritten
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(WxpipeError, match="exists and is not a dataset"):
        create.create(recipe, tmp_path / "junk")


def test_finalise_removes_the_build_group_and_a_part_can_run_again(tmp_path: Path, archive: Path) -> None:
    import warnings

    recipe, store = _recipe(tmp_path, archive), tmp_path / "ds.zarr"
    create.init(recipe, store)
    assert (store / create.GRIB_HEADERS).is_file() and (store / "_build" / "loaded").is_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zarr warns of files it does not know in a group it lists
        for i in (1, 2):
            create.load(recipe, store, Part(i, 2))
        (store / "data" / "0.0.0.0.c0ffee.partial").write_bytes(b"half")  # zarr-python's, from a killed write
        ds = dataset.finalise(store)
        assert not (store / "_build").exists() and "_build" not in ds.root
        assert not (store / "data" / "0.0.0.0.c0ffee.partial").exists()
        assert ds.attrs["total_number_of_files"] == sum(1 for f in store.rglob("*") if f.is_file())
        # a part rerun alone (its input changed): the store is unfinished until finalise runs again
        create.load(recipe, store, Part(2, 2))
    flags = dataset.loaded(store)
    assert flags.all() and not dataset.open_dataset(store).attrs["build_complete"]
    assert "build       UNFINISHED: 8/8 dates loaded" in summary(store)
    assert dataset.finalise(store).attrs["build_complete"] is True and not (store / "_build").exists()
