"""The climatology: the weather a day of year and an hour of day usually bring; a baseline that knows no weather
and ACC's reference.

A mean over the configured period by day of year (1..366, as pandas counts it) and hour of day, smoothed with a
uniform window of days of year (circular over the year). Each (day, hour) mean is over the dates of the whole
window, pooled; a NaN drops out at its own point only. Only the (day, hour) pairs an evaluation verifies are
computed, and only the days of year their windows touch are summed, so memory follows the evaluation, not the
year. It is a rule output, written once and read by every evaluation of the config. A Zarr **v2** store:

| array | shape | dtype | notes |
|---|---|---|---|
| ``climatology`` | (dayofyear, hour, variables, values) | float32 | NaN where no finite value was averaged |
| ``dayofyear`` | (dayofyear,) | int64 | 1..366 |
| ``hour`` | (hour,) | int64 | hour of day |
| ``count`` | (dayofyear, hour) | int64 | dates averaged; 0: no date in the window (not needed) |
| ``latitudes``, ``longitudes`` | (values,) | float64 | the grid of the dataset read |

Root attributes: ``format``, ``version``, ``variables``, ``period`` (ISO ``start``, ``end``), ``window``,
``dataset_uuid``, ``grid`` (:func:`~wxpipe.grid.grid_fingerprint`). Every array names its dimensions in
``_ARRAY_DIMENSIONS``; the store is written under a temporary name and renamed into place whole.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ._evaluation import ClimatologyConfig
from ._strict import Period
from .dataset import Dataset, array, read, read_dates
from .errors import WxpipeError, some
from .fsutil import atomic_path
from .grid import grid_fingerprint
from .guards import span_text
from .products import dims, new_store, stored
from .progress import done, progress
from .timeutil import date_range, iso, to_datetime

log = logging.getLogger(__name__)

FORMAT = "wxpipe-climatology"
VERSION = 1
YEAR = 366  # days of year, as pandas counts them: the window wraps around after the 366th
BATCH_BYTES = 1 << 28  # fields read at once
SHOWN = 10  # dates or days named in an error before "and N more"
DIMENSIONS = {  # named after the coordinate arrays, so xarray indexes by them
    "climatology": ["dayofyear", "hour", "variables", "values"],
    "dayofyear": ["dayofyear"],
    "hour": ["hour"],
    "count": ["dayofyear", "hour"],
    "latitudes": ["values"],
    "longitudes": ["values"],
}


def day_of_year(dates: np.ndarray) -> np.ndarray:
    """1..366 as pandas' ``dayofyear``: the day's rank in its own year (1 March is 60, or 61 in a leap year)."""
    d = np.asarray(dates, dtype="datetime64[s]")
    days: np.ndarray = (d.astype("datetime64[D]") - d.astype("datetime64[Y]")).astype(np.int64) + 1
    return days


def hour_of_day(dates: np.ndarray) -> np.ndarray:
    """0..23, the hour of day in UTC (pandas' ``hour``)."""
    d = np.asarray(dates, dtype="datetime64[s]")
    hours: np.ndarray = (d.astype("datetime64[h]") - d.astype("datetime64[D]")).astype(np.int64)
    return hours


def needed_days(period: Period, max_lead: dt.timedelta, frequency: dt.timedelta) -> np.ndarray:
    """The valid dates an evaluation over ``period`` with leads up to ``max_lead`` verifies."""
    return date_range(period.start, period.end + max_lead, frequency)


def window_days(days: np.ndarray, window: int) -> np.ndarray:
    """(len(days), window): the days of year averaged around each day, wrapping around the year."""
    offsets = np.arange(-(window // 2), window // 2 + 1)
    return (np.asarray(days, dtype=np.int64)[:, None] - 1 + offsets) % YEAR + 1


@dataclass(frozen=True)
class Plan:
    """What :func:`compute` reads and sums, decided from dates alone before any field is read."""

    days: np.ndarray  # days of year computed
    hours: np.ndarray  # hours of day computed
    touched: np.ndarray  # days of year summed: those the windows of ``days`` touch
    windows: np.ndarray  # (days, window): each day's window as indices into ``touched``
    dates: np.ndarray  # dataset indices averaged, sorted
    slot: np.ndarray  # per date in ``dates``: its day of year's index into ``touched``
    hour: np.ndarray  # per date in ``dates``: its hour's index into ``hours``
    count: np.ndarray  # (days, hours): dates averaged


def plan(dataset: Dataset, cfg: ClimatologyConfig, valid: np.ndarray) -> Plan:
    """The dates to read and the sums they go to; refuses a period without dates or (day, hour) pairs that
    ``valid`` needs and no date of the period covers."""
    valid = np.asarray(valid, dtype="datetime64[s]")
    if len(valid) == 0:
        raise WxpipeError("climatology: no valid date to compute it for")
    indices = _present(dataset, cfg.period)
    days, hours = np.unique(day_of_year(valid)), np.unique(hour_of_day(valid))
    windows = window_days(days, cfg.window)
    touched = np.unique(windows)
    doy, hod = day_of_year(dataset.dates[indices]), hour_of_day(dataset.dates[indices])
    keep = np.isin(doy, touched) & np.isin(hod, hours)
    slot, hour = np.searchsorted(touched, doy[keep]), np.searchsorted(hours, hod[keep])
    per_day = np.zeros((len(touched), len(hours)), dtype=np.int64)
    np.add.at(per_day, (slot, hour), 1)
    count = per_day[np.searchsorted(touched, windows)].sum(axis=1)
    uncovered = count[np.searchsorted(days, day_of_year(valid)), np.searchsorted(hours, hour_of_day(valid))] == 0
    if uncovered.any():
        names = list(dict.fromkeys(str(d)[5:13] for d in valid[uncovered]))
        raise WxpipeError(
            f"{dataset.path}: no climatology for {some(names, SHOWN)} (month-day, hour): the climatology period "
            f"{_span(cfg.period)} has no date within {cfg.window // 2} days of year of them; extend it or widen "
            "evaluation.climatology.window"
        )
    return Plan(days, hours, touched, np.searchsorted(touched, windows), indices[keep], slot, hour, count)


def _present(dataset: Dataset, period: Period) -> np.ndarray:
    """Indices of the dataset's dates in ``period``, missing dates left out; refused when there is none."""
    indices = dataset.indices(period.start, period.end)
    missing = np.asarray(dataset.missing_dates, dtype="datetime64[s]")
    indices = indices[~np.isin(dataset.dates[indices], missing)]
    if len(indices) == 0:
        first, last = (to_datetime(dataset.dates[i]) for i in (0, -1))
        raise WxpipeError(
            f"{dataset.path}: no date of the climatology period {_span(period)} in the dataset "
            f"({span_text((first, last))})"
        )
    return indices


def compute(dataset: Dataset, cfg: ClimatologyConfig, valid: np.ndarray, out: Path) -> Path:
    """Write the climatology of ``dataset`` (member 0) over ``cfg.period`` for the dates ``valid`` to ``out``."""
    started = time.monotonic()
    p = plan(dataset, cfg, valid)
    log.info(
        "climatology of %s over %s: %d dates for %d days of year x %d hours, window %d days",
        dataset.path,
        _span(cfg.period),
        len(p.dates),
        len(p.days),
        len(p.hours),
        cfg.window,
    )
    sums, counts = _accumulate(dataset, p)
    with atomic_path(Path(out)) as tmp:
        clim = array(_layout(tmp, dataset, cfg, p), "climatology")
        for i, window in enumerate(p.windows):
            clim[i] = smoothed(sums, counts, window)
    log.info(done(f"wrote {out}", started))
    return Path(out)


def _accumulate(dataset: Dataset, p: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Per day of year touched and hour: the sum of the finite values and their count, per point."""
    _, n_vars, members, n_values = dataset.data.shape
    shape = (len(p.touched), len(p.hours), n_vars, n_values)
    sums, counts = np.zeros(shape), np.zeros(shape, dtype=np.int32)
    batch = max(1, BATCH_BYTES // (n_vars * members * n_values * 4))
    bar = progress(total=len(p.dates), desc="climatology", unit="date")
    for start, stop in runs(p.dates, batch):
        block = read_dates(dataset, start, stop)[:, :, 0]
        for k, i in enumerate(np.searchsorted(p.dates, np.arange(start, stop))):
            finite = np.isfinite(block[k])
            sums[p.slot[i], p.hour[i]] += np.where(finite, block[k], 0.0)
            counts[p.slot[i], p.hour[i]] += finite
        bar.update(stop - start)
    bar.close()
    return sums, counts


def runs(indices: np.ndarray, batch: int) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` ranges of consecutive ``indices`` (sorted), at most ``batch`` long: each index once."""
    for run in np.split(indices, np.nonzero(np.diff(indices) != 1)[0] + 1):
        for lo in range(0, len(run), batch):
            part = run[lo : lo + batch]
            yield int(part[0]), int(part[-1]) + 1


def smoothed(sums: np.ndarray, counts: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(hours, variables, values) float32: the mean over the days of year ``window`` (indices), point by point."""
    total, n = np.zeros(sums.shape[1:]), np.zeros(counts.shape[1:], dtype=np.int64)
    for j in window:
        total += sums[j]
        n += counts[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan).astype(np.float32)


def _layout(path: Path, dataset: Dataset, cfg: ClimatologyConfig, p: Plan) -> zarr.Group:
    """The store with every array but the climatology's values, and every attribute."""
    shape = (len(p.days), len(p.hours), len(dataset.variables), len(dataset.latitudes))
    root = new_store(path, "climatology", shape, DIMENSIONS, dataset.latitudes, dataset.longitudes)
    for name, values in {"dayofyear": p.days, "hour": p.hours, "count": p.count}.items():
        root.create_array(name, data=values.astype(np.int64), fill_value=None, attributes=_dims(name))
    root.attrs.update(
        {
            "format": FORMAT,
            "version": VERSION,
            "variables": list(dataset.variables),
            "period": {"start": iso(cfg.period.start), "end": iso(cfg.period.end)},
            "window": cfg.window,
            "dataset_uuid": dataset.uuid,
            "grid": grid_fingerprint(dataset.latitudes, dataset.longitudes),
        }
    )
    return root


@dataclass(frozen=True)
class Climatology:
    """An open climatology; ``values`` (dayofyear, hour, variables, values) stays lazy."""

    path: Path
    variables: list[str]
    dayofyear: np.ndarray
    hour: np.ndarray
    count: np.ndarray
    latitudes: np.ndarray
    longitudes: np.ndarray
    period: tuple[str, str]
    window: int
    dataset_uuid: str
    grid: str
    values: zarr.Array[Any]

    def at(self, dates: np.ndarray) -> np.ndarray:
        """(len(dates), values, variables) float32: the climatology valid at each date, laid out as the truth."""
        d = np.asarray(dates, dtype="datetime64[s]").reshape(-1)
        doy, hod = day_of_year(d), hour_of_day(d)
        i = np.searchsorted(self.dayofyear, doy).clip(max=len(self.dayofyear) - 1)
        j = np.searchsorted(self.hour, hod).clip(max=len(self.hour) - 1)
        lacking = (self.dayofyear[i] != doy) | (self.hour[j] != hod) | (self.count[i, j] == 0)
        if lacking.any():
            raise WxpipeError(
                f"{self.path}: no climatology for {some([iso(x) for x in d[lacking]], SHOWN)} (it holds days of year "
                f"{self.dayofyear.min()}..{self.dayofyear.max()} at hours {self.hour.tolist()})"
            )
        out = np.empty((len(d), len(self.latitudes), len(self.variables)), dtype=np.float32)
        pairs, inverse = np.unique(i * len(self.hour) + j, return_inverse=True)
        for k, pair in enumerate(pairs):
            out[inverse.reshape(-1) == k] = read(self.values, (*divmod(int(pair), len(self.hour)),)).T
        return out

    def check(self, dataset: Dataset) -> None:
        """Refuse a dataset with other variables or another grid than the climatology's."""
        grid = grid_fingerprint(dataset.latitudes, dataset.longitudes)
        if list(dataset.variables) != self.variables or grid != self.grid:
            raise WxpipeError(
                f"{self.path}: a climatology of variables {self.variables} on grid {self.grid}; {dataset.path} "
                f"has variables {dataset.variables} on grid {grid}"
            )


def open_climatology(path: str | Path) -> Climatology:
    """Open a store written by :func:`compute`; an error for anything else."""
    path = Path(path)
    with stored(path, FORMAT, VERSION, "climatology") as (root, attrs):
        names = ("dayofyear", "hour", "count", "latitudes", "longitudes")
        doy, hour, count, lat, lon = (read(array(root, k)) for k in names)
        return Climatology(
            path=path,
            variables=list(attrs["variables"]),
            dayofyear=doy,
            hour=hour,
            count=count,
            latitudes=lat,
            longitudes=lon,
            period=(str(attrs["period"]["start"]), str(attrs["period"]["end"])),
            window=int(attrs["window"]),
            dataset_uuid=str(attrs["dataset_uuid"]),
            grid=str(attrs["grid"]),
            values=array(root, "climatology"),
        )


def _span(period: Period) -> str:
    return span_text((period.start, period.end))


def _dims(name: str) -> dict[str, Any]:
    return dims(DIMENSIONS, name)
