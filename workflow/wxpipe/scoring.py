"""The per-date statistics of every forecast kind over a forecasts file, and the model's error maps.

The model's forecasts (their ensemble mean when there are members), persistence, the climatology and a
reference forecast are read a batch of initial dates at a time, as many as the job's memory holds
(:func:`wxpipe.budget.batch_size`), each lead scored against the dataset by
:func:`wxpipe.scores.metrics.per_date` in every region; :mod:`wxpipe.evaluate` averages and writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from . import budget
from .climatology import Climatology
from .dataset import Dataset
from .forecasts import Forecasts
from .grid import area_weights
from .progress import progress
from .samples import read_batch
from .scores.metrics import per_date
from .scores.regions import masks
from .scores.table import PER_DATE, Axes, Maps


@dataclasses.dataclass(frozen=True)
class Baselines:
    """What the model is scored beside, besides persistence: a climatology, a reference forecast per lead."""

    climatology: Climatology | None = None
    reference: str | None = None
    references: Mapping[int, Dataset] = dataclasses.field(default_factory=dict)


def accumulate(
    dataset: Dataset,
    fc: Forecasts,
    axes: Axes,
    baselines: Baselines,
    map_axes: tuple[list[int], list[int]],
    memory_mb: int,
) -> tuple[dict[str, np.ndarray], Maps]:
    """Per-date statistics of every forecast kind ((forecasts, regions, dates, leads, variables) each) and the
    model's error maps, reading as many forecasts at once as the job's memory holds."""
    weights, region_masks = area_weights(dataset.latitudes), masks(axes.regions, dataset.latitudes, dataset.longitudes)
    shape = (len(axes.forecasts), len(axes.regions), len(axes.init_dates), len(axes.leads_steps), len(axes.variables))
    stats = {key: np.full(shape, np.nan) for key in PER_DATE}
    grid = (len(map_axes[0]), len(map_axes[1]), len(dataset.latitudes))
    sums = {k: np.zeros(grid) for k in ("error", "squared", "count")}
    n, v, m = len(dataset.latitudes), len(axes.variables), axes.members
    item = (m * 4 + 3) * len(axes.leads_steps) * v * n * 8  # float64 copies of the members, the truth, the errors
    batch = budget.batch_size(item, memory_mb, what="forecasts scored")
    starts = np.nonzero(np.isin(dataset.dates, axes.init_dates))[0]
    bar = progress(total=len(starts), desc="evaluate", unit="forecast")
    for lo in range(0, len(starts), batch):
        chunk = slice(lo, min(lo + batch, len(starts)))
        for j, candidates, truth, clim in _leads(dataset, fc, axes, baselines, starts[chunk]):
            for f, forecast in enumerate(candidates):
                if forecast is None:
                    continue
                got = per_date(forecast, truth, weights, region_masks, None if axes.kinds[f] == "climatology" else clim)
                for key in PER_DATE:
                    stats[key][f, :, chunk, j] = got[key].transpose(1, 0, 2)
            if j in map_axes[0]:
                _add_maps(sums, map_axes[0].index(j), candidates[0], truth, map_axes[1])
        bar.update(chunk.stop - chunk.start)
    bar.close()
    return stats, _maps(sums, map_axes, axes, dataset)


def _leads(
    dataset: Dataset, fc: Forecasts, axes: Axes, baselines: Baselines, starts: np.ndarray
) -> Iterator[tuple[int, list[np.ndarray | None], np.ndarray, np.ndarray | None]]:
    """For each lead of a batch of forecasts: every kind's forecast (batch, members, values, variables) in the order
    of ``axes.forecasts`` (None where a reference has no forecast at that lead), the truth and the climatology."""
    leads = axes.leads_steps
    batch = read_batch(dataset, starts, (0, *leads), drop_nan=False)
    rows = np.searchsorted(fc.init_dates, batch.dates.astype("datetime64[s]"))
    lead_index = np.array([fc.header.leads.index(lead) for lead in leads], dtype=np.int64)
    columns = np.asarray(axes.columns, dtype=np.int64)
    block = np.asarray(fc.forecast.get_orthogonal_selection((rows, lead_index, slice(None), columns)))
    fields = batch.fields[..., axes.columns]  # (batch, 1 + leads, values, variables scored)
    step = np.timedelta64(int(dataset.frequency.total_seconds()), "s")
    for j, lead in enumerate(leads):
        truth = fields[:, j + 1]
        valid = batch.dates.astype("datetime64[s]") + lead * step
        clim = None if baselines.climatology is None else baselines.climatology.at(valid)[..., axes.columns]
        candidates: list[np.ndarray | None] = [block[:, j].transpose(0, 1, 3, 2), fields[:, 0][:, None]]
        if clim is not None:
            candidates.append(clim[:, None])
        if baselines.reference is not None:
            ref = baselines.references.get(lead)
            candidates.append(None if ref is None else _reference(ref, valid, axes.variables)[:, None])
        yield j, candidates, truth, clim


def _reference(ref: Dataset, valid: np.ndarray, variables: Sequence[str]) -> np.ndarray:
    """(dates, values, variables) of the reference dataset at the valid dates; NaN where it lacks the date (or a
    declared missing one) or the variable."""
    out = np.full((len(valid), len(ref.latitudes), len(variables)), np.nan, dtype=np.float32)
    at = np.searchsorted(ref.dates, valid)
    ok = (at < len(ref.dates)) & (ref.dates[np.minimum(at, len(ref.dates) - 1)] == valid)
    ok &= ~np.isin(valid, np.array(ref.missing_dates, dtype="datetime64[s]"))
    columns = [(i, ref.variables.index(v)) for i, v in enumerate(variables) if v in ref.variables]
    if ok.any() and columns:
        block = np.asarray(ref.data.oindex[at[ok]], dtype=np.float32)[:, :, 0, :]  # (dates, variables, values)
        mine, theirs = zip(*columns, strict=True)
        out[np.ix_(np.nonzero(ok)[0], np.arange(out.shape[1]), list(mine))] = block[:, list(theirs)].transpose(0, 2, 1)
    return out


def _add_maps(
    sums: dict[str, np.ndarray], row: int, forecast: np.ndarray | None, truth: np.ndarray, variables: list[int]
) -> None:
    """Add the ensemble mean's error at each point of a batch to the error-map sums, NaN points left out."""
    assert forecast is not None
    err = forecast.mean(axis=1, dtype=np.float64)[..., variables] - truth[..., variables]  # (batch, values, vars)
    ok = np.isfinite(err)
    err = np.where(ok, err, 0.0)
    sums["error"][row] += err.sum(axis=0).T
    sums["squared"][row] += (err**2).sum(axis=0).T
    sums["count"][row] += ok.sum(axis=0).T


def _maps(sums: Mapping[str, np.ndarray], map_axes: tuple[list[int], list[int]], axes: Axes, dataset: Dataset) -> Maps:
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = sums["error"] / sums["count"]
        rmse = np.sqrt(sums["squared"] / sums["count"])
    return Maps(
        leads_hours=[axes.leads_hours[j] for j in map_axes[0]],
        variables=[axes.variables[i] for i in map_axes[1]],
        bias=bias,
        rmse=rmse,
        latitudes=dataset.latitudes,
        longitudes=dataset.longitudes,
    )
