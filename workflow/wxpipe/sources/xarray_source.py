"""Fields from netCDF files and Zarr stores, read with xarray (anemoi's ``netcdf`` and ``xarray-zarr``).

A file may hold one date (a ``{date:strftime(...)}`` path) or many (a ``time``/``valid_time``
coordinate); variables may have a level dimension (selected by ``levelist``, named with the
recipe's ``variable_naming``) and an ensemble dimension (``number``/``member``). Grids are
flattened the way GRIB flattens them, so sources of both kinds line up point for point:
a regular latitude/longitude grid row by row from north to south, an unstructured grid
(``values``/``cell`` dimension) or a curvilinear one (2-D coordinates) in storage order.
"""

from __future__ import annotations

import glob
from collections import OrderedDict
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import WxpipeError
from ..recipe import NetcdfSource, XarrayZarrSource, source_names
from ..timeutil import iso
from .paths import expand_path, has_date, is_remote

_TIME = ("valid_time", "time")
_LEVEL = ("level", "levelist", "pressure_level", "isobaricInhPa", "plev", "lev")
_MEMBER = ("number", "member", "realization", "ensemble")
_LAT = ("latitude", "lat")
_LON = ("longitude", "lon")
_OPEN_FILES = 16  # per-date files are read once; a file with many dates, or per-variable files, stay open


@dataclass(frozen=True)
class SourceAxes:
    """How a file's grid flattens to the dataset's ``values`` axis."""

    dims: tuple[str, ...]
    """Spatial dimensions in flattening order."""
    flip: bool
    """Reverse the first of ``dims`` (a regular grid stored south to north)."""
    latitudes: np.ndarray
    longitudes: np.ndarray
    shape: list[int]
    resolution: str


def _first(names: tuple[str, ...], present: Container[Any]) -> str | None:
    return next((n for n in names if n in present), None)


def source_axes(ds: xr.Dataset, where: str) -> SourceAxes:
    """The flattening of ``ds``'s grid; a regular grid gives north-to-south rows, as GRIB does."""
    lat_name, lon_name = _first(_LAT, ds.variables), _first(_LON, ds.variables)
    if lat_name is None or lon_name is None:
        raise WxpipeError(f"{where}: no latitude/longitude coordinates (looked for {_LAT} and {_LON})")
    lat, lon = ds[lat_name], ds[lon_name]
    if lat.ndim == 1 and lon.ndim == 1 and lat.dims != lon.dims:
        la = np.asarray(lat.values, dtype=np.float64)
        lo = np.asarray(lon.values, dtype=np.float64)
        flip = len(la) > 1 and bool(la[0] < la[-1])
        if flip:
            la = la[::-1]
        step = f"{abs(float(lo[1] - lo[0])):g}" if len(lo) > 1 else "unknown"
        return SourceAxes(
            dims=(str(lat.dims[0]), str(lon.dims[0])),
            flip=flip,
            latitudes=np.repeat(la, len(lo)),
            longitudes=np.tile(lo, len(la)),
            shape=[len(la), len(lo)],
            resolution=step,
        )
    if lat.dims == lon.dims:
        return SourceAxes(
            dims=tuple(str(d) for d in lat.dims),
            flip=False,
            latitudes=np.asarray(lat.values, dtype=np.float64).ravel(),
            longitudes=np.asarray(lon.values, dtype=np.float64).ravel(),
            shape=[int(lat.size)] if lat.ndim == 1 else [int(n) for n in lat.shape],
            resolution="unknown",
        )
    raise WxpipeError(f"{where}: latitude {lat.dims} and longitude {lon.dims} make no grid wxpipe knows")


class XarraySource:
    """A ``netcdf`` or ``xarray-zarr`` source (implements :class:`~wxpipe.sources.base.FieldSource`).

    Variables are named as the recipe names them before renames: ``param``, or
    ``variable_naming`` formatted with ``param`` and ``levelist`` when ``levelist`` is given.
    """

    def __init__(self, spec: NetcdfSource | XarrayZarrSource, naming: str = "{param}_{levelist}") -> None:
        self.spec = spec
        self.naming = naming
        self.pattern = spec.path if isinstance(spec, NetcdfSource) else spec.url
        self._open: OrderedDict[str, xr.Dataset] = OrderedDict()
        self._axes: dict[str, SourceAxes] = {}

    # -- FieldSource

    def variables(self) -> list[str]:
        return source_names(self.spec, self.naming)

    def files(self, date: np.datetime64) -> list[Path]:
        """Local files and stores read for ``date`` (none for a remote URL: Snakemake cannot track it)."""
        return [Path(p) for p in self._paths(date) if not is_remote(p)]

    def read(self, date: np.datetime64) -> dict[str, np.ndarray]:
        """Every variable at ``date``, shaped (ensembles, values) float64; errors name file, variable, date."""
        paths = self._paths(date)
        out: dict[str, np.ndarray] = {}
        for param in self.spec.param:
            path, ds = self._find(param, paths, date)
            where = f"{path}: {param} at {iso(date)}"
            da = self._at_date(ds[param], date, where)
            da, member = self._members(da, where)
            axes = self._grid_axes(path, ds)
            level = _first(_LEVEL, da.dims)
            if self.spec.levelist:
                if level is None:
                    raise WxpipeError(f"{where}: levelist given but the variable has no level dimension {_LEVEL}")
                for lev in self.spec.levelist:
                    name = self.naming.format(param=param, levelist=lev)
                    out[name] = _flatten(_at_level(da, level, lev, where), member, axes, where)
            else:
                if level is not None and da.sizes[level] > 1:
                    levels = ", ".join(f"{v:g}" for v in np.asarray(da[level].values, dtype=np.float64))
                    raise WxpipeError(f"{where}: variable has levels ({levels}): give a levelist")
                if level is not None:
                    da = da.squeeze(level, drop=True)
                out[param] = _flatten(da, member, axes, where)
        return out

    def metadata(self) -> dict[str, dict[str, object]]:
        return {v: {"param": v} for v in self.variables()}

    # -- grid, for a dataset whose first source is netCDF or Zarr

    def grid(self, date: np.datetime64) -> tuple[np.ndarray, np.ndarray, list[int], str]:
        """Latitudes, longitudes, field shape and resolution of the first variable's file at ``date``."""
        path, ds = self._find(self.spec.param[0], self._paths(date), date)
        axes = self._grid_axes(path, ds)
        return axes.latitudes, axes.longitudes, axes.shape, axes.resolution

    def close(self) -> None:
        for ds in self._open.values():
            ds.close()
        self._open.clear()

    # -- helpers

    def _paths(self, date: np.datetime64) -> list[str]:
        path = expand_path(self.pattern, date).removeprefix("file://")
        if is_remote(path) or not glob.has_magic(path):
            return [path]
        return sorted(glob.glob(path)) or [path]  # no match: the pattern itself, reported as missing

    def _dataset(self, path: str) -> xr.Dataset:
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        if not is_remote(path) and not Path(path).exists():
            raise WxpipeError(f"{path}: file does not exist")
        options = dict(self.spec.options)
        if isinstance(self.spec, XarrayZarrSource):
            options.setdefault("engine", "zarr")
        try:
            ds = xr.open_dataset(path, **options)
        except Exception as exc:  # xarray raises whatever its backend raises
            raise WxpipeError(f"{path}: cannot open with xarray: {exc}{_hint(path)}") from None
        self._open[path] = ds
        while len(self._open) > _OPEN_FILES:
            old, gone = self._open.popitem(last=False)
            gone.close()
            self._axes.pop(old, None)
        return ds

    def _find(self, param: str, paths: list[str], date: np.datetime64) -> tuple[str, xr.Dataset]:
        """The first file of ``paths`` that holds ``param``."""
        names: list[str] = []
        for path in paths:
            ds = self._dataset(path)
            if param in ds.data_vars:
                return path, ds
            names += [str(v) for v in ds.data_vars]
        where = ", ".join(paths)
        raise WxpipeError(f"{where}: no variable {param!r} for {iso(date)} (variables: {', '.join(sorted(names))})")

    def _grid_axes(self, path: str, ds: xr.Dataset) -> SourceAxes:
        if path not in self._axes:
            self._axes[path] = source_axes(ds, path)
        return self._axes[path]

    def _at_date(self, da: xr.DataArray, date: np.datetime64, where: str) -> xr.DataArray:
        """``da`` at ``date``; a file without a time coordinate is taken as the file of its date."""
        name = _first(_TIME, da.coords)
        if name is None:
            if has_date(self.pattern):
                return da
            raise WxpipeError(f"{where}: no time coordinate {_TIME}, and the path has no {{date:strftime(...)}}")
        coord = da.coords[name]
        target = np.asarray(date).astype("datetime64[ns]")
        values = np.asarray(coord.values)
        if coord.ndim == 0:
            if values != target:
                raise WxpipeError(f"{where}: the file is for {_show(values)}, not {iso(date)}")
            return da.drop_vars(name)
        if coord.ndim != 1:
            raise WxpipeError(f"{where}: time coordinate {name} has {coord.ndim} dimensions")
        hits = np.flatnonzero(values == target)
        if len(hits) == 0:
            span = f"{_show(values[0])} .. {_show(values[-1])}, {len(values)} times" if len(values) else "none"
            raise WxpipeError(f"{where}: date not in the file (times: {span})")
        return da.isel({coord.dims[0]: int(hits[0])}, drop=True)

    def _members(self, da: xr.DataArray, where: str) -> tuple[xr.DataArray, str]:
        """``da`` with its ensemble dimension first-class (a length-1 one if it has none)."""
        member = _first(_MEMBER, da.dims)
        numbers = self.spec.number
        if member is None:
            if numbers:
                raise WxpipeError(f"{where}: number {numbers} given but the variable has no member dimension")
            return da.expand_dims("_member"), "_member"
        if numbers:
            have = np.asarray(da[member].values).tolist() if member in da.coords else list(range(da.sizes[member]))
            lost = [n for n in numbers if n not in have]
            if lost:
                raise WxpipeError(f"{where}: ensemble member(s) {lost} not in the file (members: {have})")
            da = da.isel({member: [have.index(n) for n in numbers]})
        return da, member


def _at_level(da: xr.DataArray, dim: str, level: int, where: str) -> xr.DataArray:
    values = np.asarray(da[dim].values, dtype=np.float64) if dim in da.coords else np.arange(da.sizes[dim])
    if str(da[dim].attrs.get("units", "")).lower() == "pa":
        values = values / 100.0  # levelist is in hPa, as in GRIB
    hits = np.flatnonzero(np.isclose(values, level))
    if len(hits) == 0:
        raise WxpipeError(f"{where}: level {level} not in the file (levels: {', '.join(f'{v:g}' for v in values)})")
    return da.isel({dim: int(hits[0])}, drop=True)


def _flatten(da: xr.DataArray, member: str, axes: SourceAxes, where: str) -> np.ndarray:
    extra = [str(d) for d in da.dims if d != member and d not in axes.dims]
    lacking = [d for d in axes.dims if d not in da.dims]
    if lacking:
        raise WxpipeError(f"{where}: the variable lacks the grid's dimension(s) {', '.join(lacking)}")
    if extra:
        raise WxpipeError(f"{where}: unexpected dimension(s) {', '.join(extra)} (select them or use another source)")
    values = np.asarray(da.transpose(member, *axes.dims).values, dtype=np.float64)
    if axes.flip:
        values = values[:, ::-1]
    return values.reshape(values.shape[0], -1)


def _show(value: np.ndarray | np.generic) -> str:
    v = np.asarray(value)
    return iso(v) if np.issubdtype(v.dtype, np.datetime64) else str(v)


def _hint(path: str) -> str:
    """Why a netCDF file may not open: HDF5-based netCDF-4 needs a backend this install may lack."""
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError:
        return ""
    if magic.startswith(b"\x89HDF") and not {"h5netcdf", "netcdf4"} & set(xr.backends.list_engines()):
        return " (a netCDF-4/HDF5 file: install h5netcdf or netCDF4 to read it)"
    return ""
