"""The leaf sources of a recipe's input tree."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
)

from .._strict import StrictModel
from ..yamlio import Location
from ._anemoi import LEVTYPES, refuse_keys, unsupported
from ._base import Ints, Params, _as_list

# --- sources -----------------------------------------------------------------------------------


_LEVEL_SUFFIX = re.compile(r"^(.+)_(\d+)$")
_PATH_KEYS = re.compile(r"\{(?!date:)([^{}:]+)")


def _grib_defaults(data: Any) -> Any:
    """anemoi's forms of a grib source: ``levelist`` alone means pressure levels (earthkit selects
    by it, and only pressure-level fields have one); other selection keys are refused as such."""
    if not isinstance(data, dict):
        return data
    refuse_keys(data, GribSource.model_fields, kind="grib")
    problems: list[tuple[Location, str]] = []
    known = all(k in GribSource.model_fields for k in data)  # else perhaps a typo: reported as one
    if "param" not in data and known:
        problems.append(((), "a grib source without param (wxpipe names the variables from it)"))
    levtype = data.get("levtype")
    if isinstance(levtype, str) and levtype in LEVTYPES:
        problems.append((("levtype",), f"levtype {levtype} (wxpipe reads sfc and pl)"))
    if levtype == "pl" and not data.get("levelist") and known:
        problems.append((("levtype",), "levtype pl without levelist (wxpipe names variables from the levels)"))
    path = data.get("path")
    for p in path if isinstance(path, list) else [path]:
        key = _PATH_KEYS.search(p) if isinstance(p, str) else None
        if key:
            problems.append((("path",), f"{{{key.group(1)}}} in a path (only {{date:strftime(...)}} is expanded)"))
    unsupported(problems)
    if "levtype" not in data:
        return {**data, "levtype": "pl" if data.get("levelist") not in (None, []) else "sfc"}
    return data


class GribSource(StrictModel):
    """Fields read from GRIB files; ``path`` may hold ``{date:strftime(%Y%m%d%H)}`` and globs, or be a list.

    ``levtype`` may be left out, as in anemoi: with a ``levelist`` it is ``pl``, else ``sfc``.
    """

    path: str | Annotated[list[str], Field(min_length=1)]
    param: Params
    levtype: Literal["sfc", "pl"] = "sfc"
    levelist: Ints = []
    number: Ints = []

    _anemoi_forms = pydantic.model_validator(mode="before")(_grib_defaults)

    @pydantic.model_validator(mode="after")
    def _levels(self) -> GribSource:
        if self.levtype == "sfc" and self.levelist:
            raise ValueError("levelist is only for levtype pl")
        suffixed = [p for p in self.param if _LEVEL_SUFFIX.match(p) and not p[0].isdigit()]
        if suffixed:
            m = _LEVEL_SUFFIX.match(suffixed[0])
            assert m is not None
            raise ValueError(
                f"param {suffixed[0]} names a level: anemoi's grib source selects GRIB shortNames, "
                f"so write param: [{m.group(1)}], levelist: [{m.group(2)}]"
            )
        return self


class AccumulationsSource(StrictModel):
    """Totals over ``accumulation_period`` hours ending at each date, from GRIB step ranges."""

    path: str
    param: Params
    accumulation_period: int = pydantic.Field(6, gt=0)


class _XarrayBased(StrictModel):
    """Selection shared by the sources read through xarray (anemoi's xarray-based sources)."""

    param: Params
    levelist: Ints = []
    """Levels to take from the variables' level dimension; names become ``build.variable_naming``."""
    number: Ints = []
    """Ensemble members to take from a ``number``/``member`` dimension; empty: all of them."""
    options: dict[str, Any] = {}
    """Passed to ``xarray.open_dataset`` (``engine``, ``decode_times``, ...), as anemoi does."""


class NetcdfSource(_XarrayBased):
    """netCDF files; ``path`` may hold ``{date:strftime(...)}`` and globs, or be one file with many times."""

    path: str


class XarrayZarrSource(_XarrayBased):
    """A Zarr store read with xarray (a path or an fsspec URL)."""

    url: str


ForcingParam = Literal[
    "cos_latitude",
    "sin_latitude",
    "cos_longitude",
    "sin_longitude",
    "cos_julian_day",
    "sin_julian_day",
    "cos_local_time",
    "sin_local_time",
    "insolation",
    "cos_solar_zenith_angle",
    "latitude",
    "longitude",
    "julian_day",
    "local_time",
    "ecef_x",
    "ecef_y",
    "ecef_z",
]
Template = Annotated[str, pydantic.StringConstraints(pattern=r"^\$\{[^{}]+\}$")]


class Forcings(StrictModel):
    """Fields computed from the grid and the date (anemoi/earthkit ``forcings``).

    ``template`` is anemoi's reference to the source whose grid the forcings take
    (``${input.join.0.grib}``); it is checked to name a source, but wxpipe computes forcings on
    the dataset's grid, which every source shares. anemoi's docs write ``params``; its code reads
    ``param``: both are accepted.
    """

    model_config = ConfigDict(populate_by_name=True)

    param: Annotated[
        list[ForcingParam],
        BeforeValidator(_as_list, json_schema_input_type=ForcingParam | list[ForcingParam]),
        Field(min_length=1),
    ] = Field(validation_alias=AliasChoices("param", "params"))
    template: Template | None = None


class Constants(Forcings):
    """anemoi's deprecated alias of ``forcings`` (same keys, same fields), kept so old recipes build."""


LeafSource = GribSource | AccumulationsSource | NetcdfSource | XarrayZarrSource | Forcings | Constants


def source_levels(source: LeafSource) -> list[int]:
    """The levels a source's variables are named by (``param_level``): those of a ``pl`` grib or an xarray source."""
    if isinstance(source, GribSource):
        return list(source.levelist) if source.levtype == "pl" else []
    if isinstance(source, _XarrayBased):
        return list(source.levelist)
    return []


def source_names(source: LeafSource, naming: str) -> list[str]:
    """Variables as the source's reader names them, before renames: ``param``, or ``naming`` per level."""
    levels = source_levels(source)
    if not levels:
        return list(source.param)
    return [naming.format(param=p, levelist=lev) for p in source.param for lev in levels]
