"""The forecasts file: what a model predicted, the only thing the predict and evaluate stages share.

A Zarr **v2** store (zarr-python 2 and 3 both read it, so an engine's environment with zarr 2 can
write what this one scores), laid out like a dataset with an initial-date and a lead axis in front:

| array | shape | dtype | notes |
|---|---|---|---|
| ``forecast`` | (init_dates, leads, members, variables, values) | float32 | NaN fill; a chunk per forecast and lead |
| ``init_dates`` | (init_dates,) | datetime64[s] | the last input date of each forecast |
| ``leads`` | (leads,) | int64 | model steps after it; attrs ``hours`` |
| ``latitudes``, ``longitudes`` | (values,) | float64 | the grid of the dataset read |

Root attributes: ``format``, ``version``, ``variables``, ``model`` (:class:`~wxpipe.model.ModelMetadata`
as JSON), ``dataset_uuid``, ``dataset_path`` (the copy read), ``checkpoint``, ``frequency``.
Every array names its dimensions in ``_ARRAY_DIMENSIONS``, so ``xarray.open_zarr`` opens the store as is.
The store is written under a temporary name and renamed into place whole: a killed predict leaves
nothing that looks complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ._strict import Period
from .dataset import Dataset, array, read
from .errors import WxpipeError
from .fsutil import atomic_path
from .grid import grid_fingerprint
from .model.metadata import ModelMetadata
from .products import dims, new_store, stored
from .samples import sample_starts
from .timeutil import format_frequency, parse_frequency

FORMAT = "wxpipe-forecasts"
VERSION = 1
DIMENSIONS = {  # named after the coordinate arrays, so xarray indexes by them
    "forecast": ["init_dates", "leads", "members", "variables", "values"],
    "init_dates": ["init_dates"],
    "leads": ["leads"],
    "latitudes": ["values"],
    "longitudes": ["values"],
}


@dataclass(frozen=True)
class Header:
    """Everything in a forecasts file but the forecasts: what was predicted, on which grid, by which model."""

    variables: list[str]
    leads: list[int]
    members: int
    latitudes: np.ndarray
    longitudes: np.ndarray
    frequency: dt.timedelta
    model: ModelMetadata
    dataset_uuid: str
    dataset_path: str
    checkpoint: str

    @classmethod
    def of(cls, dataset: Dataset, model: ModelMetadata, leads: list[int], checkpoint: str | Path) -> Header:
        """The header of ``model``'s forecasts from ``dataset``: every dataset variable, each of its members."""
        return cls(
            variables=list(dataset.variables),
            leads=leads,
            members=int(dataset.data.shape[2]),
            latitudes=dataset.latitudes,
            longitudes=dataset.longitudes,
            frequency=dataset.frequency,
            model=model,
            dataset_uuid=dataset.uuid,
            dataset_path=str(dataset.path),
            checkpoint=str(checkpoint),
        )


@dataclass(frozen=True)
class Forecasts:
    """An open forecasts file; ``forecast`` stays lazy."""

    path: Path
    header: Header
    init_dates: np.ndarray
    forecast: zarr.Array[Any]


def lead_steps(leads: Sequence[int]) -> list[int]:
    """The leads to forecast or score: sorted, each once, at least one step ahead."""
    steps = sorted(set(leads))
    if not steps or steps[0] < 1:
        raise WxpipeError(f"evaluation leads must be at least 1 step, got {list(leads)}")
    return steps


def lead_hours(leads: Sequence[int], frequency: dt.timedelta) -> list[float | int]:
    """Leads in hours, whole numbers as ints (``6`` rather than ``6.0``)."""
    step = frequency.total_seconds() / 3600
    hours = [lead * step for lead in leads]
    return [int(h) if h.is_integer() else h for h in hours]


def initial_dates(dataset: Dataset, period: Period, leads: Sequence[int], input_steps: int = 1) -> np.ndarray:
    """Date indices in ``period`` whose input window and every verifying date are present in the dataset."""
    starts = sample_starts(dataset, period, (*range(1 - input_steps, 1), *leads), whole=False)
    if len(starts) == 0:
        raise WxpipeError(
            f"{dataset.path}: no initial date in {period.start} .. {period.end} with all of "
            f"its verifying dates (+{max(leads)} steps) present"
        )
    return starts


def check_dataset(
    source: str | Path, variables: Sequence[str], grid: str, frequency: dt.timedelta, dataset: Dataset
) -> None:
    """Refuse a dataset that does not fit ``source`` (a model or a forecasts file): other variables, grid or step."""
    if list(variables) != list(dataset.variables):
        raise WxpipeError(f"{source}: made for variables {list(variables)}, dataset has {dataset.variables}")
    if grid != grid_fingerprint(dataset.latitudes, dataset.longitudes):
        raise WxpipeError(f"{source}: made on another grid than {dataset.path}'s")
    if frequency != dataset.frequency:
        raise WxpipeError(f"{source}: made for steps of {frequency}, dataset has {dataset.frequency}")


class Writer:
    """Appends forecasts, in initial-date order, to a store made by :func:`create`."""

    def __init__(self, root: zarr.Group, capacity: int) -> None:
        self.root = root
        self.forecast = array(root, "forecast")
        self.dates: list[np.ndarray] = []
        self.count = 0
        self.capacity = capacity

    def append(self, init_dates: np.ndarray, values: np.ndarray) -> None:
        """``values`` (len(init_dates), leads, members, variables, values) for these initial dates."""
        n = len(init_dates)
        if self.count + n > self.capacity or values.shape[1:] != self.forecast.shape[1:] or len(values) != n:
            raise WxpipeError(f"forecasts of shape {values.shape} do not fit {self.forecast.shape}")
        self.forecast[self.count : self.count + n] = values.astype(np.float32, copy=False)
        self.dates.append(np.asarray(init_dates, dtype="datetime64[s]"))
        self.count += n

    def close(self) -> None:
        """Trim the store to the forecasts made and write their dates."""
        if self.count == 0:
            raise WxpipeError("no forecast to write: every candidate initial state had NaN values")
        self.forecast.resize((self.count, *self.forecast.shape[1:]))
        dates = np.concatenate(self.dates)
        self.root.create_array("init_dates", data=dates, attributes=_dims("init_dates"))


@contextmanager
def create(path: str | Path, header: Header, capacity: int) -> Iterator[Writer]:
    """A writer for at most ``capacity`` forecasts; the store lands at ``path`` only when the block succeeds."""
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = Writer(_layout(tmp, header, capacity), capacity)
        yield writer
        writer.close()


def _layout(path: Path, header: Header, capacity: int) -> zarr.Group:
    """The empty store: every array but ``init_dates``, and every attribute."""
    shape = (capacity, len(header.leads), header.members, len(header.variables), len(header.latitudes))
    root = new_store(path, "forecast", shape, DIMENSIONS, header.latitudes, header.longitudes)
    hours = {"hours": lead_hours(header.leads, header.frequency)}
    leads = np.asarray(header.leads, dtype=np.int64)
    root.create_array("leads", data=leads, fill_value=None, attributes={**_dims("leads"), **hours})
    root.attrs.update(
        {
            "format": FORMAT,
            "version": VERSION,
            "variables": list(header.variables),
            "frequency": format_frequency(header.frequency),
            "model": header.model.to_dict(),
            "dataset_uuid": header.dataset_uuid,
            "dataset_path": header.dataset_path,
            "checkpoint": header.checkpoint,
        }
    )
    return root


def open_forecasts(path: str | Path) -> Forecasts:
    """Read a forecasts file's header and dates; an error for anything else."""
    path = Path(path)
    with stored(path, FORMAT, VERSION, "forecasts file") as (root, attrs):
        forecast = array(root, "forecast")
        header = Header(
            variables=list(attrs["variables"]),
            leads=[int(x) for x in read(array(root, "leads"))],
            members=int(forecast.shape[2]),
            latitudes=read(array(root, "latitudes")),
            longitudes=read(array(root, "longitudes")),
            frequency=parse_frequency(attrs["frequency"]),
            model=ModelMetadata.from_dict(attrs["model"]),
            dataset_uuid=str(attrs["dataset_uuid"]),
            dataset_path=str(attrs["dataset_path"]),
            checkpoint=str(attrs["checkpoint"]),
        )
        init_dates = read(array(root, "init_dates")).astype("datetime64[s]")
    return Forecasts(path, header, init_dates, forecast)


def _dims(name: str) -> dict[str, Any]:
    return dims(DIMENSIONS, name)
