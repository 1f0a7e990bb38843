"""``wxpipe inspect`` before a build: the survey of an archive or of a recipe's files, as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import some
from ..fsutil import tree_size
from ..progress import human
from ..recipe import load_recipe
from ..summary import Sizes, plural
from ..timeutil import format_frequency, iso
from ._files import members, recipe_dates, recipe_files
from ._inventory import DateCheck, Scan, archive_dates, grib_files, scan_grib


def _date_lines(dates: DateCheck) -> list[str]:
    exp = dates.expected
    every = f", every {format_frequency(dates.frequency)}" if dates.frequency is not None else ""
    span = f"{iso(exp[0])} .. {iso(exp[-1])}{every} ({len(exp)})" if len(exp) else "none"
    lines = [f"dates       {span}"]
    missing = [f"{iso(d)} ({why})" for d, why in dates.missing.items()]
    lines.append(f"missing     {len(missing)}" + (f": {some(missing)}" if missing else ""))
    if dates.declared:
        declared = some([iso(d) for d in dates.declared])
        lines.append(f"declared    {len(dates.declared)} missing in the recipe: {declared}")
    if dates.irregular:
        lines.append(f"irregular   {len(dates.irregular)} off the step: {some([iso(d) for d in dates.irregular])}")
    lacks = [f"{iso(d)} lacks {' '.join(v)}" for d, v in dates.incomplete.items()]
    lines.append(f"incomplete  {len(lacks)} dates" + (f": {some(lacks)}" if lacks else ""))
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
    points = scan.grid.points if scan.grid else 0
    itemsize = np.dtype(recipe.output.dtype).itemsize
    n_members = members(recipe, scan)
    sizes = Sizes(len(variables), n_members, points, itemsize, len(dates.expected), sample_dates, batch_size)
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
