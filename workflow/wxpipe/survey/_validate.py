"""``wxpipe recipe validate``: the first date's files hold every param, level and member asked for.

A typo in a recipe is an error naming the file before any job runs, not when ``init`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import WxpipeError, some
from ..recipe import AccumulationsSource, Forcings, GribSource, Recipe, SourceSpec, XarrayZarrSource
from ..sources.grib import SURFACE_LEVELS, GribReader
from ..sources.gribfile import GribCache, Message
from ..sources.paths import is_remote
from ..timeutil import iso
from ._files import source_files


def _held(messages: Sequence[Message]) -> str:
    return ", ".join(sorted({m.param for m in messages}))


def _ints(values: Sequence[int]) -> str:
    return ", ".join(map(str, values))


def grib_problems(spec: SourceSpec, date: np.datetime64, files: Sequence[Path], messages: list[Message]) -> list[str]:
    """Params, levels, members and step types ``spec`` asks for that ``messages`` lack, each named."""
    src = spec.source
    assert isinstance(src, (GribSource, AccumulationsSource))
    where = ", ".join(str(p) for p in files)
    problems = []
    for p in src.param:
        selected, problem = _select(src, [m for m in messages if m.param == p], where)
        if not selected and problem is None:
            problem = f"param {p} not in {where} (it holds: {_held(messages)})"
        if problem is None and not any(m.valid == date for m in selected):
            valid = sorted({iso(m.valid) for m in selected})
            problem = f"param {p}: no field valid at {iso(date)} in {where} (valid: {some(valid)})"
        if problem is not None:
            problems.append(problem)
    return problems


def _select(src: GribSource | AccumulationsSource, ms: list[Message], where: str) -> tuple[list[Message], str | None]:
    """The messages of one param that ``src`` would take, or why it would take none of them or too few."""
    if not ms:
        return [], None
    p = ms[0].param
    if isinstance(src, AccumulationsSource):
        accum = [m for m in ms if m.step_type == "accum"]
        return accum, None if accum else f"param {p} in {where} is not accumulated: read it with a grib source"
    instant = [m for m in ms if m.step_type == "instant"]
    if not instant:
        kinds = sorted({m.step_type for m in ms})
        hint = ": read it with an accumulations source" if "accum" in kinds else ""
        return [], f"param {p} in {where} is {', '.join(kinds)}, not instantaneous{hint}"
    on = ", ".join(sorted({m.type_of_level for m in instant}))
    if src.levtype == "pl":
        chosen = [m for m in instant if m.type_of_level == "isobaricInhPa"]
        levels = sorted({m.level for m in chosen})
        lost = [lev for lev in src.levelist if lev not in levels]
        if not chosen:
            return [], f"param {p} has no pressure levels in {where} (it is on {on}): use levtype sfc"
        if lost:
            return [], f"param {p} level {_ints(lost)} not in {where} (it holds levels: {_ints(levels)})"
    else:
        chosen = [m for m in instant if m.type_of_level in SURFACE_LEVELS]
        if not chosen:
            return [], f"param {p} is not a surface field in {where} (it is on {on}): use levtype pl"
    members = sorted({m.number for m in chosen})
    lost = [n for n in src.number if n not in members]
    if lost:
        return [], f"param {p} member {_ints(lost)} not in {where} (it holds members: {_ints(members)})"
    return chosen, None


def check_first_date(recipe: Recipe, name: str | Path) -> list[str]:
    """Open each concat item's first date's files and refuse what they do not hold (a WxpipeError).

    Returns notes on what could not be checked: files that do not exist yet (an archive that an
    earlier rule writes). The message of every problem starts ``recipe NAME: input...: ``.
    """
    notes: list[str] = []
    problems: list[str] = []
    declared = recipe.dates.missing_set()
    cache = GribCache()
    try:
        for branch in recipe.plan():
            first = next((d for d in recipe.dates.all() if branch.covers(d) and d not in declared), None)
            if first is None:
                continue
            for spec in branch.sources:
                if not isinstance(spec.source, Forcings):
                    found = _check_source(spec, first, recipe.build.variable_naming, cache, notes)
                    problems += [f"recipe {name}: {p}" for p in found]
            cache.clear()
    finally:
        cache.clear()
    if problems:
        raise WxpipeError("\n".join(problems))
    return notes


def _check_source(spec: SourceSpec, date: np.datetime64, naming: str, cache: GribCache, notes: list[str]) -> list[str]:
    """The problems of one source at ``date``, each prefixed with its reference; what cannot be checked
    (a remote store, files not written yet) goes to ``notes``."""
    src = spec.source
    if isinstance(src, XarrayZarrSource) and is_remote(src.url.removeprefix("file://")):
        notes.append(f"{spec.reference}: not checked: {src.url} is remote")
        return []
    try:
        files = source_files(spec, date, naming)
    except WxpipeError as exc:
        notes.append(f"{spec.reference}: not checked: {exc}")
        return []
    absent = [p for p in files if not p.exists()]
    if absent:
        notes.append(f"{spec.reference}: not checked: {absent[0]} does not exist (yet)")
        return []
    try:
        found = _source_problems(spec, date, files, naming, cache)
    except WxpipeError as exc:
        found = [str(exc)]
    return [f"{spec.reference}: {p}" for p in found]


def _source_problems(
    spec: SourceSpec, date: np.datetime64, files: list[Path], naming: str, cache: GribCache
) -> list[str]:
    """What ``spec`` asks for that its files at ``date`` lack; reading the date finds the rest."""
    src = spec.source
    if isinstance(src, (GribSource, AccumulationsSource)):
        messages = [m for p in files for m in cache.get(p).messages]
        problems = grib_problems(spec, date, files, messages)
        if not problems:
            GribReader(src, naming, cache).read(date)  # what only reading finds (an accumulation's period)
        return problems
    from ..sources.xarray_source import XarraySource

    reader = XarraySource(src, naming)  # type: ignore[arg-type]
    try:
        reader.read(date)
    finally:
        reader.close()
    return []
