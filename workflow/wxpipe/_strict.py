"""Base for every config and recipe model: unknown keys are errors, values are validated on assignment."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pydantic
from pydantic import BeforeValidator, ConfigDict

from .timeutil import parse_frequency


class StrictModel(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


def _frequency(value: object) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return parse_frequency(value)
    raise ValueError(f"frequency must be like '6h', got {value!r}")


Frequency = Annotated[dt.timedelta, BeforeValidator(_frequency)]
Name = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class Period(StrictModel):
    """A closed range of dates."""

    start: dt.datetime
    end: dt.datetime

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self
