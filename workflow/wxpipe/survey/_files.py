"""The files a recipe's dates need, and what its sources ask of them (params, members)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WxpipeError
from ..recipe import AccumulationsSource, Forcings, GribSource, NetcdfSource, Recipe, SourceSpec, XarrayZarrSource
from ..sources.paths import matching_files
from ..timeutil import iso
from ._inventory import DateCheck, Scan, incomplete


@dataclass
class RecipeFiles:
    """The files a recipe's dates need, and the dates whose files are absent."""

    grib: list[Path] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)
    """netCDF files and Zarr stores (read through xarray)."""
    absent: dict[np.datetime64, str] = field(default_factory=dict)
    grib_dates: list[np.datetime64] = field(default_factory=list)
    """Dates with every file present that GRIB sources give."""


def source_files(spec: SourceSpec, date: np.datetime64, naming: str) -> list[Path]:
    """The files ``spec`` reads for ``date``; a glob without a match is an error naming it."""
    src = spec.source
    if isinstance(src, (GribSource, AccumulationsSource)):
        return matching_files(src.path, date)
    from ..sources.xarray_source import XarraySource  # imports xarray: only for such sources

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
                paths = source_files(spec, d, naming)
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
    lacking = incomplete(scan, wanted, params_read(recipe))
    return DateCheck(expected, step, dict(sorted(missing.items())), declared, [], lacking)


def _file_sources(recipe: Recipe) -> list[SourceSpec]:
    return [s for b in recipe.plan() for s in b.sources if not isinstance(s.source, Forcings)]


def params_read(recipe: Recipe) -> set[str]:
    """The params the recipe reads from files, as the files name them (before renames)."""
    return {p for s in _file_sources(recipe) for p in s.source.param}


def members(recipe: Recipe, scan: Scan) -> int:
    """The dataset's ensemble members: those a source selects, else those the files hold of its params."""
    selecting = (GribSource, NetcdfSource, XarrayZarrSource)
    chosen = [len(s.source.number) for s in _file_sources(recipe) if isinstance(s.source, selecting)]
    chosen = [n for n in chosen if n]
    if chosen:
        return max(chosen)
    params = params_read(recipe)
    return max([len(v.members) for v in scan.variables.values() if v.param in params] or [1])
