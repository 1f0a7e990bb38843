"""Know your data before building: ``wxpipe inspect`` on a GRIB archive or a recipe's input files.

The questions ECMWF's ML data-handling material asks of a dataset before anyone trains on it: how
big is it, in how many files and fields; which variables, levels and members does it hold; which
dates are missing; how many values are missing; on what grid and at what resolution; and what do
one date, one training sample and one batch weigh in memory.

The survey is split by question: what GRIB files hold (:mod:`._inventory`), which files a recipe
needs (:mod:`._files`), the printed report (:mod:`._report`), and ``wxpipe recipe validate``'s
check that the first date's files hold what the recipe asks for (:mod:`._validate`).
"""

from __future__ import annotations

from pathlib import Path

from ._files import RecipeFiles, recipe_dates, recipe_files
from ._inventory import (
    GRIB_SUFFIXES,
    KM_PER_DEGREE,
    DateCheck,
    GridSummary,
    Scan,
    Variable,
    archive_dates,
    frequency_of,
    grib_files,
    incomplete,
    scan_grib,
)
from ._report import inspect_archive, inspect_recipe, report_archive
from ._validate import check_first_date, grib_problems

__all__ = [
    "GRIB_SUFFIXES",
    "KM_PER_DEGREE",
    "DateCheck",
    "GridSummary",
    "RecipeFiles",
    "Scan",
    "Variable",
    "archive_dates",
    "check_first_date",
    "frequency_of",
    "grib_files",
    "grib_problems",
    "incomplete",
    "inspect",
    "inspect_archive",
    "inspect_recipe",
    "is_store",
    "recipe_dates",
    "recipe_files",
    "report_archive",
    "scan_grib",
]


def is_store(target: str) -> bool:
    """A Zarr group on disk (a dataset or a layout), Zarr v2 or v3."""
    p = Path(target)
    return p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists())


def inspect(target: str, batch_size: int = 4, sample_dates: int = 2) -> str:
    """``wxpipe inspect TARGET`` before a build: a recipe (.yaml/.yml), or GRIB file(s)."""
    if Path(target).suffix.lower() in (".yaml", ".yml"):
        return inspect_recipe(target, batch_size, sample_dates)
    return inspect_archive(target, batch_size, sample_dates)
