"""Shared pieces of the recipe models: error reporting, list coercion, dates."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, NoReturn

import numpy as np
import pydantic
import pydantic_core
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
)

from .._strict import Frequency, StrictModel
from ..timeutil import date_range, format_frequency, seconds
from ..yamlio import Location
from ._anemoi import unsupported

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
Ints = Annotated[list[int], BeforeValidator(_as_list, json_schema_input_type=int | list[int])]


# --- anemoi's forms of dates and frequencies ---------------------------------------------------

DATE_FORMS = "an ISO 8601 date like 2020-01-01T06:00:00, 2020-01-01 06:00 or 2020-01-01"
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE)
_UNIT = re.compile(r"^(\d+)\s*([hdms])$", re.IGNORECASE)
_SECONDS = {"h": 3600, "d": 86400, "m": 60, "s": 1}


def _naive_utc(d: dt.datetime) -> dt.datetime:
    """anemoi reads ``...Z`` and ``+02:00`` as that instant in UTC, and a naive date as UTC."""
    return d.astimezone(dt.UTC).replace(tzinfo=None) if d.tzinfo is not None else d


def _as_datetime(value: object) -> dt.datetime:
    """A recipe date as anemoi reads it (``anemoi.utils.dates.as_datetime``): ISO strings, YAML dates.

    A number is refused: pydantic would read ``2021`` as seconds after 1970.
    """
    if isinstance(value, dt.datetime):
        return _naive_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return _naive_utc(dt.datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise pydantic_core.PydanticCustomError(
        "date", "{value} is not a date: expected {forms}", {"value": repr(value), "forms": DATE_FORMS}
    )


RecipeDate = Annotated[dt.datetime, BeforeValidator(_as_datetime, json_schema_input_type=str)]


def _as_frequency(value: object) -> object:
    """anemoi's other spellings of a frequency (``PT6H``, ``P1D``, ``360m``, ``"6"``) as a timedelta.

    ``6h``, ``1d`` and integers (hours) are left to :data:`~wxpipe._strict.Frequency`.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit():
        return dt.timedelta(hours=int(text))
    iso = _ISO_DURATION.match(text)
    unit = _UNIT.match(text)
    if iso and any(iso.groups()):
        d, h, m, s = (int(g or 0) for g in iso.groups())
        delta = dt.timedelta(days=d, hours=h, minutes=m, seconds=s)
    elif unit:
        delta = dt.timedelta(seconds=int(unit.group(1)) * _SECONDS[unit.group(2).lower()])
    else:
        return value
    if delta.total_seconds() % 3600 or not delta:
        unsupported([((), f"a frequency of {text} (wxpipe's frequencies are whole hours)")])
    return delta


# written back as anemoi writes it (``6h``), so a recipe stored in a dataset validates again
Freq = Annotated[
    Frequency,
    BeforeValidator(_as_frequency, json_schema_input_type=str | int),
    PlainSerializer(format_frequency, return_type=str, when_used="json"),
]


# --- dates -------------------------------------------------------------------------------------


def _off_frequency(d: dt.datetime, start: dt.datetime, frequency: dt.timedelta) -> bool:
    return bool((d - start).total_seconds() % frequency.total_seconds())


class MissingRange(StrictModel):
    """anemoi's ``missing: [{start, end, frequency}]``: every date of the range is missing."""

    start: RecipeDate
    end: RecipeDate
    frequency: Freq | None = None


def _expand_missing(data: Any) -> Any:
    """Ranges in ``missing`` become their dates (at their own frequency, else the recipe's)."""
    if not isinstance(data, dict) or not isinstance(data.get("missing"), list):
        return data
    if not any(isinstance(m, dict) for m in data["missing"]):
        return data
    try:
        default = pydantic.TypeAdapter(Freq).validate_python(data.get("frequency"))
    except pydantic.ValidationError:  # reported by the frequency's own validation
        return {**data, "missing": [m for m in data["missing"] if not isinstance(m, dict)]}
    out: list[object] = []
    problems: list[Problem] = []
    for i, item in enumerate(data["missing"]):
        if not isinstance(item, dict):
            out.append(item)
            continue
        try:
            r = MissingRange.model_validate(item)
        except pydantic.ValidationError as exc:
            problems += [(("missing", i, *e["loc"]), e["msg"]) for e in exc.errors()]
            continue
        out += [d.item() for d in date_range(r.start, r.end, r.frequency or default)]
    if problems:
        _fail(problems)
    return {**data, "missing": out}


class Dates(StrictModel):
    start: RecipeDate
    end: RecipeDate
    frequency: Freq
    missing: Annotated[
        list[RecipeDate],
        BeforeValidator(_as_list, json_schema_input_type=str | list[str | MissingRange]),
    ] = []
    """Dates without data (their slot is kept, filled with NaN): dates, or ``{start, end, frequency}`` ranges."""

    _ranges = pydantic.model_validator(mode="before")(_expand_missing)

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

    start: RecipeDate
    end: RecipeDate
    frequency: Freq | None = None

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ConcatDates:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


# --- statistics bounds -------------------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})(?:-?(\d{2}))?(?:-?(\d{2}))?$")


def _as_bound(value: object) -> object:
    """A statistics bound as anemoi reads it: a date with a time, or a year, month or day.

    ``2021``, ``"2021-03"``, ``202103`` and ``2021-03-01`` (no time) name a whole period, kept as
    ``"2021"``, ``"2021-03"``, ``"2021-03-01"``; anything with a time is a date.
    """
    if isinstance(value, dt.datetime):
        return _naive_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    m = _PERIOD.match(text)
    try:
        if not m:
            return _as_datetime(value)
        bound = "-".join(g for g in m.groups() if g)
        period_of(bound)
    except (ValueError, pydantic_core.PydanticCustomError):
        raise pydantic_core.PydanticCustomError(
            "date",
            "{value} is not a date: expected {forms}, or a year (2021) or month (2021-03)",
            {"value": repr(value), "forms": DATE_FORMS},
        ) from None
    return bound


StatisticsBound = Annotated[dt.datetime | str, BeforeValidator(_as_bound, json_schema_input_type=str | int)]


def period_of(bound: str) -> tuple[dt.datetime, dt.datetime]:
    """The half-open range of dates named by a year (``2021``), month (``2021-03``) or day."""
    parts = [int(p) for p in bound.split("-")]
    year, month, day = (*parts, 1, 1)[:3]
    start = dt.datetime(year, month, day)
    if len(parts) == 1:
        return start, start.replace(year=start.year + 1)
    if len(parts) == 2:
        return start, (start + dt.timedelta(days=32)).replace(day=1)
    return start, start + dt.timedelta(days=1)
