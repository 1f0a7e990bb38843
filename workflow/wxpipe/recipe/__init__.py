"""The recipe language: anemoi-datasets' key names and meaning, validated strictly.

Only the part of the language wxpipe implements is accepted; anything else is an error that
names the file, key and line, so a typo is caught before a job is submitted.

The ``input`` tree (``join``, ``concat``, ``pipe``, sources, the ``rename`` filter) is validated
here and flattened by :meth:`Recipe.plan` into date ranges, each with the leaf sources that apply
to it and the renames of the pipes they sit in, so creation never walks the tree itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from .._strict import Period, StrictModel
from ..errors import some, validation_error
from ..timeutil import format_frequency, iso, seconds, to_datetime
from ..yamlio import Location, load_with_lines
from ._anemoi import TOP_LEVEL, refuse_keys
from ._base import ConcatDates, Dates, Freq, Ints, Params, Problem, _fail, _off_frequency, period_of
from ._input import ConcatItem, Input, Join, Pipe, PipeStep, Rename, SourceEntry
from ._output import _DEFAULT_TENDENCIES, Blosc, Build, Compressor, NoCompression, Output, Statistics, Zstd
from ._plan import Branch, SourceSpec, _leaves
from ._sources import (
    AccumulationsSource,
    Constants,
    ForcingParam,
    Forcings,
    GribSource,
    LeafSource,
    NetcdfSource,
    Template,
    XarrayZarrSource,
    source_levels,
    source_names,
)

__all__ = [
    "AccumulationsSource",
    "Blosc",
    "Branch",
    "Build",
    "Compressor",
    "ConcatDates",
    "Constants",
    "Dates",
    "ForcingParam",
    "Forcings",
    "Freq",
    "GribSource",
    "Input",
    "Ints",
    "Join",
    "LeafSource",
    "NetcdfSource",
    "NoCompression",
    "Output",
    "Params",
    "Pipe",
    "Recipe",
    "Rename",
    "SourceSpec",
    "Statistics",
    "Template",
    "XarrayZarrSource",
    "Zstd",
    "load_recipe",
    "source_levels",
    "source_names",
]

# --- the recipe --------------------------------------------------------------------------------


class Recipe(StrictModel):
    common: dict[str, Any] = pydantic.Field(default={}, exclude=True)
    """Ignored, as anemoi ignores it: a place for YAML anchors (``&request``) that sources reuse."""
    name: str | None = None
    description: str = ""
    attribution: str = ""
    licence: str = ""
    dates: Dates
    input: Input
    build: Build = Build()
    output: Output = Output()
    statistics: Statistics = Statistics()

    @pydantic.model_validator(mode="before")
    @classmethod
    def _anemoi_keys(cls, data: Any) -> Any:
        """Top-level keys of anemoi's recipes that wxpipe does not implement are refused as such."""
        refuse_keys(data, cls.model_fields, TOP_LEVEL)
        return data

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

        A ``join``, ``pipe`` or single-source input is one branch over the recipe's dates; a ``concat`` gives one
        branch per item, in the order written. Branches do not overlap, and every date that no
        branch covers is declared missing (both checked when the recipe is loaded).
        """
        return list(self._plan)

    def sources_for(self, date: np.datetime64) -> tuple[SourceSpec, ...]:
        """The leaf sources that give the fields of ``date`` (the concat item covering it; none for a
        date no branch covers). Asked for every date of a build, so the branches' bounds are computed once."""
        for start, end, sources in self._spans:
            if start <= date <= end:
                return sources
        return ()

    # A recipe is frozen, so its plan is computed once (``model_copy(update=...)`` would keep a stale one).
    @functools.cached_property
    def _plan(self) -> tuple[Branch, ...]:
        inp = self.input
        if inp.concat:
            return tuple(
                Branch(
                    item.dates.start,
                    item.dates.end,
                    tuple(_leaves(item, ("input", "concat", i))),
                    ("input", "concat", i),
                )
                for i, item in enumerate(inp.concat)
            )
        leaves = _leaves(inp, ("input",))  # a join, a pipe or one source
        return (Branch(self.dates.start, self.dates.end, tuple(leaves), ("input",)),)

    @functools.cached_property
    def _spans(self) -> tuple[tuple[np.datetime64, np.datetime64, tuple[SourceSpec, ...]], ...]:
        return tuple((seconds(b.start), seconds(b.end), b.sources) for b in self._plan)

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
        start, end = (self._bound(k)[0] for k in ("start", "end"))
        if start or end:
            return Period(start=start or self.dates.start, end=end or self.dates.end)
        years = (self.dates.end - self.dates.start).days / 365.25
        if years < 10:
            last = dates[max(int(len(dates) * 0.8) - 1, 0)]
        else:
            drop = 3 if years >= 20 else 1
            cutoff = np.datetime64(self.dates.end.replace(year=self.dates.end.year - drop), "s")
            last = dates[dates <= cutoff][-1]
        return Period(start=self.dates.start, end=dt.datetime.fromisoformat(str(last)))

    def _bound(self, key: str) -> tuple[dt.datetime | None, list[Problem]]:
        """``statistics.start`` or ``end`` as a date of the dataset, with the problems found.

        A year, month or day stands, as in anemoi, for the first date from its start (``start``) or
        the last date before its end (``end``); a date must be one of the dataset's.
        """
        value = getattr(self.statistics, key)
        where: Location = ("statistics", key)
        if value is None:
            return None, []
        if isinstance(value, dt.datetime):
            return value, self._on_dates(value, where, f"statistics {key}")
        lo, hi = period_of(value)
        dates = self.dates.all()
        chosen = dates[dates >= seconds(lo)][:1] if key == "start" else dates[dates < seconds(hi)][-1:]
        if not len(chosen):
            side = "after the last" if key == "start" else "before the first"
            return None, [(where, f"statistics {key} {value} is {side} of the recipe's dates")]
        return to_datetime(chosen[0]), []

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
        items = self.input.concat or []
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
            shown = some([iso(d) for d in lost], 3)
            problems.append(
                (("input", "concat"), f"dates {shown} are in no concat item (extend an item or declare them missing)")
            )
        return problems

    def _check_statistics(self) -> list[Problem]:
        st = self.statistics
        (start, p_start), (end, p_end) = self._bound("start"), self._bound("end")
        problems = p_start + p_end
        if start and end and end < start:
            problems.append((("statistics", "end"), f"end {end} is before start {start}"))
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
    data, lines = load_with_lines(path, "recipe")
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
