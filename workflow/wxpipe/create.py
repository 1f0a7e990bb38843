"""Building a dataset from a recipe: ``init``, ``load --part i/N``, ``finalise`` (and all three)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import dataset
from .dataset import Part
from .errors import WxpipeError
from .recipe import Recipe, load_recipe
from .sources.grib import GribFile, expand_path, read_date, variable_names
from .timeutil import iso

log = logging.getLogger(__name__)


def _check_files(recipe: Recipe, dates: np.ndarray) -> None:
    """Every file for a date not declared missing exists, before anything is written."""
    missing = recipe.dates.missing_set()
    for d in dates:
        if d in missing:
            continue
        for entry in recipe.input.join:
            path = expand_path(entry.source.path, d)
            if not path.exists():
                raise WxpipeError(
                    f"date {iso(d)}: input file {path} does not exist (and the date is not declared missing)"
                )


def init(recipe_path: str | Path, store: str | Path) -> None:
    recipe = load_recipe(recipe_path)
    dates = recipe.dates.all()
    _check_files(recipe, dates)
    missing = recipe.dates.missing_set()
    first = next(d for d in dates if d not in missing)
    lats, lons, shape, resolution = GribFile(expand_path(recipe.input.join[0].source.path, first)).grid()
    dataset.init(store, recipe, variable_names(recipe), lats, lons, shape, resolution, recipe_path)


def load(recipe_path: str | Path, store: str | Path, part: Part) -> range:
    """Write this part's dates; chunks already loaded by an interrupted run are kept (resume)."""
    recipe = load_recipe(recipe_path)
    ds = dataset.open_dataset(store)
    chunk = ds.data.chunks[0]
    rng = part.dates(len(ds.dates), chunk)
    _check_files(recipe, ds.dates[rng.start : rng.stop])
    done = dataset.loaded(store)
    missing = recipe.dates.missing_set()
    shape = (len(ds.variables), 1, len(ds.latitudes))
    todo = [c for c in dataset.chunks_of(rng, chunk) if not done[c.start : c.stop].all()]
    log.info("part %d/%d: dates %d..%d, %d chunks to write", part.index, part.count, rng.start, rng.stop - 1, len(todo))
    with tqdm(total=sum(len(c) for c in todo), desc=f"load {part.index}/{part.count}", unit="date") as bar:
        for c in todo:
            block = np.full((len(c), *shape), np.nan, dtype=np.float32)
            for k, i in enumerate(c):
                d = ds.dates[i]
                if d not in missing:
                    fields = read_date(recipe, d, ds.variables)
                    _check_nans(fields, ds.variables, d, recipe.build.allow_nans)
                    block[k, :, 0, :] = fields
                bar.update(1)
            dataset.write_dates(store, c.start, block)
    return rng


def _check_nans(fields: np.ndarray, variables: list[str], date: np.datetime64, allow: bool) -> None:
    if allow:
        return
    bad = [v for v, row in zip(variables, fields, strict=True) if np.isnan(row).any()]
    if bad:
        raise WxpipeError(f"date {iso(date)}: NaN values in {', '.join(bad)} (set build.allow_nans to accept them)")


def create(recipe_path: str | Path, store: str | Path) -> dataset.Dataset:
    init(recipe_path, store)
    load(recipe_path, store, Part(1, 1))
    return dataset.finalise(store)
