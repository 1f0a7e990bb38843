"""The leaf sources of a recipe's input tree."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
)

from .._model import StrictModel
from ._base import Ints, Params, _as_list

# --- sources -----------------------------------------------------------------------------------


class GribSource(StrictModel):
    """Fields read from GRIB files; ``path`` may hold ``{date:strftime(%Y%m%d%H)}`` and globs."""

    path: str
    param: Params
    levtype: Literal["sfc", "pl"] = "sfc"
    levelist: Ints = []
    number: Ints = []

    @pydantic.model_validator(mode="after")
    def _levels(self) -> GribSource:
        if self.levtype == "pl" and not self.levelist:
            raise ValueError("levtype pl needs a levelist")
        if self.levtype == "sfc" and self.levelist:
            raise ValueError("levelist is only for levtype pl")
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
