"""The recipe language: anemoi-datasets' key names and meaning, validated strictly.

Only the part of the language wxpipe implements is accepted; anything else is an error that
names the file, key and line, so a typo is caught before a job is submitted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pydantic

from ._model import Frequency, Period, StrictModel
from .errors import validation_error
from .timeutil import date_range, seconds
from .yamlio import load_with_lines


class Dates(StrictModel):
    start: dt.datetime
    end: dt.datetime
    frequency: Frequency
    missing: list[dt.datetime] = []

    @pydantic.model_validator(mode="after")
    def _on_frequency(self) -> Dates:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        step = self.frequency.total_seconds()
        for name, d in [("end", self.end), *[("missing", m) for m in self.missing]]:
            if (d - self.start).total_seconds() % step:
                raise ValueError(f"{name} date {d} is not on the {self.frequency} frequency from {self.start}")
            if name == "missing" and not self.start <= d <= self.end:
                raise ValueError(f"missing date {d} is outside {self.start} .. {self.end}")
        return self

    def missing_set(self) -> set[np.datetime64]:
        return {seconds(m) for m in self.missing}

    def all(self) -> np.ndarray:
        """Every date of the range, missing ones included (they keep their slot, filled with NaN)."""
        return date_range(self.start, self.end, self.frequency)


class GribSource(StrictModel):
    """Fields read from GRIB files; ``path`` may hold ``{date:strftime(%Y%m%d%H)}``."""

    path: str
    param: list[str]
    levtype: Literal["sfc", "pl"] = "sfc"
    levelist: list[int] = []

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
    param: list[str]
    accumulation_period: int = pydantic.Field(6, gt=0)


class SourceEntry(StrictModel):
    grib: GribSource | None = None
    accumulations: AccumulationsSource | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> SourceEntry:
        given = [k for k in ("grib", "accumulations") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"each join item names exactly one source (grib or accumulations), got {given}")
        return self

    @property
    def source(self) -> GribSource | AccumulationsSource:
        src = self.grib or self.accumulations
        assert src is not None
        return src


class Input(StrictModel):
    join: list[SourceEntry] = pydantic.Field(min_length=1)


class Build(StrictModel):
    variable_naming: str = "{param}_{levelist}"
    allow_nans: bool = False


class Output(StrictModel):
    dtype: Literal["float32"] = "float32"
    chunking: dict[Literal["dates"], int] = {"dates": 1}
    zarr_format: Literal[2] = 2


class Statistics(StrictModel):
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    allow_nans: bool = False


class Recipe(StrictModel):
    name: str | None = None
    description: str = ""
    attribution: str = ""
    licence: str = ""
    dates: Dates
    input: Input
    build: Build = Build()
    output: Output = Output()
    statistics: Statistics = Statistics()

    def statistics_period(self) -> Period:
        """The recipe's period, else anemoi-datasets' default (drop the tail of the dates)."""
        dates = self.dates.all()
        if self.statistics.start or self.statistics.end:
            return Period(start=self.statistics.start or self.dates.start, end=self.statistics.end or self.dates.end)
        years = (self.dates.end - self.dates.start).days / 365.25
        if years < 10:
            last = dates[max(int(len(dates) * 0.8) - 1, 0)]
        else:
            drop = 3 if years >= 20 else 1
            cutoff = np.datetime64(self.dates.end.replace(year=self.dates.end.year - drop), "s")
            last = dates[dates <= cutoff][-1]
        return Period(start=self.dates.start, end=dt.datetime.fromisoformat(str(last)))


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; errors name the file, key and line."""
    data, lines = load_with_lines(path)
    try:
        return Recipe.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, path, lines) from None
