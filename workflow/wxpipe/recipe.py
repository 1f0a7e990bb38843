"""The recipe language: anemoi-datasets' key names and meaning, validated strictly.

Only the part of the language wxpipe implements is accepted; anything else is an error that
names the file, key and line, so a typo is caught before a job is submitted.

The ``input`` tree (``join``, ``concat``, ``pipe``, sources, the ``rename`` filter) is validated
here and flattened by :meth:`Recipe.plan` into date ranges, each with the leaf sources that apply
to it and the renames of the pipes they sit in, so creation never walks the tree itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import numpy as np
import pydantic
import pydantic_core
from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WrapValidator,
)

from ._model import Frequency, Period, StrictModel
from .errors import validation_error
from .timeutil import date_range, format_frequency, iso, seconds
from .yamlio import Location, load_with_lines

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


# --- the input tree ----------------------------------------------------------------------------


class Rename(StrictModel):
    """anemoi's ``rename`` filter, dictionary form: ``rename: {param: {old: new}}``.

    anemoi renames field metadata before variables are named, so ``t -> temperature`` turns
    ``t_850`` into ``temperature_850``. Only ``param`` renames are implemented.
    """

    param: dict[str, str] = Field(min_length=1)


class _Action(StrictModel):
    """One item of the input tree: exactly one of its keys is given."""

    model_config = ConfigDict(populate_by_name=True)

    @pydantic.model_serializer(mode="wrap")
    def _as_written(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dump only the key given, under its YAML name, so a stored recipe reads like the file."""
        data = handler(self)
        names = {n: info.alias or n for n, info in type(self).model_fields.items()}
        return {names.get(k, k): v for k, v in data.items() if v is not None}

    def action(self) -> tuple[str, Any]:
        """The single key given (as written in YAML) and its value."""
        given = self._given()
        assert len(given) == 1, given
        return given[0]

    def _given(self) -> list[tuple[str, Any]]:
        out = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name != "dates" and value is not None:
                out.append((info.alias or name, value))
        return out

    def _exactly_one(self, what: str) -> None:
        keys = [k for k, _ in self._given()]
        if len(keys) != 1:
            allowed = ", ".join(info.alias or n for n, info in type(self).model_fields.items() if n != "dates")
            raise ValueError(f"{what} names exactly one of {allowed}; got {keys or 'none'}")


class _Sources(_Action):
    grib: GribSource | None = None
    accumulations: AccumulationsSource | None = None
    netcdf: NetcdfSource | None = None
    xarray_zarr: XarrayZarrSource | None = Field(None, alias="xarray-zarr")
    forcings: Forcings | None = None
    constants: Constants | None = None

    @property
    def leaf(self) -> LeafSource | None:
        """The source of this item, or None when it is a join or a pipe."""
        key, value = self.action()
        return value if key not in ("join", "pipe", "rename") else None


class SourceEntry(_Sources):
    """A ``join`` item: one source, or a ``pipe``."""

    pipe: Pipe | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> SourceEntry:
        self._exactly_one("each join item")
        return self

    @property
    def source(self) -> GribSource | AccumulationsSource:
        """The GRIB source of this item (the original join-of-GRIB shape); prefer :meth:`Recipe.plan`."""
        leaf = self.leaf
        if not isinstance(leaf, (GribSource, AccumulationsSource)):
            raise TypeError(f"join item is {self.action()[0]}, not grib or accumulations: use Recipe.plan()")
        return leaf


class PipeStep(_Sources):
    """A ``pipe`` step: a source (or a join) first, then filters."""

    join: Join | None = None
    rename: Rename | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> PipeStep:
        self._exactly_one("each pipe step")
        return self


def _check_pipe(steps: list[PipeStep]) -> list[PipeStep]:
    """A source first, filters after it; a rename must name params that reach it."""
    problems: list[Problem] = []
    key0 = steps[0].action()[0]
    if key0 == "rename":
        problems.append(((0, "rename"), "a pipe starts with a source (or a join); rename is a filter"))
    for i, step in enumerate(steps[1:], start=1):
        key = step.action()[0]
        if key != "rename":
            problems.append(((i, key), f"only filters (rename) may follow the first step of a pipe, got {key}"))
    if problems:
        _fail(problems)
    leaves = _leaves(steps[0], (0,))
    for i, step in enumerate(steps[1:], start=1):
        assert step.rename is not None
        reaching = {leaf.rename.get(p, p) for leaf in leaves for p in leaf.source.param}
        for old in step.rename.param:
            if old not in reaching:
                known = ", ".join(sorted(reaching))
                problems.append(((i, "rename", "param", old), f"no param {old!r} reaches this rename ({known})"))
        leaves = [leaf.renamed(step.rename.param) for leaf in leaves]
    if problems:
        _fail(problems)
    return steps


Pipe = Annotated[list[PipeStep], Field(min_length=1), AfterValidator(_check_pipe)]
Join = Annotated[list[SourceEntry], Field(min_length=1)]


class ConcatItem(_Sources):
    """A ``concat`` item: its own ``dates`` and one source, ``join`` or ``pipe`` for them."""

    dates: ConcatDates
    join: Join | None = None
    pipe: Pipe | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> ConcatItem:
        self._exactly_one("each concat item")
        return self


class Input(StrictModel):
    """The top of the input tree: exactly one of ``join``, ``concat`` or ``pipe``."""

    join: Join = []
    concat: Annotated[list[ConcatItem], Field(min_length=1)] = []
    pipe: Pipe = []

    @pydantic.model_serializer(mode="wrap")
    def _as_written(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}

    @pydantic.model_validator(mode="after")
    def _one(self) -> Input:
        given = [k for k in ("join", "concat", "pipe") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"input names exactly one of join, concat, pipe; got {given or 'none'}")
        return self


# --- build, output, statistics -----------------------------------------------------------------

_NAMINGS = {"param": "{param}", "param_levelist": "{param}_{levelist}", "default": "{param}_{levelist}"}


def _naming(value: object) -> object:
    """anemoi's named namings (``param``, ``param_levelist``, ``default``) become their formats."""
    return _NAMINGS.get(value, value) if isinstance(value, str) else value


def _check_naming(fmt: str) -> str:
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


class Build(StrictModel):
    variable_naming: Annotated[str, BeforeValidator(_naming), AfterValidator(_check_naming)] = "{param}_{levelist}"
    allow_nans: bool = False
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
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    allow_nans: bool = False
    tendencies: list[Freq] | bool = []
    """Time differences whose statistics are computed (anemoi); each a multiple of the dates frequency."""


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """One leaf source of the input tree, with the renames of the pipes around it.

    ``where`` is the source's key path in the recipe (``("input", "join", 0, "grib")``), the same
    path anemoi's ``${input.join.0.grib}`` references use; it is unique, so it can key a cache.
    ``rename`` maps a native param to its name in the dataset (only the params that change).
    """

    source: LeafSource
    where: Location
    rename: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The source's recipe key: grib, accumulations, netcdf, xarray-zarr, forcings or constants."""
        return str(self.where[-1])

    @property
    def reference(self) -> str:
        """anemoi's reference to this source, without ``${}``: ``input.join.0.grib``."""
        return ".".join(str(p) for p in self.where)

    def renamed(self, mapping: Mapping[str, str]) -> SourceSpec:
        """This spec after one more ``rename`` filter."""
        out = {}
        for p in self.source.param:
            cur = self.rename.get(p, p)
            new = mapping.get(cur, cur)
            if new != p:
                out[p] = new
        return SourceSpec(self.source, self.where, out)

    def levels(self) -> list[int]:
        src = self.source
        if isinstance(src, GribSource):
            return list(src.levelist) if src.levtype == "pl" else []
        if isinstance(src, (NetcdfSource, XarrayZarrSource)):
            return list(src.levelist)
        return []

    def names(self, naming: str) -> dict[str, str]:
        """Variable names as the source reader makes them -> names in the dataset (renames applied)."""
        return dict(self._pairs(naming))

    def variables(self, naming: str) -> list[str]:
        """This source's variables as named in the dataset."""
        return [new for _, new in self._pairs(naming)]

    def _pairs(self, naming: str) -> list[tuple[str, str]]:
        levels = self.levels()
        out = []
        for p in self.source.param:
            new = self.rename.get(p, p)
            if levels:
                out += [
                    (naming.format(param=p, levelist=lev), naming.format(param=new, levelist=lev)) for lev in levels
                ]
            else:
                out.append((p, new))
        return out


@dataclass(frozen=True)
class Branch:
    """A date range of the recipe and the sources that give its fields (one per concat item)."""

    start: dt.datetime
    end: dt.datetime
    sources: tuple[SourceSpec, ...]
    where: Location

    def covers(self, date: np.datetime64) -> bool:
        return bool(seconds(self.start) <= seconds(date) <= seconds(self.end))


def _leaves(action: _Action, where: Location) -> list[SourceSpec]:
    """The leaf sources under one item of the input tree, renames applied."""
    key, value = action.action()
    if key == "join":
        return _join_leaves(value, (*where, "join"))
    if key == "pipe":
        return _pipe_leaves(value, (*where, "pipe"))
    return [SourceSpec(value, (*where, key))]


def _join_leaves(items: list[SourceEntry], where: Location) -> list[SourceSpec]:
    return [leaf for i, item in enumerate(items) for leaf in _leaves(item, (*where, i))]


def _pipe_leaves(steps: list[PipeStep], where: Location) -> list[SourceSpec]:
    """The leaves of a pipe's first step, renamed by the filters after it."""
    leaves = _leaves(steps[0], (*where, 0))
    for step in steps[1:]:
        assert step.rename is not None
        leaves = [leaf.renamed(step.rename.param) for leaf in leaves]
    return leaves


# --- the recipe --------------------------------------------------------------------------------


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

    @pydantic.model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        problems = self._check_concat() + self._check_statistics()
        if not problems:
            problems = self._check_branches()
        if problems:
            _fail(problems)
        return self

    # -- queries

    def plan(self) -> list[Branch]:
        """The input tree flattened: for each date range, the leaf sources that apply to it.

        A ``join`` or ``pipe`` input is one branch over the recipe's dates; a ``concat`` gives one
        branch per item, in the order written. Branches do not overlap, and every date that no
        branch covers is declared missing (both checked when the recipe is loaded).
        """
        inp = self.input
        if inp.concat:
            return [
                Branch(
                    item.dates.start,
                    item.dates.end,
                    tuple(_leaves(item, ("input", "concat", i))),
                    ("input", "concat", i),
                )
                for i, item in enumerate(inp.concat)
            ]
        leaves = _join_leaves(inp.join, ("input", "join")) if inp.join else _pipe_leaves(inp.pipe, ("input", "pipe"))
        return [Branch(self.dates.start, self.dates.end, tuple(leaves), ("input",))]

    def sources_for(self, date: np.datetime64) -> list[SourceSpec]:
        """The leaf sources that give the fields of ``date`` (empty for a date no branch covers)."""
        for branch in self.plan():
            if branch.covers(date):
                return list(branch.sources)
        return []

    def variables(self) -> list[str]:
        """The dataset's variables in anemoi-datasets' order (sorted by name); every branch has the same."""
        naming = self.build.variable_naming
        return sorted(v for spec in self.plan()[0].sources for v in spec.variables(naming))

    def tendencies(self) -> dict[str, int]:
        """Tendency deltas as anemoi names them (``6h``) -> number of dates they span."""
        value = self.statistics.tendencies
        deltas = _DEFAULT_TENDENCIES if value is True else [] if value is False else value
        step = self.dates.frequency
        return {format_frequency(d): int(d / step) for d in deltas if d >= step and not d % step}

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

    # -- checks that need more than one part of the recipe

    def _on_dates(self, d: dt.datetime, where: Location, what: str) -> list[Problem]:
        dates = self.dates
        if not dates.start <= d <= dates.end:
            return [(where, f"{what} {d} is outside the recipe's dates {dates.start} .. {dates.end}")]
        if _off_frequency(d, dates.start, dates.frequency):
            return [(where, f"{what} {d} is not on the {dates.frequency} frequency from {dates.start}")]
        return []

    def _check_concat(self) -> list[Problem]:
        problems: list[Problem] = []
        items = self.input.concat
        for i, item in enumerate(items):
            at: Location = ("input", "concat", i, "dates")
            for key in ("start", "end"):
                problems += self._on_dates(getattr(item.dates, key), (*at, key), f"concat {key}")
            freq, step = item.dates.frequency, self.dates.frequency
            if freq is not None and freq != step:
                msg = f"frequency {format_frequency(freq)} differs from the recipe's {format_frequency(step)}"
                problems.append(((*at, "frequency"), msg))
        if problems or not items:
            return problems
        order = sorted(range(len(items)), key=lambda i: items[i].dates.start)
        for a, b in itertools.pairwise(order):
            if items[b].dates.start <= items[a].dates.end:
                problems.append(
                    (
                        ("input", "concat", b, "dates", "start"),
                        f"concat item {b} ({items[b].dates.start} ..) overlaps item {a} (.. {items[a].dates.end})",
                    )
                )
        covered = np.zeros(len(self.dates.all()), dtype=bool)
        all_dates = self.dates.all()
        for item in items:
            covered |= (all_dates >= seconds(item.dates.start)) & (all_dates <= seconds(item.dates.end))
        missing = self.dates.missing_set()
        lost = [d for d, c in zip(all_dates, covered, strict=True) if not c and d not in missing]
        if lost:
            shown = ", ".join(iso(d) for d in lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
            problems.append(
                (("input", "concat"), f"dates {shown} are in no concat item (extend an item or declare them missing)")
            )
        return problems

    def _check_statistics(self) -> list[Problem]:
        problems: list[Problem] = []
        st = self.statistics
        for key in ("start", "end"):
            d = getattr(st, key)
            if d is not None:
                problems += self._on_dates(d, ("statistics", key), f"statistics {key}")
        if st.start and st.end and st.end < st.start:
            problems.append((("statistics", "end"), f"end {st.end} is before start {st.start}"))
        if isinstance(st.tendencies, list):
            step = self.dates.frequency
            for k, delta in enumerate(st.tendencies):
                if delta < step or delta % step:
                    problems.append(
                        (
                            ("statistics", "tendencies", k),
                            f"tendency {format_frequency(delta)} is not a multiple of the dates frequency "
                            f"{format_frequency(step)}",
                        )
                    )
        return problems

    def _check_branches(self) -> list[Problem]:
        """Variables: no duplicates, the same in every concat item; templates name a source."""
        problems: list[Problem] = []
        naming = self.build.variable_naming
        first: list[str] | None = None
        for branch in self.plan():
            seen: dict[str, SourceSpec] = {}
            for spec in branch.sources:
                for name in spec.variables(naming):
                    if name in seen:
                        other = "this source" if seen[name] is spec else seen[name].reference
                        problems.append(((*spec.where, "param"), f"variable {name} is also given by {other}"))
                    seen.setdefault(name, spec)
                if isinstance(spec.source, Forcings) and spec.source.template:
                    ref = spec.source.template[2:-1]
                    refs = {s.reference for s in branch.sources if s is not spec}
                    if ref not in refs:
                        problems.append(
                            (
                                (*spec.where, "template"),
                                f"{spec.source.template} names no source of this input block "
                                f"(sources: {', '.join(sorted(refs)) or 'none'})",
                            )
                        )
            names = sorted(seen)
            if first is None:
                first = names
            elif names != first:
                diff = sorted(set(names) ^ set(first))
                problems.append((branch.where, f"concat items must give the same variables; differ in {diff}"))
        return problems


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; errors name the file, key and line."""
    data, lines = load_with_lines(path)
    try:
        return Recipe.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, path, lines) from None


# pydantic resolves the recursive input tree (join <-> pipe) once every model exists
SourceEntry.model_rebuild()
PipeStep.model_rebuild()
ConcatItem.model_rebuild()
Input.model_rebuild()
Recipe.model_rebuild()
