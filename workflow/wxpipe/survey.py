"""Know your data before building: ``wxpipe inspect`` on a GRIB archive or a recipe's input files.

The questions ECMWF's ML data-handling material asks of a dataset before anyone trains on it: how
big is it, in how many files and fields; which variables, levels and members does it hold; which
dates are missing; how many values are missing; on what grid and at what resolution; and what do
one date, one training sample and one batch weigh in memory.

Files are read with the reader the build uses (:class:`~wxpipe.sources.grib.GribFile`), headers
only: the bitmap's count of missing points is a header key, so no value is decoded and the survey
sees what ``init`` and ``load`` will see.

``wxpipe recipe validate`` calls :func:`check_first_date`: the first date's files are opened and
every param, level and member the recipe asks for is looked up in them, so a typo is an error
naming the file before any job runs, not when ``init`` reads it.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eccodes
import numpy as np

from .errors import WxpipeError
from .fsutil import tree_size
from .progress import human, progress
from .recipe import (
    AccumulationsSource,
    Forcings,
    GribSource,
    NetcdfSource,
    Recipe,
    SourceSpec,
    XarrayZarrSource,
    load_recipe,
)
from .sources.grib import _SFC_LEVELS, GribCache, GribFile, GribReader, Message, matching_files
from .summary import Sizes, plural
from .timeutil import date_range, format_frequency, iso

GRIB_SUFFIXES = (".grib", ".grib1", ".grib2", ".grb", ".grb1", ".grb2", ".gb1", ".gb2")
KM_PER_DEGREE = 111.195  # along a meridian, on a sphere of the Earth's mean radius
SHOWN = 5  # dates and names listed before "and N more"

# --- what the files hold --------------------------------------------------------------------------


@dataclass
class Variable:
    """What the files hold of one variable: a param on one level, with one step type."""

    param: str
    level_type: str
    level: int
    step_type: str
    units: str
    fields: int = 0
    missing: int = 0
    """Points flagged missing in the bitmap, all fields together."""
    fields_with_missing: int = 0
    members: set[int] = field(default_factory=set)
    dates: set[np.datetime64] = field(default_factory=set)
    points: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        """As a dataset names it: ``param`` at the surface, ``param_level`` on levels."""
        return self.param if self.level_type in _SFC_LEVELS else f"{self.param}_{self.level}"


@dataclass(frozen=True)
class Grid:
    """The grid of the first field, with the distance between its latitude rows."""

    kind: str
    name: str
    points: int
    shape: tuple[int, ...]
    spacing_km: float


@dataclass
class Scan:
    """Every message's header of a set of GRIB files, grouped by variable."""

    files: list[Path] = field(default_factory=list)
    size: int = 0
    messages: int = 0
    variables: dict[tuple[str, str, int, str], Variable] = field(default_factory=dict)
    grid: Grid | None = None

    def add(self, m: Message, points: int, missing: int) -> None:
        key = (m.param, m.type_of_level, m.level, m.step_type)
        v = self.variables.setdefault(key, Variable(m.param, m.type_of_level, m.level, m.step_type, m.units))
        v.fields += 1
        v.missing += missing
        v.fields_with_missing += missing > 0
        v.members.add(m.number)
        v.dates.add(m.valid)
        v.points.add(points)
        self.messages += 1

    def dates(self) -> np.ndarray:
        """Every validity date of a field, sorted."""
        found: set[np.datetime64] = set().union(*(v.dates for v in self.variables.values()))
        return np.array(sorted(found), dtype="datetime64[s]")

    def members(self) -> int:
        return max((len(v.members) for v in self.variables.values()), default=1)


def _long(h: Any, key: str) -> int:
    return int(eccodes.codes_get_long(h, key)) if eccodes.codes_is_defined(h, key) else 0


def _grid(gf: GribFile) -> Grid:
    """The grid of a file's first message; rows' spacing from its distinct latitudes."""
    h = gf.handles[0]
    kind = str(eccodes.codes_get(h, "gridType"))
    points = _long(h, "numberOfDataPoints")
    try:
        lats, _, shape, resolution = gf.grid()
    except eccodes.CodesInternalError:  # a grid without coordinates (spherical harmonics, ...)
        return Grid(kind, kind, points, (points,), float("nan"))
    rows = np.unique(np.round(lats, 6))
    spacing = float(np.median(np.diff(rows))) * KM_PER_DEGREE if len(rows) > 1 else float("nan")
    name = f"{resolution:g} deg" if isinstance(resolution, float) else str(resolution)
    return Grid(kind, name, points, tuple(shape), spacing)


def scan_grib(files: Sequence[Path]) -> Scan:
    """Read every message's header of ``files`` (no values decoded), with a progress bar."""
    out = Scan(files=list(files))
    with progress(total=len(files), desc="inspect", unit="file") as bar:
        for path in files:
            gf = GribFile.scan(path)
            try:
                out.size += path.stat().st_size
                if out.grid is None:
                    out.grid = _grid(gf)
                for m, h in zip(gf.messages, gf.handles, strict=True):
                    out.add(m, _long(h, "numberOfDataPoints"), _long(h, "numberOfMissing"))
            finally:
                gf.close()
            bar.update()
    return out


def grib_files(target: str) -> list[Path]:
    """The GRIB files a target names: one file, the GRIB files under a folder, or a glob's matches."""
    path = Path(target)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in GRIB_SUFFIXES)
        if not found:
            raise WxpipeError(f"{target}: no GRIB files in the folder (looked for {', '.join(GRIB_SUFFIXES)})")
        return found
    if glob.has_magic(target):
        matches = sorted(Path(p) for p in glob.glob(target, recursive=True) if Path(p).is_file())
        if not matches:
            raise WxpipeError(f"{target}: no file matches")
        return matches
    raise WxpipeError(f"{target}: no such file or folder")


# --- dates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateCheck:
    """The dates a survey expects against those the files give."""

    expected: np.ndarray
    frequency: dt.timedelta | None
    missing: dict[np.datetime64, str]
    """Expected dates without data (not declared missing) -> why."""
    declared: list[np.datetime64] = field(default_factory=list)
    """Dates the recipe declares missing."""
    irregular: list[np.datetime64] = field(default_factory=list)
    """Dates with fields that are off the expected dates."""
    incomplete: dict[np.datetime64, list[str]] = field(default_factory=dict)
    """Dates with fields where some variable has none -> the variables it lacks."""


def frequency_of(dates: np.ndarray) -> dt.timedelta | None:
    """The most common step between consecutive dates (the smallest on a tie): a gap is a missing date."""
    steps: Counter[dt.timedelta] = Counter(np.diff(dates.astype("datetime64[s]")).tolist())
    if not steps:
        return None
    top = max(steps.values())
    return min(s for s, n in steps.items() if n == top)


def incomplete(
    scan: Scan, dates: Iterable[np.datetime64], params: set[str] | None = None
) -> dict[np.datetime64, list[str]]:
    """Dates where some variable of the files (of ``params``, if given) has no field, with those it lacks."""
    out = {}
    variables = [v for v in scan.variables.values() if params is None or v.param in params]
    for d in dates:
        lacking = sorted(v.name for v in variables if d not in v.dates)
        if lacking:
            out[d] = lacking
    return out


def archive_dates(scan: Scan) -> DateCheck:
    """An archive's dates: regular from its first to its last at its usual step, gaps missing."""
    found = scan.dates()
    step = frequency_of(found)
    if step is None:
        return DateCheck(found, None, {}, incomplete=incomplete(scan, found))
    expected = date_range(found[0].item(), found[-1].item(), step)
    have = set(found.tolist())
    missing = {d: "no field" for d in expected if d.item() not in have}
    on_grid = set(expected.tolist())
    irregular = [d for d in found if d.item() not in on_grid]
    return DateCheck(expected, step, missing, irregular=irregular, incomplete=incomplete(scan, found))


# --- a recipe's files ------------------------------------------------------------------------------


@dataclass
class RecipeFiles:
    """The files a recipe's dates need, and the dates whose files are absent."""

    grib: list[Path] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)
    """netCDF files and Zarr stores (read through xarray)."""
    absent: dict[np.datetime64, str] = field(default_factory=dict)
    grib_dates: list[np.datetime64] = field(default_factory=list)
    """Dates with every file present that GRIB sources give."""


def _source_files(spec: SourceSpec, date: np.datetime64, naming: str) -> list[Path]:
    """The files ``spec`` reads for ``date``; a glob without a match is an error naming it."""
    src = spec.source
    if isinstance(src, (GribSource, AccumulationsSource)):
        return matching_files(src.path, date)
    from .sources.xarray_source import XarraySource  # imports xarray: only for such sources

    return XarraySource(src, naming).files(date)  # type: ignore[arg-type]


def recipe_files(recipe: Recipe) -> RecipeFiles:
    """The files of every date not declared missing (each once, in date order)."""
    out = RecipeFiles()
    grib: dict[Path, None] = {}
    other: dict[Path, None] = {}
    declared = recipe.dates.missing_set()
    naming = recipe.build.variable_naming
    for d in recipe.dates.all():
        if d in declared:
            continue
        has_grib = False
        for spec in recipe.sources_for(d):
            if isinstance(spec.source, Forcings):
                continue
            is_grib = isinstance(spec.source, (GribSource, AccumulationsSource))
            has_grib |= is_grib
            try:
                paths = _source_files(spec, d, naming)
            except WxpipeError as exc:  # a glob that matches nothing
                out.absent.setdefault(d, str(exc).removeprefix(f"date {iso(d)}: "))
                continue
            for p in paths:
                if not p.exists():
                    out.absent.setdefault(d, f"file {p} absent")
                else:
                    (grib if is_grib else other)[p] = None
        if has_grib and d not in out.absent:
            out.grib_dates.append(d)
    out.grib, out.other = list(grib), list(other)
    return out


def recipe_dates(recipe: Recipe, files: RecipeFiles, scan: Scan) -> DateCheck:
    """The recipe's dates: missing when a file is absent, or when no GRIB field is valid at them."""
    found = set(scan.dates().tolist())
    missing = dict(files.absent)
    for d in files.grib_dates:
        if d.item() not in found:
            missing[d] = "no field valid at it in its files"
    expected = recipe.dates.all()
    declared = sorted(recipe.dates.missing_set())
    step = recipe.dates.frequency
    wanted = [d for d in files.grib_dates if d.item() in found]
    lacking = incomplete(scan, wanted, _params(recipe))
    return DateCheck(expected, step, dict(sorted(missing.items())), declared, [], lacking)


# --- the report ----------------------------------------------------------------------------------


def _some(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _date_lines(dates: DateCheck) -> list[str]:
    exp = dates.expected
    every = f", every {format_frequency(dates.frequency)}" if dates.frequency is not None else ""
    span = f"{iso(exp[0])} .. {iso(exp[-1])}{every} ({len(exp)})" if len(exp) else "none"
    lines = [f"dates       {span}"]
    missing = [f"{iso(d)} ({why})" for d, why in dates.missing.items()]
    lines.append(f"missing     {len(missing)}" + (f": {_some(missing)}" if missing else ""))
    if dates.declared:
        declared = _some([iso(d) for d in dates.declared])
        lines.append(f"declared    {len(dates.declared)} missing in the recipe: {declared}")
    if dates.irregular:
        lines.append(f"irregular   {len(dates.irregular)} off the step: {_some([iso(d) for d in dates.irregular])}")
    lacks = [f"{iso(d)} lacks {' '.join(v)}" for d, v in dates.incomplete.items()]
    lines.append(f"incomplete  {len(lacks)} dates" + (f": {_some(lacks)}" if lacks else ""))
    return lines


def _grid_lines(scan: Scan) -> list[str]:
    g = scan.grid
    if g is None:
        return ["grid        no fields"]
    shape = " x ".join(str(n) for n in g.shape) + " = " if len(g.shape) > 1 else ""
    rows = f", rows ~{g.spacing_km:.0f} km apart" if np.isfinite(g.spacing_km) else ""
    lines = [f"grid        {g.kind} {g.name}, {shape}{g.points} points{rows}"]
    others = sorted({p for v in scan.variables.values() for p in v.points} - {g.points})
    if others:
        lines.append(f"  ! fields on other grids too: {', '.join(map(str, others))} points")
    return lines


def _variable_lines(scan: Scan) -> list[str]:
    rows = sorted(scan.variables.values(), key=lambda v: (v.name, v.step_type))
    lines = [
        f"variables   {len(rows)}",
        f"  {'variable':<12} {'level type':<18} {'level':>5}  {'step':<8} {'fields':>7} {'dates':>6} "
        f"{'members':>7}  {'missing points':>14} {'in fields':>9}  units",
    ]
    for v in rows:
        lines.append(
            f"  {v.name:<12} {v.level_type:<18} {v.level:>5}  {v.step_type:<8} {v.fields:>7} {len(v.dates):>6} "
            f"{len(v.members):>7}  {v.missing:>14} {v.fields_with_missing:>9}  {v.units}"
        )
    return lines


def report_archive(target: str, scan: Scan, sizes: Sizes) -> str:
    dates = archive_dates(scan)
    lines = [f"archive     {target}: {plural(len(scan.files), 'file')}, {scan.messages} messages, {human(scan.size)}"]
    lines += _date_lines(dates) + _grid_lines(scan) + _variable_lines(scan)
    lines += sizes.lines("float32, as a dataset stores them")
    return "\n".join(lines)


def inspect_archive(target: str, batch_size: int = 4, sample_dates: int = 2) -> str:
    """``wxpipe inspect`` on a GRIB file, a folder of them or a glob."""
    scan = scan_grib(grib_files(target))
    names = {v.name for v in scan.variables.values()}
    points = scan.grid.points if scan.grid else 0
    n_dates = len(archive_dates(scan).expected)
    sizes = Sizes(len(names), scan.members(), points, 4, n_dates, sample_dates, batch_size)
    return report_archive(target, scan, sizes)


def inspect_recipe(path: str | Path, batch_size: int = 4, sample_dates: int = 2) -> str:
    """``wxpipe inspect`` on a recipe: the files its dates need, surveyed before ``init`` reads them."""
    recipe = load_recipe(path)
    files = recipe_files(recipe)
    scan = scan_grib(files.grib)
    dates = recipe_dates(recipe, files, scan)
    other_size = sum(tree_size(p)[0] if p.is_dir() else p.stat().st_size for p in files.other)
    variables = recipe.variables()
    members = _members(recipe, scan)
    points = scan.grid.points if scan.grid else 0
    itemsize = np.dtype(recipe.output.dtype).itemsize
    sizes = Sizes(len(variables), members, points, itemsize, len(dates.expected), sample_dates, batch_size)
    n_files = len(files.grib) + len(files.other)
    lines = [
        f"recipe      {path}: {plural(len(variables), 'variable')}: {' '.join(variables)}",
        f"files       {n_files} ({len(files.grib)} GRIB, {len(files.other)} netCDF/Zarr), "
        f"{scan.messages} GRIB messages, {human(scan.size + other_size)}",
    ]
    if files.other:
        lines.append("  netCDF/Zarr files are counted, not surveyed: `wxpipe recipe validate` reads their first date")
    lines += _date_lines(dates) + _grid_lines(scan) + _variable_lines(scan)
    lines += sizes.lines(recipe.output.dtype)
    return "\n".join(lines)


def _file_sources(recipe: Recipe) -> list[SourceSpec]:
    return [s for b in recipe.plan() for s in b.sources if not isinstance(s.source, Forcings)]


def _params(recipe: Recipe) -> set[str]:
    """The params the recipe reads from files, as the files name them (before renames)."""
    return {p for s in _file_sources(recipe) for p in s.source.param}


def _members(recipe: Recipe, scan: Scan) -> int:
    """The dataset's ensemble members: those a source selects, else those the files hold of its params."""
    selecting = (GribSource, NetcdfSource, XarrayZarrSource)
    chosen = [len(s.source.number) for s in _file_sources(recipe) if isinstance(s.source, selecting)]
    chosen = [n for n in chosen if n]
    if chosen:
        return max(chosen)
    params = _params(recipe)
    return max([len(v.members) for v in scan.variables.values() if v.param in params] or [1])


def is_store(target: str) -> bool:
    """A Zarr group on disk (a dataset or a layout), Zarr v2 or v3."""
    p = Path(target)
    return p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists())


def inspect(target: str, batch_size: int = 4, sample_dates: int = 2) -> str:
    """``wxpipe inspect TARGET`` before a build: a recipe (.yaml/.yml), or GRIB file(s)."""
    if Path(target).suffix.lower() in (".yaml", ".yml"):
        return inspect_recipe(target, batch_size, sample_dates)
    return inspect_archive(target, batch_size, sample_dates)


# --- wxpipe recipe validate: the first date's files hold what the recipe asks for ------------------


def _held(messages: Sequence[Message]) -> str:
    return ", ".join(sorted({m.param for m in messages}))


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
            problem = f"param {p}: no field valid at {iso(date)} in {where} (valid: {_some(valid)})"
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
        chosen = [m for m in instant if m.type_of_level in _SFC_LEVELS]
        if not chosen:
            return [], f"param {p} is not a surface field in {where} (it is on {on}): use levtype pl"
    members = sorted({m.number for m in chosen})
    lost = [n for n in src.number if n not in members]
    if lost:
        return [], f"param {p} member {_ints(lost)} not in {where} (it holds members: {_ints(members)})"
    return chosen, None


def _ints(values: Sequence[int]) -> str:
    return ", ".join(map(str, values))


def check_first_date(recipe: Recipe, name: str | Path) -> list[str]:
    """Open each concat item's first date's files and refuse what they do not hold (a WxpipeError).

    Returns notes on what could not be checked: files that do not exist yet (an archive that an
    earlier rule writes). The message of every problem starts ``recipe NAME: input...: ``.
    """
    notes: list[str] = []
    problems: list[str] = []
    declared = recipe.dates.missing_set()
    naming = recipe.build.variable_naming
    cache = GribCache()
    try:
        for branch in recipe.plan():
            first = next((d for d in recipe.dates.all() if branch.covers(d) and d not in declared), None)
            if first is None:
                continue
            for spec in branch.sources:
                if isinstance(spec.source, Forcings):
                    continue
                prefix = f"recipe {name}: {spec.reference}: "
                if isinstance(spec.source, XarrayZarrSource) and "://" in spec.source.url.removeprefix("file://"):
                    notes.append(f"{spec.reference}: not checked: {spec.source.url} is remote")
                    continue
                try:
                    files = _source_files(spec, first, naming)
                except WxpipeError as exc:
                    notes.append(f"{spec.reference}: not checked: {exc}")
                    continue
                absent = [p for p in files if not p.exists()]
                if absent:
                    notes.append(f"{spec.reference}: not checked: {absent[0]} does not exist (yet)")
                    continue
                try:
                    found = _source_problems(spec, first, files, naming, cache)
                except WxpipeError as exc:
                    found = [str(exc)]
                problems += [prefix + p for p in found]
            cache.clear()
    finally:
        cache.clear()
    if problems:
        raise WxpipeError("\n".join(problems))
    return notes


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
    from .sources.xarray_source import XarraySource

    reader = XarraySource(src, naming)  # type: ignore[arg-type]
    try:
        reader.read(date)
    finally:
        reader.close()
    return []
