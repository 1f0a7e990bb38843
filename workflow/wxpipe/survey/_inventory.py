"""What a set of GRIB files holds: every message's header grouped by variable, the grid, the dates.

Files are read with the reader the build uses (:class:`~wxpipe.sources.gribfile.GribFile`), headers
only: the bitmap's count of missing points is a header key, so no value is decoded and the survey
sees what ``init`` and ``load`` will see.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import WxpipeError
from ..progress import progress
from ..sources.grib import SURFACE_LEVELS
from ..sources.gribfile import GribFile, Message
from ..timeutil import date_range

GRIB_SUFFIXES = (".grib", ".grib1", ".grib2", ".grb", ".grb1", ".grb2", ".gb1", ".gb2")
KM_PER_DEGREE = 111.195  # along a meridian, on a sphere of the Earth's mean radius


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
        return self.param if self.level_type in SURFACE_LEVELS else f"{self.param}_{self.level}"


class GridSummary(NamedTuple):
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
    grid: GridSummary | None = None

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


def _grid_summary(gf: GribFile) -> GridSummary:
    """The grid of a file's first message; rows' spacing from its distinct latitudes."""
    kind = str(gf.key(0, "gridType"))
    points = gf.count(0, "numberOfDataPoints")
    try:
        lats, _, shape, resolution = gf.grid()
    except WxpipeError:  # a grid without coordinates (spherical harmonics, ...)
        return GridSummary(kind, kind, points, (points,), float("nan"))
    rows = np.unique(np.round(lats, 6))
    spacing = float(np.median(np.diff(rows))) * KM_PER_DEGREE if len(rows) > 1 else float("nan")
    name = f"{resolution:g} deg" if isinstance(resolution, float) else str(resolution)
    return GridSummary(kind, name, points, tuple(shape), spacing)


def scan_grib(files: Sequence[Path]) -> Scan:
    """Read every message's header of ``files`` (no values decoded), with a progress bar."""
    out = Scan(files=list(files))
    with progress(total=len(files), desc="inspect", unit="file") as bar:
        for path in files:
            gf = GribFile.scan(path)
            try:
                out.size += path.stat().st_size
                if out.grid is None:
                    out.grid = _grid_summary(gf)
                for i, m in enumerate(gf.messages):
                    out.add(m, gf.count(i, "numberOfDataPoints"), gf.count(i, "numberOfMissing"))
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
