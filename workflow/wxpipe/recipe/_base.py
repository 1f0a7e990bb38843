"""Shared pieces of the recipe models: error reporting, list coercion, dates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, NoReturn

import numpy as np
import pydantic
import pydantic_core
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
)

from .._model import Frequency, StrictModel
from ..timeutil import date_range, format_frequency, seconds
from ..yamlio import Location

Problem = tuple[Location, str]


def _fail(problems: list[Problem]) -> NoReturn:
    """Raise located errors; pydantic prefixes them with the location of the validated value.

    A plain ``ValueError`` would point at the model that raised it; cross-checks (a concat
    item's dates against the recipe's) must point at the key the user has to change.
    """
    raise pydantic_core.ValidationError.from_exception_data(
        "Recipe",
        [
            {
                "type": pydantic_core.PydanticCustomError("recipe", "{problem}", {"problem": msg}),
                "loc": loc,
                "input": None,
            }
            for loc, msg in problems
        ],
    )


def _as_list(value: object) -> object:
    """anemoi accepts ``param: 2t`` for ``param: [2t]`` (and the same for levels and members)."""
    return [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value


Params = Annotated[list[str], BeforeValidator(_as_list, json_schema_input_type=str | list[str]), Field(min_length=1)]
# written back as anemoi writes it (``6h``), so a recipe stored in a dataset validates again
Freq = Annotated[Frequency, PlainSerializer(format_frequency, return_type=str, when_used="json")]
Ints = Annotated[list[int], BeforeValidator(_as_list, json_schema_input_type=int | list[int])]


# --- dates -------------------------------------------------------------------------------------


def _off_frequency(d: dt.datetime, start: dt.datetime, frequency: dt.timedelta) -> bool:
    return bool((d - start).total_seconds() % frequency.total_seconds())


class Dates(StrictModel):
    start: dt.datetime
    end: dt.datetime
    frequency: Freq
    missing: list[dt.datetime] = []

    @pydantic.model_validator(mode="after")
    def _on_frequency(self) -> Dates:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        for name, d in [("end", self.end), *[("missing", m) for m in self.missing]]:
            if _off_frequency(d, self.start, self.frequency):
                raise ValueError(f"{name} date {d} is not on the {self.frequency} frequency from {self.start}")
            if name == "missing" and not self.start <= d <= self.end:
                raise ValueError(f"missing date {d} is outside {self.start} .. {self.end}")
        return self

    def missing_set(self) -> set[np.datetime64]:
        return {seconds(m) for m in self.missing}

    def all(self) -> np.ndarray:
        """Every date of the range, missing ones included (they keep their slot, filled with NaN)."""
        return date_range(self.start, self.end, self.frequency)


class ConcatDates(StrictModel):
    """The dates a ``concat`` item applies to; they must lie on the recipe's dates (checked by Recipe)."""

    start: dt.datetime
    end: dt.datetime
    frequency: Freq | None = None

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ConcatDates:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self
