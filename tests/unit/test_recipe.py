"""The recipe language: every key validates, errors name file:line:key, the input tree flattens."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from wxpipe.errors import WxpipeError
from wxpipe.recipe import (
    Blosc,
    Constants,
    Forcings,
    GribSource,
    NetcdfSource,
    NoCompression,
    Recipe,
    XarrayZarrSource,
    Zstd,
    load_recipe,
)

REPO = Path(__file__).resolve().parents[2]

FULL = """\
name: full
description: every key of the language
attribution: wxpipe
licence: CC-BY-4.0
dates:
  start: 2020-01-01T00:00
  end: 2020-01-04T18:00
  frequency: 6h
  missing: [2020-01-03T00:00]
input:
  concat:
    - dates: {start: 2020-01-01T00:00, end: 2020-01-02T18:00, frequency: 6h}
      join:
        - grib:
            path: grib/{date:strftime(%Y%m%d%H)}.grib2
            param: [2t, msl]
            number: [0, 1]
        - grib:
            path: grib/*_{date:strftime(%Y%m%d)}.grib2
            param: [z, t]
            levtype: pl
            levelist: [500, 850]
        - accumulations: {path: grib/acc.grib2, param: tp, accumulation_period: 6}
        - pipe:
            - netcdf:
                path: nc/sst_{date:strftime(%Y)}.nc
                param: [sea_surface_temperature]
            - rename:
                param: {sea_surface_temperature: sst}
        - forcings:
            template: ${input.concat.0.join.0.grib}
            param: [cos_latitude, sin_latitude, insolation]
    - dates: {start: 2020-01-03T06:00, end: 2020-01-04T18:00}
      pipe:
        - join:
            - xarray-zarr:
                url: era5.zarr
                param: [geopotential, temperature]
                levelist: [500, 850]
            - xarray_zarr: {url: era5.zarr, param: [2t, msl, sst]}
            - netcdf: {path: nc/tp.nc, param: tp}
            - constants: {params: [cos_latitude, sin_latitude, insolation]}
        - rename:
            param: {geopotential: z, temperature: tt}
        - rename:
            param: {tt: t}
build:
  group_by: daily
  variable_naming: default
  allow_nans: true
output:
  dtype: float64
  chunking: {dates: 2, ensembles: 1}
  zarr_format: 3
  shards: 4
  compressor: {name: blosc, cname: zstd, clevel: 3, shuffle: bitshuffle}
statistics:
  start: 2020-01-01T00:00
  end: 2020-01-04T00:00
  allow_nans: false
  tendencies: [6h, 12h, 1d]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(WxpipeError) as err:
        load_recipe(path)
    return str(err.value)


def _line(text: str, fragment: str) -> int:
    """The 1-based line of the first line holding ``fragment``."""
    return next(i + 1 for i, line in enumerate(text.splitlines()) if fragment in line)


@pytest.fixture
def full(tmp_path: Path) -> Recipe:
    return load_recipe(_write(tmp_path, FULL))


# --- everything valid --------------------------------------------------------------------------


def test_every_key_validates(full: Recipe) -> None:
    assert full.name == "full" and full.licence == "CC-BY-4.0"
    assert full.build.group_by == "daily" and full.build.variable_naming == "{param}_{levelist}"
    assert full.output.dtype == "float64" and full.output.zarr_format == 3 and full.output.shards == 4
    assert full.output.chunking == {"dates": 2, "ensembles": 1} and full.output.dates_chunk == 2
    assert full.output.compressor == Blosc(name="blosc", cname="zstd", clevel=3, shuffle="bitshuffle")
    assert full.statistics.tendencies == [dt.timedelta(hours=h) for h in (6, 12, 24)]
    assert full.tendencies() == {"6h": 1, "12h": 2, "1d": 4}
    grib = full.input.concat[0].join
    assert grib is not None and grib[0].source == GribSource(
        path="grib/{date:strftime(%Y%m%d%H)}.grib2", param=["2t", "msl"], number=[0, 1]
    )


def test_plan_flattens_concat_join_and_pipe(full: Recipe) -> None:
    plan = full.plan()
    assert [(b.start, b.end, b.where) for b in plan] == [
        (dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2, 18), ("input", "concat", 0)),
        (dt.datetime(2020, 1, 3, 6), dt.datetime(2020, 1, 4, 18), ("input", "concat", 1)),
    ]
    first, second = plan
    assert [s.reference for s in first.sources] == [
        "input.concat.0.join.0.grib",
        "input.concat.0.join.1.grib",
        "input.concat.0.join.2.accumulations",
        "input.concat.0.join.3.pipe.0.netcdf",
        "input.concat.0.join.4.forcings",
    ]
    assert [s.kind for s in second.sources] == ["xarray-zarr", "xarray-zarr", "netcdf", "constants"]
    sst = first.sources[3]
    assert isinstance(sst.source, NetcdfSource) and dict(sst.rename) == {"sea_surface_temperature": "sst"}
    assert sst.names("{param}_{levelist}") == {"sea_surface_temperature": "sst"}
    pl = second.sources[0]
    assert isinstance(pl.source, XarrayZarrSource)
    assert pl.names("{param}_{levelist}") == {
        "geopotential_500": "z_500",
        "geopotential_850": "z_850",
        "temperature_500": "t_500",
        "temperature_850": "t_850",
    }
    assert isinstance(second.sources[3].source, Constants) and isinstance(first.sources[4].source, Forcings)
    names = sorted(["2t", "msl", "z_500", "z_850", "t_500", "t_850", "tp", "sst", "cos_latitude", "sin_latitude"])
    assert full.variables() == sorted([*names, "insolation"])


def test_sources_for_a_date(full: Recipe) -> None:
    assert full.sources_for(np.datetime64("2020-01-02T18:00"))[0].reference == "input.concat.0.join.0.grib"
    assert (
        full.sources_for(np.datetime64("2020-01-03T06:00"))[0].reference == "input.concat.1.pipe.0.join.0.xarray-zarr"
    )
    assert full.sources_for(np.datetime64("2020-01-03T00:00")) == ()  # missing, in no item


def test_renames_compose_through_pipes(full: Recipe, tmp_path: Path) -> None:
    spec = full.plan()[1].sources[0]
    assert dict(spec.rename) == {"geopotential": "z", "temperature": "t"}  # temperature -> tt -> t
    assert spec.names("{param}_{levelist}")["temperature_850"] == "t_850"
    text = FULL.replace("param: {tt: t}", "param: {tt: temperature}")
    with pytest.raises(WxpipeError, match=r"concat items must give the same variables; differ in \['t_500'"):
        load_recipe(_write(tmp_path, text))


def test_join_and_pipe_inputs_are_one_branch(tmp_path: Path) -> None:
    demo = load_recipe(REPO / "config/recipes/demo.yaml")
    (branch,) = demo.plan()
    assert (branch.start, branch.end, branch.where) == (demo.dates.start, demo.dates.end, ("input",))
    assert [s.reference for s in branch.sources] == [
        f"input.join.{i}.{k}" for i, k in enumerate(["grib", "grib", "accumulations"])
    ]
    assert demo.variables() == ["10u", "10v", "2t", "msl", "t_500", "t_850", "tp", "z_500", "z_850"]
    recipe = Recipe.model_validate(
        {
            "dates": {"start": "2020-01-01", "end": "2020-01-02", "frequency": "1d"},
            "input": {"pipe": [{"netcdf": {"path": "a.nc", "param": ["t2m"]}}, {"rename": {"param": {"t2m": "2t"}}}]},
            "build": {"variable_naming": "param"},
        }
    )
    (branch,) = recipe.plan()
    assert branch.sources[0].reference == "input.pipe.0.netcdf" and recipe.variables() == ["2t"]
    assert recipe.build.variable_naming == "{param}"


def test_stored_recipe_reads_like_the_file_and_validates_again(full: Recipe) -> None:
    stored = json.loads(full.model_dump_json())
    assert list(stored["input"]) == ["concat"]
    assert stored["dates"]["frequency"] == "6h" and stored["statistics"]["tendencies"] == ["6h", "12h", "1d"]
    assert set(stored["input"]["concat"][1]["pipe"][0]["join"][0]) == {"xarray-zarr"}
    assert Recipe.model_validate(stored) == full


def test_build_groups() -> None:
    dates = np.arange(np.datetime64("2020-01-30T00"), np.datetime64("2020-02-02T00"), np.timedelta64(12, "h"))
    base = {"dates": {"start": "2020-01-01", "end": "2020-01-01", "frequency": "6h"}, "input": {"join": [GRIB]}}
    monthly = Recipe.model_validate(base).build  # anemoi's default
    assert [len(g) for g in monthly.groups(dates)] == [4, 2]
    daily = Recipe.model_validate({**base, "build": {"group_by": "daily"}}).build
    assert [len(g) for g in daily.groups(dates)] == [2, 2, 2]
    three = Recipe.model_validate({**base, "build": {"group_by": 3}}).build
    assert [len(g) for g in three.groups(dates)] == [3, 3]
    assert np.concatenate(three.groups(dates)).tolist() == dates.tolist()


GRIB = {"grib": {"path": "a.grib", "param": ["2t"]}}


@pytest.mark.parametrize(
    ("compressor", "expected"),
    [
        ("zstd", Zstd(name="zstd")),
        ({"name": "zstd", "level": 9}, Zstd(name="zstd", level=9)),
        ("none", NoCompression(name="none")),
        ({"name": "blosc"}, Blosc(name="blosc", cname="lz4", clevel=5, shuffle=True)),
    ],
)
def test_compressors(compressor: object, expected: object) -> None:
    recipe = Recipe.model_validate(
        {
            "dates": {"start": "2020-01-01", "end": "2020-01-01", "frequency": "6h"},
            "input": {"join": [GRIB]},
            "output": {"compressor": compressor},
        }
    )
    assert recipe.output.compressor == expected


def test_tendencies_true_is_anemoi_default_multiples() -> None:
    recipe = Recipe.model_validate(
        {
            "dates": {"start": "2020-01-01", "end": "2020-01-01", "frequency": "6h"},
            "input": {"join": [GRIB]},
            "statistics": {"tendencies": True},
        }
    )
    assert recipe.tendencies() == {"6h": 1, "12h": 2, "1d": 4}


# --- errors: file, line, key -------------------------------------------------------------------

MISSPELLED = [
    ("            number: [0, 1]", "            numbr: [0, 1]", "input.concat.0.join.0.grib.numbr: unknown key"),
    (
        "                param: [sea_surface_temperature]",
        "                parm: [sea_surface_temperature]",
        "input.concat.0.join.3.pipe.0.netcdf.parm: unknown key",
    ),
    ("            - rename:", "            - renam:", "input.concat.0.join.3.pipe.1.renam: unknown key"),
    (
        "            template: ${input.concat.0.join.0.grib}",
        "            templat: ${input.concat.0.join.0.grib}",
        "input.concat.0.join.4.forcings.templat: unknown key",
    ),
    (
        "    - dates: {start: 2020-01-03T06:00, end: 2020-01-04T18:00}",
        "    - date: {start: 2020-01-03T06:00, end: 2020-01-04T18:00}",
        "input.concat.1.date: unknown key",
    ),
    (
        "            - netcdf: {path: nc/tp.nc, param: tp}",
        "            - netcdf: {path: nc/tp.nc, param: tp, level: 3}",
        "input.concat.1.pipe.0.join.2.netcdf.level: unknown key",
    ),
    ("  chunking: {dates: 2, ensembles: 1}", "  chunking: {dates: 2, values: 1}", "output.chunking.values"),
    (
        "  compressor: {name: blosc, cname: zstd, clevel: 3, shuffle: bitshuffle}",
        "  compressor: {name: blosc, cname: zstd, clevel: 3, shufle: true}",
        "output.compressor.shufle: unknown key",
    ),
    ("  tendencies: [6h, 12h, 1d]", "  tendencys: [6h, 12h, 1d]", "statistics.tendencys: unknown key"),
    (
        "  group_by: daily",
        "  group_by: weekly",
        "build.group_by: Value error, group_by is monthly, daily, yearly or a number",
    ),
    ("  dtype: float64", "  dtype: float16", "output.dtype: Input should be 'float32' or 'float64'"),
    ("  zarr_format: 3", "  zarr_format: 4", "output.zarr_format"),
    (
        "            param: [cos_latitude, sin_latitude, insolation]",
        "            param: [cos_lattitude]",
        "input.concat.0.join.4.forcings.param.0: Input should be 'cos_latitude'",
    ),
    (
        "            levelist: [500, 850]",
        "            levelist: [500, high]",
        "input.concat.0.join.1.grib.levelist.1: Input should be a valid integer",
    ),
    (
        "  compressor: {name: blosc, cname: zstd, clevel: 3, shuffle: bitshuffle}",
        "  compressor: {name: lzma}",
        "output.compressor: compressor name must be blosc, zstd or none",
    ),
    (
        "  compressor: {name: blosc, cname: zstd, clevel: 3, shuffle: bitshuffle}",
        "  compressor: {name: zstd, level: 30}",
        "output.compressor.level: Input should be less than or equal to 22",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), MISSPELLED, ids=[m[2].split(":")[0] for m in MISSPELLED])
def test_misspelled_or_mistyped_key_names_file_line_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = FULL
    assert old in text
    text = text.replace(old, new, 1)
    line = _line(text, new.strip())
    assert f"{tmp_path / 'recipe.yaml'}:{line}: {message}" in _error(tmp_path, text)


CONCAT_DATES = [
    # (first item's end, message)
    ("2020-01-02T19:00", "input.concat.0.dates.end: concat end 2020-01-02 19:00:00 is not on the 6:00:00 frequency"),
    ("2020-01-03T12:00", "input.concat.1.dates.start: concat item 1 (2020-01-03 06:00:00 ..) overlaps item 0"),
    ("2020-01-02T12:00", "input.concat: dates 2020-01-02T18:00:00 are in no concat item"),
]


@pytest.mark.parametrize(("end", "message"), CONCAT_DATES)
def test_concat_dates_off_frequency_overlapping_or_leaving_gaps(tmp_path: Path, end: str, message: str) -> None:
    text = FULL.replace("end: 2020-01-02T18:00, frequency: 6h}", f"end: {end}, frequency: 6h}}")
    assert message in _error(tmp_path, text)


def test_concat_dates_outside_the_recipe_and_other_frequency(tmp_path: Path) -> None:
    text = FULL.replace(
        "{start: 2020-01-01T00:00, end: 2020-01-02T18:00, frequency: 6h}",
        "{start: 2019-12-31T18:00, end: 2020-01-02T18:00, frequency: 12h}",
    )
    line = _line(text, "2019-12-31T18:00")
    err = _error(tmp_path, text)
    assert f":{line}: input.concat.0.dates.start: concat start 2019-12-31 18:00:00 is outside the recipe's dates" in err
    assert f":{line}: input.concat.0.dates.frequency: frequency 12h differs from the recipe's 6h" in err


def test_dates_declared_missing_may_be_in_no_concat_item(tmp_path: Path) -> None:
    text = FULL.replace("missing: [2020-01-03T00:00]", "missing: []")
    assert "input.concat: dates 2020-01-03T00:00:00 are in no concat item" in _error(tmp_path, text)


def test_tendencies_must_be_multiples_of_the_frequency(tmp_path: Path) -> None:
    text = FULL.replace("tendencies: [6h, 12h, 1d]", "tendencies: [6h, 9h, 3h]")
    line = _line(text, "tendencies:")
    err = _error(tmp_path, text)
    assert f":{line}: statistics.tendencies.1: tendency 9h is not a multiple of the dates frequency 6h" in err
    assert "statistics.tendencies.2: tendency 3h" in err


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  zarr_format: 3\n", "", "output.shards: shards need zarr_format: 3"),
        ("  shards: 4", "  shards: 3", "output.shards: shards (3) must be a multiple of chunking.dates (2)"),
    ],
)
def test_shards(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = FULL.replace(old, new)
    line = _line(text, "shards:")
    assert f":{line}: {message}" in _error(tmp_path, text)


def test_statistics_dates_on_the_recipe_dates(tmp_path: Path) -> None:
    text = FULL.replace("  end: 2020-01-04T00:00\n  allow_nans", "  end: 2020-01-05T00:00\n  allow_nans")
    assert "statistics.end: statistics end 2020-01-05 00:00:00 is outside the recipe's dates" in _error(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "param: {sea_surface_temperature: sst}",
            "param: {sst_typo: sst}",
            "input.concat.0.join.3.pipe.1.rename.param.sst_typo: no param 'sst_typo' reaches this rename",
        ),
        (
            "            - rename:\n                param: {sea_surface_temperature: sst}",
            "            - grib: {path: x, param: [x]}",
            "input.concat.0.join.3.pipe.1.grib: only filters (rename) may follow the first step of a pipe",
        ),
        (
            "${input.concat.0.join.0.grib}",
            "${input.concat.1.pipe.0.join.0.xarray-zarr}",
            "input.concat.0.join.4.forcings.template: ${input.concat.1.pipe.0.join.0.xarray-zarr} names no source",
        ),
        (
            "${input.concat.0.join.0.grib}",
            "input.join.0.grib",
            "input.concat.0.join.4.forcings.template: String should match",
        ),
        (
            "        - accumulations: {path: grib/acc.grib2, param: tp, accumulation_period: 6}",
            "        - accumulations: {path: grib/acc.grib2, param: [tp, msl]}",
            "input.concat.0.join.2.accumulations.param: variable msl is also given by input.concat.0.join.0.grib",
        ),
        (
            "        - accumulations: {path: grib/acc.grib2, param: tp, accumulation_period: 6}",
            "        - accumulations: {path: grib/acc.grib2, param: tp}\n          grib: {path: x, param: [x]}",
            "input.concat.0.join.2: Value error, each join item names exactly one of grib, accumulations",
        ),
    ],
)
def test_input_tree_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = FULL
    assert old in text
    assert message in _error(tmp_path, text.replace(old, new))


def test_input_names_exactly_one_of_join_concat_pipe() -> None:
    dates = {"start": "2020-01-01", "end": "2020-01-01", "frequency": "6h"}
    for given in ({}, {"join": [GRIB], "pipe": [GRIB]}):
        with pytest.raises(ValueError, match="input names exactly one of join, concat, pipe"):
            Recipe.model_validate({"dates": dates, "input": given})
    with pytest.raises(ValueError, match=r"input\.join\n  List should have at least 1 item"):
        Recipe.model_validate({"dates": dates, "input": {"join": []}})


def test_variable_naming_uses_only_param_and_levelist() -> None:
    dates = {"start": "2020-01-01", "end": "2020-01-01", "frequency": "6h"}
    with pytest.raises(ValueError, match=r"variable_naming may use only \{param\} and \{levelist\}"):
        Recipe.model_validate(
            {"dates": dates, "input": {"join": [GRIB]}, "build": {"variable_naming": "{param}_{level}"}}
        )
    pl = {"grib": {"path": "a", "param": ["t"], "levtype": "pl", "levelist": [500, 850]}}
    with pytest.raises(ValueError, match=r"input\.join\.0\.grib\.param\n  variable t is also given by this source"):
        Recipe.model_validate({"dates": dates, "input": {"join": [pl]}, "build": {"variable_naming": "param"}})


# --- recipes as anemoi users write them ---------------------------------------------------------

ANEMOI = """\
dates:
  start: 2020-01-01T00:00:00Z
  end: 2020-01-03 18:00:00
  frequency: PT6H
input:
  grib:
    path: grib/{date:strftime(%Y%m%d%H)}.grib2
    param: [z, t]
    levelist: 500
"""


def test_one_source_under_input_is_a_join_of_one(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, ANEMOI))
    (branch,) = recipe.plan()
    (spec,) = branch.sources
    assert spec.reference == "input.grib" and branch.where == ("input",)
    assert spec.source == GribSource(path="grib/{date:strftime(%Y%m%d%H)}.grib2", param=["z", "t"], levelist=[500])
    assert isinstance(spec.source, GribSource) and spec.source.levtype == "pl"  # levelist without levtype
    assert recipe.variables() == ["t_500", "z_500"]
    assert list(json.loads(recipe.model_dump_json())["input"]) == ["grib"]


@pytest.mark.parametrize(
    ("start", "frequency", "expected"),
    [
        ("2020-01-01T06:00:00Z", "6h", dt.datetime(2020, 1, 1, 6)),
        ("'2020-01-01T08:00:00+02:00'", "6", dt.datetime(2020, 1, 1, 6)),  # the instant, in UTC
        ("2020-01-01 06:00:00", "P1D", dt.datetime(2020, 1, 1, 6)),
        ("2020-01-01", "360m", dt.datetime(2020, 1, 1)),
    ],
)
def test_dates_in_anemoi_forms(tmp_path: Path, start: str, frequency: str, expected: dt.datetime) -> None:
    text = ANEMOI.replace("2020-01-01T00:00:00Z", start).replace("PT6H", frequency)
    text = text.replace("2020-01-03 18:00:00", "2020-01-05 06:00:00" if frequency == "P1D" else "2020-01-05 00:00")
    dates = load_recipe(_write(tmp_path, text)).dates
    assert dates.start == expected and dates.start.tzinfo is None
    assert dates.frequency == (dt.timedelta(days=1) if frequency == "P1D" else dt.timedelta(hours=6))


def test_missing_dates_as_strings_and_ranges(tmp_path: Path) -> None:
    text = ANEMOI.replace(
        "  frequency: PT6H\n",
        "  frequency: PT6H\n  missing:\n    - '2020-01-01 06:00:00'\n"
        "    - {start: 2020-01-02T00:00, end: 2020-01-02T12:00}\n    - {start: 2020-01-03, end: 2020-01-03T12:00, "
        "frequency: 12h}\n",
    )
    dates = load_recipe(_write(tmp_path, text)).dates
    hours = [(d - dates.start).total_seconds() / 3600 for d in dates.missing]
    assert hours == [6, 24, 30, 36, 48, 60]


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        ("end: 2020", (dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 3, 18))),  # anemoi: the last date of 2020
        ("end: 2020-01-02", (dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2, 18))),  # a whole day
        ("start: '2020-01-02'\n  end: 202001", (dt.datetime(2020, 1, 2), dt.datetime(2020, 1, 3, 18))),
        ("end: 2020-01-02 12:00:00", (dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2, 12))),
    ],
)
def test_statistics_bounds_in_anemoi_forms(tmp_path: Path, bound: str, expected: tuple[dt.datetime, ...]) -> None:
    recipe = load_recipe(_write(tmp_path, ANEMOI + f"statistics:\n  {bound}\n"))
    period = recipe.statistics_period()
    assert (period.start, period.end) == expected


BAD = [
    ("  end: 2020-01-03 18:00:00", "  end: 2020", "dates.end: 2020 is not a date: expected an ISO 8601 date"),
    ("  end: 2020-01-03 18:00:00", "  end: tomorrow", "dates.end: 'tomorrow' is not a date: expected"),
    ("input:", "statistics: {end: 2019}\ninput:", "statistics.end: statistics end 2019 is before the first"),
    ("input:", "statistics: {start: 2020-14}\ninput:", "statistics.start: '2020-14' is not a date"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD, ids=[b[2].split(":")[0] for b in BAD])
def test_a_bad_date_names_the_key_line_and_format(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = ANEMOI.replace(old, new)
    err = _error(tmp_path, text)
    line = _line(text, new.strip().split("\n")[0])
    assert f"{tmp_path / 'recipe.yaml'}:{line}: {message}" in err
    assert len(err.splitlines()) == 2  # "validation failed" and the one problem


UNSUPPORTED = [
    # (old, new, the line the error names, message)
    ("  grib:", "  mars:", "mars:", "input.mars: not supported by wxpipe: the mars source"),
    ("  grib:", "  grib-index:", "grib-index:", "input.grib-index: not supported by wxpipe: the grib-index source"),
    ("    levelist: 500", "    levelist: 500\n    flavour: f.yaml", "flavour:", "input.grib.flavour: not supported"),
    ("    levelist: 500", "    levelist: 500\n    stream: enda", "stream:", "input.grib.stream: not supported"),
    ("    levelist: 500", "    levtype: pl", "levtype:", "input.grib.levtype: not supported by wxpipe: levtype pl"),
    ("    levelist: 500", "    levtype: ml", "levtype:", "input.grib.levtype: not supported by wxpipe: levtype ml"),
    ("grib/{date", "grib/{param}_{date", "path:", "input.grib.path: not supported by wxpipe: {param} in a path"),
    ("dates:", "data_sources: {}\ndates:", "data_sources:", "data_sources: not supported by wxpipe: named data_"),
    ("PT6H", "30m", "frequency:", "dates.frequency: not supported by wxpipe: a frequency of 30m"),
    ("input:", "build: {allow_nans: [z_500]}\ninput:", "build:", "build.allow_nans: not supported by wxpipe: allow_"),
    ("input:", "build: {variable_naming: '{param}{level}'}\ninput:", "build:", "build.variable_naming: not supported"),
]


@pytest.mark.parametrize(("old", "new", "at", "message"), UNSUPPORTED, ids=[u[3].split(":")[0] for u in UNSUPPORTED])
def test_what_anemoi_has_and_wxpipe_lacks_is_refused_as_such(
    tmp_path: Path, old: str, new: str, at: str, message: str
) -> None:
    text = ANEMOI.replace(old, new)
    err = _error(tmp_path, text)
    assert f":{_line(text, at)}: {message}" in err
    assert "misspelled" not in err


def test_filters_wxpipe_lacks_are_refused_and_typos_stay_typos(tmp_path: Path) -> None:
    pipe = ANEMOI.replace("  grib:\n", "  pipe:\n  - grib:\n").replace("\n    ", "\n      ")
    err = _error(tmp_path, pipe + "  - rotate_winds: {x_wind: u, y_wind: v}\n")
    assert "input.pipe.1.rotate_winds: not supported by wxpipe: the rotate_winds filter" in err
    err = _error(tmp_path, pipe + "  - rename: {param: '{param}_x'}\n")
    assert "input.pipe.1.rename.param: not supported by wxpipe: rename with a format string" in err
    err = _error(tmp_path, pipe + "  - renmae: {param: {z: geopotential}}\n")
    assert "input.pipe.1.renmae: unknown key (misspelled?)" in err
    assert "input.grib.parm: unknown key (misspelled?)" in _error(tmp_path, ANEMOI.replace("param:", "parm:"))


def test_param_with_a_level_suffix_says_how_to_write_it(tmp_path: Path) -> None:
    err = _error(tmp_path, ANEMOI.replace("param: [z, t]", "param: [z_500]").replace("    levelist: 500\n", ""))
    assert "param z_500 names a level" in err and "write param: [z], levelist: [500]" in err
    assert load_recipe(_write(tmp_path, ANEMOI.replace("[z, t]", "[10u, 2t]").replace("levelist: 500", "")))


def test_paths_may_be_a_list(tmp_path: Path) -> None:
    from wxpipe.sources.paths import matching_files

    for name in ("a_2020010100.grib2", "b_2020010100.grib2", "c_2020010100.grib2"):
        (tmp_path / name).write_bytes(b"")
    pattern = str(tmp_path / "{date:strftime(%Y%m%d%H)}.grib2")
    text = ANEMOI.replace(
        "    path: grib/{date:strftime(%Y%m%d%H)}.grib2",
        f"    path: ['{pattern.replace('{date', 'a_{date')}', '{tmp_path}/[bc]_{{date:strftime(%Y%m%d%H)}}.grib2']",
    )
    (spec,) = load_recipe(_write(tmp_path, text)).plan()[0].sources
    assert isinstance(spec.source, GribSource) and isinstance(spec.source.path, list)
    found = matching_files(spec.source.path, np.datetime64("2020-01-01T00:00"))
    assert [p.name for p in found] == ["a_2020010100.grib2", "b_2020010100.grib2", "c_2020010100.grib2"]
