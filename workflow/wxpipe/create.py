"""Building a dataset from a recipe: ``init``, ``load --part i/N``, ``finalise`` (and all three).

Every file a part needs is checked before anything is written; a part writes whole chunks, then
flags their dates as loaded, so an interrupted part resumes where it stopped and a date is never
flagged before its data is on disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import dataset
from .dataset import LoadPlan, Part, plan_load, write_unit_of
from .errors import WxpipeError
from .progress import progress
from .recipe import AccumulationsSource, Forcings, GribSource, Recipe, SourceSpec, load_recipe
from .sources import grib
from .sources.base import FieldSource
from .sources.forcings import ForcingsSource
from .sources.grib import GribCache, GribReader
from .timeutil import iso
from .yamlio import Location

log = logging.getLogger(__name__)
# GRIB headers resolved by ``init``, for the load jobs (build bookkeeping, like the loaded flags)
GRIB_HEADERS = f"{dataset.BUILD}/grib_headers.json"

GridInfo = tuple[np.ndarray, np.ndarray, list[int], str | float]
"""Latitudes, longitudes, field shape and resolution of the dataset's grid."""


class Inputs:
    """The recipe's sources, ready to read dates: one reader per leaf of the input tree."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.naming = recipe.build.variable_naming
        self.missing = recipe.dates.missing_set()
        self.cache = GribCache()
        self._readers: dict[Location, FieldSource] = {}
        self._grid: GridInfo | None = None

    def close(self) -> None:
        self.cache.clear()
        for r in self._readers.values():
            close = getattr(r, "close", None)  # xarray sources hold open datasets
            if close is not None:
                close()

    def variables(self) -> list[str]:
        """Variables in anemoi-datasets' order (sorted by name)."""
        return self.recipe.variables()

    def _reader(self, spec: SourceSpec) -> FieldSource:
        if spec.where not in self._readers:
            src = spec.source
            reader: FieldSource
            if isinstance(src, (GribSource, AccumulationsSource)):
                reader = GribReader(src, self.naming, self.cache)
            elif isinstance(src, Forcings):  # constants too: anemoi's alias of forcings
                lats, lons, *_ = self.grid()
                reader = ForcingsSource(src, lats, lons)
            else:
                from .sources.xarray_source import XarraySource  # imports xarray: only when a recipe needs it

                reader = XarraySource(src, self.naming)
            self._readers[spec.where] = reader
        return self._readers[spec.where]

    def grid(self) -> GridInfo:
        """The dataset's grid: that of the first file-backed source at the first date it covers."""
        if self._grid is None:
            for d in self.recipe.dates.all():
                if d in self.missing:
                    continue
                for spec in self.recipe.sources_for(d):
                    if isinstance(spec.source, Forcings):
                        continue
                    reader = self._reader(spec)
                    if isinstance(reader, GribReader):
                        self._grid = self.cache.get(reader.files(d)[0]).grid()
                    else:
                        self._grid = reader.grid(d)  # type: ignore[attr-defined]
                    break
                break
        if self._grid is None:
            raise WxpipeError("recipe: no source reads a grid from a file (forcings need a grid to be computed on)")
        return self._grid

    def files(self, dates: np.ndarray) -> list[Path]:
        """The files read for ``dates`` (declared missing dates excluded), in order, without repeats."""
        out: dict[Path, None] = {}
        for d in dates:
            if d not in self.missing:
                for spec in self.recipe.sources_for(d):
                    if not isinstance(spec.source, Forcings):
                        out.update(dict.fromkeys(self._reader(spec).files(d)))
        return list(out)

    def check_files(self, dates: np.ndarray) -> None:
        """Every file for a date not declared missing exists, before anything is written."""
        for d in dates:
            if d in self.missing:
                continue
            for spec in self.recipe.sources_for(d):
                if isinstance(spec.source, Forcings):
                    continue
                for path in self._reader(spec).files(d):
                    if not path.exists():
                        raise WxpipeError(
                            f"date {iso(d)}: input file {path} does not exist (and the date is not declared missing)"
                        )

    def read(self, date: np.datetime64, variables: list[str]) -> np.ndarray:
        """The fields of ``date`` as (variables, ensembles, values) float32, renames applied."""
        fields = self._fields(date)
        out = np.empty((len(variables), *self._shape(fields, variables, date)), dtype=np.float32)
        self._fill(out, fields, variables)
        return out

    def read_into(self, out: np.ndarray, date: np.datetime64, variables: list[str]) -> None:
        """Like :meth:`read`, into ``out`` (variables, ensembles, values): no fresh memory per date."""
        fields = self._fields(date)
        shape = self._shape(fields, variables, date)
        if shape != out.shape[1:]:
            raise WxpipeError(f"date {iso(date)}: fields are {shape} (ensembles, values), the dataset {out.shape[1:]}")
        self._fill(out, fields, variables)

    def _fields(self, date: np.datetime64) -> dict[str, np.ndarray]:
        fields: dict[str, np.ndarray] = {}
        try:
            for spec in self.recipe.sources_for(date):
                names = spec.names(self.naming)
                for name, values in self._reader(spec).read(date).items():
                    fields[names.get(name, name)] = values
        finally:
            self.cache.clear()
        return fields

    @staticmethod
    def _shape(fields: dict[str, np.ndarray], variables: list[str], date: np.datetime64) -> tuple[int, int]:
        """(ensembles, values) of a date's fields; sources must agree (one member broadcasts)."""
        members = {v: fields[v].shape[0] for v in variables}
        n_ens = max(members.values())
        if any(n not in (1, n_ens) for n in members.values()):
            raise WxpipeError(f"date {iso(date)}: sources disagree on the number of ensemble members: {members}")
        sizes = {v: fields[v].shape[-1] for v in variables}
        if len(set(sizes.values())) != 1:
            raise WxpipeError(f"date {iso(date)}: fields are on different grids (points per variable: {sizes})")
        return n_ens, sizes[variables[0]]

    @staticmethod
    def _fill(out: np.ndarray, fields: dict[str, np.ndarray], variables: list[str]) -> None:
        for k, v in enumerate(variables):
            out[k] = fields[v]  # a single member (e.g. a forcing) broadcasts over the ensemble

    def metadata(self) -> dict[str, dict[str, object]]:
        """Per dataset variable: what its reader saw (units, GRIB keys), under the renamed name."""
        out: dict[str, dict[str, object]] = {}
        for spec in {s.where: s for b in self.recipe.plan() for s in b.sources}.values():
            names = spec.names(self.naming)
            if spec.where in self._readers:
                for name, meta in self._readers[spec.where].metadata().items():
                    out[names.get(name, name)] = meta
        return out

    def constant_fields(self) -> list[str]:
        """Variables that do not depend on the date (date-independent forcings), renamed."""
        out = []
        for spec in {s.where: s for b in self.recipe.plan() for s in b.sources}.values():
            reader = self._readers.get(spec.where)
            if isinstance(reader, ForcingsSource):
                names = spec.names(self.naming)
                out += [names.get(v, v) for v in reader.constant_variables()]
        return sorted(out)


@contextmanager
def open_inputs(recipe: Recipe) -> Iterator[Inputs]:
    inputs = Inputs(recipe)
    try:
        yield inputs
    finally:
        inputs.close()


def input_files(recipe: Recipe, dates: np.ndarray) -> list[Path]:
    with open_inputs(recipe) as inputs:
        return inputs.files(dates)


def part_sources(recipe_path: str | Path, dates: np.ndarray, threads: int = 1) -> list[dict[str, Any]]:
    """What a part read, for its lineage record: per distinct file of ``dates`` (paths as the recipe resolves
    them), its size and SHA-256; a Zarr store, its size, file count and tree digest. Remote URLs are left out.

    Each file is hashed once, ``threads`` at a time: one more read of the part's share of the archive, at disk
    speed and often from the page cache the load just filled, far cheaper than decoding it.
    """
    from .lineage import describe_file, describe_tree

    def describe(path: Path) -> dict[str, Any]:
        return describe_tree(path) if path.is_dir() else describe_file(path)

    files = input_files(load_recipe(recipe_path), dates)
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        return list(pool.map(describe, files))


def init(recipe_path: str | Path, store: str | Path) -> None:
    """Check every file, read the first date (grid, ensembles, units), write the empty store."""
    recipe = load_recipe(recipe_path)
    dates = recipe.dates.all()
    with open_inputs(recipe) as inputs:
        inputs.check_files(dates)
        first = next(d for d in dates if d not in inputs.missing)
        variables = inputs.variables()
        lats, lons, shape, resolution = inputs.grid()
        fields = inputs.read(first, variables)
        if len(lats) != fields.shape[-1]:
            raise WxpipeError(f"date {iso(first)}: fields have {fields.shape[-1]} points but the grid {len(lats)}")
        dataset.init(
            store,
            recipe,
            variables,
            lats,
            lons,
            shape,
            resolution,
            recipe_path,
            ensembles=fields.shape[1],
            variables_metadata=inputs.metadata(),
            constant_fields=inputs.constant_fields(),
        )
    grib.save_headers(Path(store) / GRIB_HEADERS)


def load(recipe_path: str | Path, store: str | Path, part: Part, threads: int = 1, resume: bool = False) -> range:
    """Write this part's chunks (all of them: a rerun part rewrites exactly its own): :func:`plan_load`,
    then :func:`run_load`. Returns the part's dates.

    With ``resume``, chunks an interrupted run already flagged as loaded are kept. That is for a
    part known to be interrupted; a part rerun because its inputs changed must rewrite everything.
    """
    recipe = load_recipe(recipe_path)
    ds = dataset.open_dataset(store)
    grib.load_headers(Path(store) / GRIB_HEADERS)
    plan = plan_load(part, len(ds.dates), write_unit_of(ds.data), dataset.loaded(store) if resume else None)
    if resume and ds.attrs.get("build_complete"):
        log.info("part %d/%d: the dataset is complete, nothing to resume", part.index, part.count)
        return plan.dates
    log.info(
        "part %d/%d: dates %d..%d, %d chunks to write, %d thread(s)",
        *(part.index, part.count, plan.dates.start, plan.dates.stop - 1, len(plan.todo), threads),
    )
    run_load(plan, recipe, ds, threads)
    return plan.dates


def run_load(plan: LoadPlan, recipe: Recipe, ds: dataset.Dataset, threads: int = 1) -> None:
    """Read and write the plan's chunks, after checking every file its dates need.

    With ``threads`` > 1, whole chunks are read, decoded and written by that many threads at once
    (ecCodes and the codecs release the GIL); each thread has its own open files and a reused buffer
    (fresh memory costs more than decoding). With 1 thread, nothing runs beside the main one, so
    parts run as separate jobs scale with the cores.
    """
    writer = dataset.Writer(ds.path, plan.dates)
    shape = (plan.unit, *ds.data.shape[1:])
    with contextlib.ExitStack() as stack:
        stack.callback(writer.close)  # flags what was written, even when a date fails
        workers = [(stack.enter_context(open_inputs(recipe)), np.empty(shape, ds.data.dtype)) for _ in range(threads)]
        workers[0][0].check_files(ds.dates[plan.dates.start : plan.dates.stop])
        idle: queue.SimpleQueue[tuple[Inputs, np.ndarray]] = queue.SimpleQueue()
        for w in workers:
            idle.put(w)
        desc = f"load {plan.part.index}/{plan.part.count}"
        bar = stack.enter_context(progress(total=sum(len(c) for c in plan.todo), desc=desc, unit="date"))

        def one(c: range) -> None:
            inputs, buffer = idle.get()
            try:
                block = buffer[: len(c)]
                for k, i in enumerate(c):
                    _read_date(inputs, block[k], ds.dates[i], ds.variables)
                writer.write(c.start, block)
                bar.update(len(c))
            finally:
                idle.put((inputs, buffer))

        if threads == 1:
            for c in plan.todo:
                one(c)
        else:
            with ThreadPoolExecutor(threads) as pool:
                for f in [pool.submit(one, c) for c in plan.todo]:
                    f.result()


def _read_date(inputs: Inputs, out: np.ndarray, date: np.datetime64, variables: list[str]) -> None:
    """One date into ``out``: NaN for a declared missing date, else its fields, NaN-checked."""
    if date in inputs.missing:
        out[...] = np.nan
        return
    inputs.read_into(out, date, variables)
    _refuse_nans_at_date(out, variables, date, inputs.recipe.build.allow_nans)


def _refuse_nans_at_date(fields: np.ndarray, variables: list[str], date: np.datetime64, allow: bool) -> None:
    """Raise naming the variables of ``fields`` (one date) that hold NaNs, unless ``allow``."""
    if allow or not np.isnan(fields.sum()):  # no NaN in the sum: none in the fields (one pass, no mask)
        return
    bad = [v for v, row in zip(variables, fields, strict=True) if np.isnan(row).any()]
    if bad:
        raise WxpipeError(f"date {iso(date)}: NaN values in {', '.join(bad)} (set build.allow_nans to accept them)")


def create(
    recipe_path: str | Path,
    store: str | Path,
    threads: int = 1,
    overwrite: bool = False,
    statistics: bool = True,
) -> dataset.Dataset:
    """``init``, ``load`` and ``finalise`` in one process, then the statistics, as anemoi's ``create`` does.

    A complete store is replaced only with ``overwrite``; an unfinished one made from the same recipe
    is resumed (the chunks it flagged are kept), and one from another recipe is refused.
    """
    store = Path(store)
    resume = _resumable(recipe_path, store, overwrite)
    if not resume:
        if store.exists():
            shutil.rmtree(store)
        init(recipe_path, store)
    load(recipe_path, store, Part(1, 1), threads, resume=resume)
    ds = dataset.finalise(store)
    if statistics:
        from . import statistics as stats

        stats.write(store, stats.of_dataset(ds, threads=threads))
        ds = dataset.open_dataset(store)
    return ds


def _resumable(recipe_path: str | Path, store: Path, overwrite: bool) -> bool:
    """Whether ``store`` is an unfinished build of this recipe; refuse what must not be replaced silently."""
    if not store.exists() or overwrite:
        return False
    if store.is_dir() and not any(store.iterdir()):
        return False
    try:
        ds = dataset.open_dataset(store)
    except (WxpipeError, KeyError):
        raise WxpipeError(f"{store}: exists and is not a dataset; --overwrite replaces it") from None
    if ds.attrs.get("build_complete", True):
        raise WxpipeError(f"{store}: a complete dataset is already there; --overwrite replaces it")
    recipe = load_recipe(recipe_path)
    if ds.attrs.get("recipe") != json.loads(recipe.model_dump_json()):
        raise WxpipeError(f"{store}: an unfinished build of another recipe; --overwrite starts it again")
    log.info("%s: resuming an unfinished build (%d dates loaded)", store, int(dataset.loaded(store).sum()))
    return True
