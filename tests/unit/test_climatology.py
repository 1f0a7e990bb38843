"""The climatology: its numbers are numpy's means of the right dates, and what it cannot cover is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from wxpipe import climatology as climatology_module
from wxpipe.climatology import Climatology, compute, day_of_year, hour_of_day, needed_days, open_climatology
from wxpipe.config import ClimatologyConfig, Period
from wxpipe.dataset import Dataset, array
from wxpipe.errors import WxpipeError

H6 = np.timedelta64(6, "h")
N_DATES = 1464 + 40  # 2020 (a leap year) and 2021-01-01 .. 01-10, 6-hourly
MISSING = 1464 + 5  # 2021-01-02T06
NAN_DATE, NAN_POINT = 1464 + 4 * 4 + 2, 5  # 2021-01-05T12, one point of the first variable


@pytest.fixture(scope="module")
def dataset(make_dataset: Callable[..., Dataset], tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = tmp_path_factory.mktemp("clim") / "two-years.zarr"
    make_dataset(path, grid=4, n_dates=N_DATES, missing=(MISSING,), noise=0.5)
    array(zarr.open_group(str(path), mode="r+"), "data")[NAN_DATE, 0, 0, NAN_POINT] = np.nan
    return Dataset(path)


@pytest.fixture(scope="module")
def fields(dataset: Dataset) -> np.ndarray:
    """(dates, variables, values) float64, the missing date NaN."""
    return np.asarray(dataset.data[:, :, 0], dtype=np.float64)


def config(start: str = "2020-01-01", end: str = "2021-01-10T18:00", window: int = 1) -> ClimatologyConfig:
    return ClimatologyConfig.model_validate({"period": {"start": start, "end": end}, "window": window})


def dates(start: str, end: str) -> np.ndarray:
    return np.arange(np.datetime64(start, "s"), np.datetime64(end, "s") + 1, H6)


def expected(dataset: Dataset, fields: np.ndarray, date: np.datetime64, window: int) -> np.ndarray:
    """(values, variables): numpy's mean over the dates within window // 2 days of year of ``date`` at its hour."""
    index = pd.DatetimeIndex(dataset.dates)
    doy = pd.Timestamp(date).day_of_year
    apart = np.abs(np.asarray(index.day_of_year) - doy)
    near = np.minimum(apart, 366 - apart) <= window // 2
    chosen = near & (np.asarray(index.hour) == pd.Timestamp(date).hour) & (np.arange(len(index)) != MISSING)
    assert chosen.sum() >= 1
    with np.errstate(invalid="ignore"):
        mean: np.ndarray = np.nanmean(fields[chosen], axis=0).T
    return mean


@pytest.fixture(scope="module")
def written(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Climatology]:
    """Window 1 and window 5, for the valid dates 2021-01-01 .. 01-08 and the year's last day."""
    out = tmp_path_factory.mktemp("clim-out")
    valid = np.concatenate([dates("2021-01-01", "2021-01-08T18:00"), dates("2020-12-31", "2020-12-31T18:00")])
    return {w: open_climatology(compute(dataset, config(window=w), valid, out / f"w{w}.zarr")) for w in (1, 5)}


def test_day_of_year_and_hour_as_pandas() -> None:
    d = np.arange(np.datetime64("2019-12-25", "s"), np.datetime64("2021-03-05", "s"), np.timedelta64(7, "h"))
    np.testing.assert_array_equal(day_of_year(d), pd.DatetimeIndex(d).day_of_year)
    np.testing.assert_array_equal(hour_of_day(d), pd.DatetimeIndex(d).hour)


def test_needed_days_run_to_the_last_lead() -> None:
    period = Period.model_validate({"start": "2020-03-11", "end": "2020-03-31T18:00"})
    days = needed_days(period, dt.timedelta(hours=24), dt.timedelta(hours=6))
    assert days.dtype == np.dtype("datetime64[s]")
    assert (days[0], days[-1], len(days)) == (np.datetime64("2020-03-11T00"), np.datetime64("2020-04-01T18"), 88)


@pytest.mark.parametrize("window", [1, 5])
def test_values_are_numpys_mean_of_the_window(
    written: dict[int, Climatology], dataset: Dataset, fields: np.ndarray, window: int
) -> None:
    clim = written[window]
    for date in [
        *dates("2021-01-03", "2021-01-06T18:00"),
        np.datetime64("2021-01-01T00"),
        *dates("2020-12-31", "2020-12-31T18:00"),
    ]:
        np.testing.assert_allclose(clim.at(np.array([date]))[0], expected(dataset, fields, date, window), rtol=1e-6)


def test_window_wraps_around_the_year(written: dict[int, Climatology], dataset: Dataset) -> None:
    clim = written[5]
    i, j = int(np.nonzero(clim.dayofyear == 366)[0][0]), int(np.nonzero(clim.hour == 6)[0][0])
    # 2020-12-29 .. 31 (days 364 .. 366), 2020-01-01 .. 02 and 2021-01-01 (days 1, 2; 2021-01-02T06 is missing)
    assert clim.count[i, j] == 6
    # 2020-12-30 .. 31, 2020-01-01 .. 03 and 2021-01-01 .. 03, less the missing date
    assert clim.count[int(np.nonzero(clim.dayofyear == 1)[0][0]), j] == 7


def test_nan_point_is_skipped_only_there(written: dict[int, Climatology], fields: np.ndarray) -> None:
    got = written[1].at(np.array(["2021-01-05T12"], dtype="datetime64[s]"))[0]
    day_of_2020 = 4 * 4 + 2  # 2020-01-05T12: the only other date of that day of year and hour
    assert got[NAN_POINT, 0] == pytest.approx(fields[day_of_2020, 0, NAN_POINT], rel=1e-6)
    both = fields[[day_of_2020, NAN_DATE], 0, NAN_POINT + 1].mean()
    assert got[NAN_POINT + 1, 0] == pytest.approx(both, rel=1e-6)
    assert np.isfinite(got).all()


def test_missing_dates_are_skipped(written: dict[int, Climatology], fields: np.ndarray) -> None:
    clim = written[1]
    i, j = int(np.nonzero(clim.dayofyear == 2)[0][0]), int(np.nonzero(clim.hour == 6)[0][0])
    assert clim.count[i, j] == 1 and clim.count[i, (j + 1) % 4] == 2
    got = clim.at(np.array(["2021-01-02T06"], dtype="datetime64[s]"))[0]
    np.testing.assert_allclose(got, fields[5].T, rtol=1e-6)  # 2020-01-02T06 alone


def test_uncovered_days_are_refused_by_name(dataset: Dataset, tmp_path: Path) -> None:
    valid = dates("2021-03-11", "2021-03-14T18:00")
    with pytest.raises(WxpipeError, match=r"03-11T00, 03-11T06, .* and 6 more.*2020-06-01 \.\. 2021-01-10T18:00"):
        compute(dataset, config(start="2020-06-01", window=31), valid, tmp_path / "c.zarr")
    with pytest.raises(WxpipeError, match=r"for 01-20T00 "):  # 2020-01-01 .. 15 reaches 01-18 with window 7, not 01-20
        compute(dataset, config(end="2020-01-15T18:00", window=7), np.array(["2021-01-20"], "M8[s]"), tmp_path / "c")
    assert not (tmp_path / "c.zarr").exists()


def test_period_without_dates_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(WxpipeError, match=rf"{dataset.path}.*2019-03-01 \.\. 2019-05-31.*2020-01-01 \.\. 2021-01-10"):
        compute(dataset, config("2019-03-01", "2019-05-31"), dates("2021-01-01", "2021-01-01"), tmp_path / "c.zarr")


def test_at_any_dates_in_the_truths_layout(
    written: dict[int, Climatology], dataset: Dataset, fields: np.ndarray
) -> None:
    clim = written[5]
    rng = np.random.default_rng(1)
    valid = dates("2021-01-01", "2021-01-08T18:00")
    picked = rng.choice(valid, size=12)
    got = clim.at(picked)
    assert got.shape == (12, len(dataset.latitudes), len(dataset.variables)) and got.dtype == np.float32
    for k, date in enumerate(picked):
        np.testing.assert_array_equal(got[k], clim.at(np.array([date]))[0])
        np.testing.assert_allclose(got[k], expected(dataset, fields, date, 5), rtol=1e-6)
    with pytest.raises(WxpipeError, match="2021-01-09T00:00:00, 2020-06-01T00:00:00"):
        clim.at(np.array(["2021-01-01", "2021-01-09", "2020-06-01"], dtype="datetime64[s]"))


def test_store_reopens_with_its_metadata(written: dict[int, Climatology], dataset: Dataset, tmp_path: Path) -> None:
    clim = written[5]
    root = zarr.open_group(str(clim.path), mode="r")
    assert (clim.path / ".zgroup").exists()
    assert root["climatology"].attrs["_ARRAY_DIMENSIONS"] == ["dayofyear", "hour", "variables", "values"]
    assert (clim.window, clim.dataset_uuid, clim.variables) == (5, dataset.uuid, dataset.variables)
    assert clim.period == ("2020-01-01T00:00:00", "2021-01-10T18:00:00")
    assert clim.values.shape == (len(clim.dayofyear), 4, len(dataset.variables), len(dataset.latitudes))
    assert clim.dayofyear.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 366] and clim.hour.tolist() == [0, 6, 12, 18]
    clim.check(dataset)
    with pytest.raises(WxpipeError, match=r"not a .*climatology"):
        open_climatology(dataset.path)
    with pytest.raises(WxpipeError, match="not a readable climatology"):
        open_climatology(tmp_path / "absent.zarr")


def test_check_refuses_another_dataset(
    written: dict[int, Climatology], make_dataset: Callable[..., Dataset], tmp_path: Path
) -> None:
    other = make_dataset(tmp_path / "other.zarr", grid=4, n_dates=8, variables=("2t", "msl"), missing=())
    with pytest.raises(WxpipeError, match=r"variables \['2t', 'msl', 't_850'\].*has variables \['2t', 'msl'\]"):
        written[1].check(other)


def test_a_failed_write_leaves_nothing(dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = climatology_module.smoothed

    def dies_on_the_third_day(sums: np.ndarray, counts: np.ndarray, window: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        out: np.ndarray = real(sums, counts, window)
        return out

    monkeypatch.setattr(climatology_module, "smoothed", dies_on_the_third_day)
    with pytest.raises(KeyboardInterrupt):
        compute(dataset, config(), dates("2021-01-01", "2021-01-05"), tmp_path / "c.zarr")
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []
