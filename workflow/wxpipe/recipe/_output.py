"""build, output and statistics sections."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

import numpy as np
import pydantic
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WrapValidator,
)

from .._strict import StrictModel
from ._anemoi import unsupported
from ._base import Freq, StatisticsBound, _fail

# --- build, output, statistics -----------------------------------------------------------------

_NAMINGS = {"param": "{param}", "param_levelist": "{param}_{levelist}", "default": "{param}_{levelist}"}


def _naming(value: object) -> object:
    """anemoi's named namings (``param``, ``param_levelist``, ``default``) become their formats."""
    return _NAMINGS.get(value, value) if isinstance(value, str) else value


def _check_naming(fmt: str) -> str:
    other = [k for k in re.findall(r"\{([^{}]*)\}", fmt) if k not in ("param", "levelist")]
    if other:  # anemoi formats any GRIB key
        keys = ", ".join(f"{{{k}}}" for k in other)
        unsupported([((), f"{keys} in variable_naming (variable_naming may use only {{param}} and {{levelist}})")])
    try:
        fmt.format(param="p", levelist=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"variable_naming may use only {{param}} and {{levelist}} ({exc!r})") from None
    if "{param}" not in fmt:
        raise ValueError("variable_naming must contain {param}")
    return fmt


def _one_message(value: object, handler: pydantic.ValidatorFunctionWrapHandler) -> object:
    """One message for ``group_by`` instead of one per member of its union."""
    try:
        return handler(value)
    except pydantic.ValidationError:
        raise ValueError(f"group_by is monthly, daily, yearly or a number of dates, got {value!r}") from None


def _nans_bool(value: object) -> object:
    """anemoi also takes a list of variables; wxpipe allows NaNs in all of them or none."""
    if isinstance(value, list):
        unsupported([((), "allow_nans as a list of variables (write true or false)")])
    return value


NansFlag = Annotated[bool, BeforeValidator(_nans_bool)]


class Build(StrictModel):
    variable_naming: Annotated[str, BeforeValidator(_naming), AfterValidator(_check_naming)] = "{param}_{levelist}"
    allow_nans: NansFlag = False
    group_by: Annotated[
        Annotated[int, Field(gt=0, strict=True)] | Literal["monthly", "daily", "yearly"], WrapValidator(_one_message)
    ] = "monthly"
    """Dates loaded together (anemoi's load groups): a calendar period, or a number of dates."""

    def groups(self, dates: np.ndarray) -> list[np.ndarray]:
        """Split ``dates`` (sorted datetime64) into the load groups of ``group_by``."""
        if len(dates) == 0:
            return []
        if isinstance(self.group_by, int):
            n = self.group_by
            return [dates[i : i + n] for i in range(0, len(dates), n)]
        unit = {"monthly": "M", "daily": "D", "yearly": "Y"}[self.group_by]
        keys = dates.astype(f"datetime64[{unit}]")
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        return list(np.split(dates, cuts))


class Blosc(StrictModel):
    name: Literal["blosc"]
    cname: Literal["lz4", "lz4hc", "blosclz", "zstd", "zlib"] = "lz4"
    clevel: int = Field(5, ge=0, le=9)
    shuffle: bool | Literal["bitshuffle"] = True


class Zstd(StrictModel):
    name: Literal["zstd"]
    level: int = Field(3, ge=1, le=22)


class NoCompression(StrictModel):
    name: Literal["none"]


def _compressor_shorthand(value: object) -> object:
    """``compressor: zstd`` means ``compressor: {name: zstd}`` with default settings."""
    return {"name": value} if isinstance(value, str) else value


def _compressor_tag(value: object) -> str | None:
    # capitalised tags: errors.validation_error drops them from the key path shown to users
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return {"blosc": "Blosc", "zstd": "Zstd", "none": "NoCompression"}.get(str(name))


Compressor = Annotated[
    Annotated[
        Annotated[Blosc, Tag("Blosc")] | Annotated[Zstd, Tag("Zstd")] | Annotated[NoCompression, Tag("NoCompression")],
        Discriminator(
            _compressor_tag,
            custom_error_type="compressor",
            custom_error_message="compressor name must be blosc, zstd or none",
        ),
    ],
    BeforeValidator(
        _compressor_shorthand, json_schema_input_type=Literal["blosc", "zstd", "none"] | Blosc | Zstd | NoCompression
    ),
]


class Output(StrictModel):
    dtype: Literal["float32", "float64"] = "float32"
    chunking: dict[Literal["dates", "ensembles"], Annotated[int, Field(gt=0)]] = {"dates": 1}
    zarr_format: Literal[2, 3] = 2
    shards: Annotated[int, Field(gt=0)] | None = None
    """Dates per shard (Zarr v3 sharding: fewer files on Lustre); a multiple of the dates chunk."""
    compressor: Compressor | None = None
    """None: zarr-python's default codec."""

    @pydantic.model_validator(mode="after")
    def _shards(self) -> Output:
        if self.shards is None:
            return self
        if self.zarr_format != 3:
            _fail([(("shards",), "shards need zarr_format: 3")])
        if self.shards % self.dates_chunk:
            _fail([(("shards",), f"shards ({self.shards}) must be a multiple of chunking.dates ({self.dates_chunk})")])
        return self

    @property
    def dates_chunk(self) -> int:
        return self.chunking.get("dates", 1)


_DEFAULT_TENDENCIES = [dt.timedelta(hours=h) for h in (1, 3, 6, 12, 24)]  # anemoi's ``tendencies: true``


class Statistics(StrictModel):
    start: StatisticsBound | None = None
    """A date of the dataset, or a year (``2021``), month or day: its first date in the dataset."""
    end: StatisticsBound | None = None
    """A date of the dataset, or a year, month or day: its last date in the dataset."""
    allow_nans: NansFlag = False
    tendencies: list[Freq] | bool = []
    """Time differences whose statistics are computed (anemoi); each a multiple of the dates frequency."""
