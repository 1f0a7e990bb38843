"""The input tree: join, concat, pipe and the rename filter."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
)

from .._strict import StrictModel
from ._anemoi import refuse_keys, unsupported
from ._base import ConcatDates, Problem, _fail
from ._sources import AccumulationsSource, Constants, Forcings, GribSource, LeafSource, NetcdfSource, XarrayZarrSource

# --- the input tree ----------------------------------------------------------------------------


class Rename(StrictModel):
    """anemoi's ``rename`` filter, dictionary form: ``rename: {param: {old: new}}``.

    anemoi renames field metadata before variables are named, so ``t -> temperature`` turns
    ``t_850`` into ``temperature_850``. Only ``param`` renames are implemented.
    """

    param: dict[str, str] = Field(min_length=1)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _anemoi_forms(cls, data: Any) -> Any:
        """anemoi renames any metadata key, and by format strings too; wxpipe renames params by name."""
        if isinstance(data, dict):
            if isinstance(data.get("param"), str):
                unsupported([(("param",), "rename with a format string (write param: {old: new})")])
            refuse_keys(data, ["param"], {k: f"renaming {k} (wxpipe renames param only)" for k in data})
        return data


class _Action(StrictModel):
    """One item of the input tree: exactly one of its keys is given."""

    model_config = ConfigDict(populate_by_name=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _anemoi_actions(cls, data: Any) -> Any:
        """An anemoi source or filter that wxpipe lacks is refused as such, not as a typo."""
        known = [k for n, info in cls.model_fields.items() for k in (n, info.alias) if k]
        refuse_keys(data, known, kind="action")
        return data

    @pydantic.model_serializer(mode="wrap")
    def _as_written(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dump only the key given, under its YAML name, so a stored recipe reads like the file."""
        data = handler(self)
        names = {n: info.alias or n for n, info in type(self).model_fields.items()}
        return {names.get(k, k): v for k, v in data.items() if v is not None}

    def action(self) -> tuple[str, Any]:
        """The single key given (as written in YAML) and its value."""
        given = self._given()
        assert len(given) == 1, given
        return given[0]

    def _given(self) -> list[tuple[str, Any]]:
        out = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name != "dates" and value is not None:
                out.append((info.alias or name, value))
        return out

    def _exactly_one(self, what: str) -> None:
        keys = [k for k, _ in self._given()]
        if len(keys) != 1:
            allowed = ", ".join(info.alias or n for n, info in type(self).model_fields.items() if n != "dates")
            raise ValueError(f"{what} names exactly one of {allowed}; got {keys or 'none'}")


class _Sources(_Action):
    grib: GribSource | None = None
    accumulations: AccumulationsSource | None = None
    netcdf: NetcdfSource | None = None
    xarray_zarr: XarrayZarrSource | None = Field(None, alias="xarray-zarr")
    forcings: Forcings | None = None
    constants: Constants | None = None

    @property
    def leaf(self) -> LeafSource | None:
        """The source of this item, or None when it is a join or a pipe."""
        key, value = self.action()
        return value if key not in ("join", "pipe", "rename", "concat") else None


class SourceEntry(_Sources):
    """A ``join`` item: one source, or a ``pipe``."""

    pipe: Pipe | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> SourceEntry:
        self._exactly_one("each join item")
        return self

    @property
    def source(self) -> GribSource | AccumulationsSource:
        """The GRIB source of this item (the original join-of-GRIB shape); prefer :meth:`Recipe.plan`."""
        leaf = self.leaf
        if not isinstance(leaf, (GribSource, AccumulationsSource)):
            raise TypeError(f"join item is {self.action()[0]}, not grib or accumulations: use Recipe.plan()")
        return leaf


class PipeStep(_Sources):
    """A ``pipe`` step: a source (or a join) first, then filters."""

    join: Join | None = None
    rename: Rename | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> PipeStep:
        self._exactly_one("each pipe step")
        return self


def _check_pipe(steps: list[PipeStep]) -> list[PipeStep]:
    """A source first, filters after it; a rename must name params that reach it."""
    problems: list[Problem] = []
    key0 = steps[0].action()[0]
    if key0 == "rename":
        problems.append(((0, "rename"), "a pipe starts with a source (or a join); rename is a filter"))
    for i, step in enumerate(steps[1:], start=1):
        key = step.action()[0]
        if key != "rename":
            problems.append(((i, key), f"only filters (rename) may follow the first step of a pipe, got {key}"))
    if problems:
        _fail(problems)
    from ._plan import _leaves  # the plan's own flattening, so the check and the plan agree

    leaves = _leaves(steps[0], (0,))
    for i, step in enumerate(steps[1:], start=1):
        assert step.rename is not None
        reaching = {leaf.rename.get(p, p) for leaf in leaves for p in leaf.source.param}
        for old in step.rename.param:
            if old not in reaching:
                known = ", ".join(sorted(reaching))
                problems.append(((i, "rename", "param", old), f"no param {old!r} reaches this rename ({known})"))
        leaves = [leaf.renamed(step.rename.param) for leaf in leaves]
    if problems:
        _fail(problems)
    return steps


Pipe = Annotated[list[PipeStep], Field(min_length=1), AfterValidator(_check_pipe)]
Join = Annotated[list[SourceEntry], Field(min_length=1)]


class ConcatItem(_Sources):
    """A ``concat`` item: its own ``dates`` and one source, ``join`` or ``pipe`` for them."""

    dates: ConcatDates
    join: Join | None = None
    pipe: Pipe | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> ConcatItem:
        self._exactly_one("each concat item")
        return self


class Input(_Sources):
    """The top of the input tree: one of ``join``, ``concat``, ``pipe``, or a single source (anemoi's
    ``input: {grib: ...}``, which is a join of one)."""

    join: Join | None = None
    concat: Annotated[list[ConcatItem], Field(min_length=1)] | None = None
    pipe: Pipe | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Input:
        given = [k for k, _ in self._given()]
        if len(given) != 1:
            raise ValueError(f"input names exactly one of join, concat, pipe or a source; got {given or 'none'}")
        return self
