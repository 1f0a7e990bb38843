"""The input tree flattened: date ranges and the leaf sources (with renames) that give them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..timeutil import seconds
from ..yamlio import Location
from ._input import PipeStep, SourceEntry, _Action
from ._sources import LeafSource, source_levels

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

    def names(self, naming: str) -> dict[str, str]:
        """Variable names as the source reader makes them -> names in the dataset (renames applied)."""
        return dict(self._pairs(naming))

    def variables(self, naming: str) -> list[str]:
        """This source's variables as named in the dataset."""
        return [new for _, new in self._pairs(naming)]

    def _pairs(self, naming: str) -> list[tuple[str, str]]:
        levels = source_levels(self.source)
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
