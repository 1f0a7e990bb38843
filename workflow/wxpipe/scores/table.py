"""scores.nc and scores.json: an evaluation's per-date statistics and their WeatherBench2 averages, as files.

scores.nc (xarray, h5netcdf) is what ``compare`` and the pictures read: every forecast scored (the run's
model, then the baselines), per region, initial date, lead and variable, with the aggregates and the
model's error maps. scores.json holds the aggregates only, nested by metric, forecast, region and
variable (a list over leads), for people and for MLflow. The layout is fixed in ``FORMAT``/``VERSION``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..fsutil import atomic_path, atomic_write_text
from .metrics import aggregate
from .regions import Region

FORMAT = "wxpipe-scores"
VERSION = 1
PER_DATE = ("mse", "mae", "bias", "acc", "crps", "variance")
AGGREGATES = ("rmse", "mae", "bias", "acc", "crps", "spread", "spread_skill")
DIMS = ("forecast", "region", "init_date", "lead", "variable")


@dataclass(frozen=True)
class Axes:
    """What the arrays of an evaluation run over."""

    forecasts: list[str]
    kinds: list[str]
    regions: list[Region]
    init_dates: np.ndarray
    leads_hours: list[float | int]
    leads_steps: list[int]
    variables: list[str]
    units: list[str]
    members: int
    columns: list[int]  # of each variable in the dataset: a model's forcings are not scored (it was given them)


@dataclass(frozen=True)
class Maps:
    """The model's error maps: the mean error and the RMSE over initial dates at each grid point."""

    leads_hours: list[float | int]
    variables: list[str]
    bias: np.ndarray  # (leads, variables, values)
    rmse: np.ndarray
    latitudes: np.ndarray
    longitudes: np.ndarray


def table(axes: Axes, stats: Mapping[str, np.ndarray], maps: Maps, attrs: Mapping[str, Any]) -> xr.Dataset:
    """The scores.nc dataset: ``stats`` per date (:data:`DIMS`), their aggregates, ``maps`` and ``attrs``."""
    coords: dict[str, Any] = {
        "forecast": axes.forecasts,
        "kind": ("forecast", axes.kinds),
        "region": [r.name for r in axes.regions],
        "lead": np.asarray(axes.leads_hours, dtype=np.float64),
        "lead_steps": ("lead", np.asarray(axes.leads_steps, dtype=np.int64)),
        "variable": axes.variables,
        "units": ("variable", axes.units),
        "init_date": axes.init_dates.astype("datetime64[ns]"),
        "latitude": ("values", maps.latitudes),
        "longitude": ("values", maps.longitudes),
        "map_lead": np.asarray(maps.leads_hours, dtype=np.float64),
        "map_variable": maps.variables,
    }
    for side in ("south", "north", "west", "east"):
        coords[f"region_{side}"] = ("region", [float(getattr(r, side)) for r in axes.regions])
    data: dict[str, Any] = {f"date_{k}": (DIMS, stats[k]) for k in PER_DATE}
    reduced = aggregate(stats, axes.members, axis=2)
    agg_dims = ("forecast", "region", "lead", "variable")
    data.update({k: (agg_dims, reduced[k]) for k in (*AGGREGATES, "n_dates")})
    map_dims = ("map_lead", "map_variable", "values")
    data["map_bias"] = (map_dims, maps.bias.astype(np.float32))
    data["map_rmse"] = (map_dims, maps.rmse.astype(np.float32))
    out = xr.Dataset(data, coords=coords)
    out.attrs.update({"format": FORMAT, "version": VERSION, "members": axes.members, **attrs})
    return out


def write_netcdf(ds: xr.Dataset, path: Path) -> Path:
    """scores.nc, compressed, written beside its name and renamed into place."""
    encoding = {name: {"compression": "gzip", "compression_opts": 4} for name in ds.data_vars}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path


def summary(ds: xr.Dataset) -> dict[str, Any]:
    """The scores.json record: every aggregate as metric -> forecast -> region -> variable -> [per lead]."""
    return {
        "run": ds.attrs["run"],
        "variables": [str(v) for v in ds.variable.values],
        "units": dict(zip(_strings(ds.variable), _strings(ds.units), strict=True)),
        "leads_hours": [_number(x) for x in ds.lead.values],
        "leads_steps": [int(x) for x in ds.lead_steps.values],
        "regions": {
            str(r): [float(ds[f"region_{s}"].sel(region=r)) for s in ("south", "north", "west", "east")]
            for r in ds.region.values
        },
        "forecasts": dict(zip(_strings(ds.forecast), _strings(ds.kind), strict=True)),
        "members": int(ds.attrs["members"]),
        "scores": {
            metric: {
                str(f): {
                    str(r): {
                        str(v): finite_list(ds[metric].sel(forecast=f, region=r, variable=v).values)
                        for v in ds.variable.values
                    }
                    for r in ds.region.values
                }
                for f in ds.forecast.values
            }
            for metric in (*AGGREGATES, "n_dates")
        },
    }


def write_json(record: Mapping[str, Any], path: Path) -> Path:
    atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def _strings(values: xr.DataArray) -> list[str]:
    return [str(v) for v in values.values]


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def finite_list(values: Sequence[float] | np.ndarray) -> list[float | int | None]:
    """A JSON list: NaN (not scored) as null, counts as ints."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.integer):
        return [int(x) for x in array.tolist()]
    return [None if not math.isfinite(float(x)) else float(x) for x in array.tolist()]
