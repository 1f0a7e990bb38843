"""The ``grib`` and ``accumulations`` sources: which messages of a date's files a recipe source takes.

Files are scanned through :class:`~wxpipe.sources.gribfile.GribCache`, shared by every GRIB source of
a recipe, so a file holding surface and pressure-level fields is read once per date. Nothing here
imports ecCodes: :mod:`~wxpipe.sources.gribfile` does, when a file is first decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import WxpipeError
from ..recipe import AccumulationsSource, GribSource, source_names
from ..timeutil import iso
from .gribfile import GribCache, GribFile, Message, load_headers, save_headers
from .paths import matching_files

__all__ = [
    "SURFACE_LEVELS",
    "GribCache",
    "GribFile",
    "GribReader",
    "Message",
    "load_headers",
    "save_headers",
]

#: ``typeOfLevel`` values of the fields a ``levtype: sfc`` source reads (named ``param``, without a level).
SURFACE_LEVELS = frozenset({"surface", "heightAboveGround", "meanSea", "entireAtmosphere", "depthBelowLandLayer"})

Found = dict[str, dict[int, np.ndarray]]  # variable -> ensemble member -> values


class GribReader:
    """A ``grib`` or ``accumulations`` source (implements :class:`~wxpipe.sources.base.FieldSource`)."""

    def __init__(self, spec: GribSource | AccumulationsSource, naming: str, cache: GribCache) -> None:
        self.spec = spec
        self.naming = naming
        self.cache = cache
        self._metadata: dict[str, dict[str, object]] = {}

    def variables(self) -> list[str]:
        return source_names(self.spec, self.naming)

    def files(self, date: np.datetime64) -> list[Path]:
        return matching_files(self.spec.path, date)

    def metadata(self) -> dict[str, dict[str, object]]:
        return dict(self._metadata)

    def read(self, date: np.datetime64) -> dict[str, np.ndarray]:
        spec = self.spec
        if isinstance(spec, AccumulationsSource):
            return self._accumulations(spec, date)
        found: Found = {}
        for path in self.files(date):
            gf = self.cache.get(path)
            for i, m in enumerate(gf.messages):
                name = self._name(spec, m) if m.valid == date else None
                if name is None:
                    continue
                if m.number in found.setdefault(name, {}):
                    raise WxpipeError(f"{path}: {name} (number {m.number}) appears twice for {iso(date)}")
                found[name][m.number] = gf.values(i)
                self._metadata.setdefault(name, _meta(m))
        return self._stack(found, date)

    def _name(self, spec: GribSource, m: Message) -> str | None:
        """The dataset name of an instantaneous message this source selects, else None."""
        if m.param not in spec.param or m.step_type != "instant":
            return None
        if spec.number and m.number not in spec.number:
            return None
        if spec.levtype == "pl":
            if m.type_of_level == "isobaricInhPa" and m.level in spec.levelist:
                return self.naming.format(param=m.param, levelist=m.level)
            return None
        return m.param if m.type_of_level in SURFACE_LEVELS else None

    def _accumulations(self, spec: AccumulationsSource, date: np.datetime64) -> dict[str, np.ndarray]:
        """Totals over the period ending at ``date``: a message with exactly that step range, or the
        difference of two accumulations of the same forecast (e.g. 0-12 minus 0-6)."""
        period = spec.accumulation_period
        found: Found = {}
        for path in self.files(date):
            gf = self.cache.get(path)
            acc = [(i, m) for i, m in enumerate(gf.messages) if m.param in spec.param and m.step_type == "accum"]
            for i, m in acc:
                if m.valid != date or m.number in found.get(m.param, {}):
                    continue
                values = _total(gf, acc, i, period)
                if values is not None:
                    found.setdefault(m.param, {})[m.number] = values
                    self._metadata.setdefault(m.param, {**_meta(m), "period": ["0h", f"{period}h"]})
        return self._stack(found, date)

    def _stack(self, found: Found, date: np.datetime64) -> dict[str, np.ndarray]:
        absent = [v for v in self.variables() if v not in found]
        if absent:
            where = ", ".join(str(p) for p in self.files(date))
            raise WxpipeError(f"date {iso(date)}: variable(s) {', '.join(absent)} not found in {where}")
        wanted = self.spec.number if isinstance(self.spec, GribSource) else []
        out = {}
        for name, members in found.items():
            numbers = list(wanted) or sorted(members)
            lost = [n for n in numbers if n not in members]
            if lost:
                where = ", ".join(str(p) for p in self.files(date))
                raise WxpipeError(f"date {iso(date)}: {name} has no ensemble member(s) {lost} in {where}")
            # one member (the usual case): a view, not a copy of the field
            out[name] = members[numbers[0]][None] if len(numbers) == 1 else np.stack([members[n] for n in numbers])
        return out


def _total(gf: GribFile, acc: list[tuple[int, Message]], i: int, period: int) -> np.ndarray | None:
    """The total over ``period`` hours up to message ``i``'s end step, None where the file cannot give it."""
    m = gf.messages[i]
    if m.end_step - m.start_step == period:
        return gf.values(i)
    earlier = (m.param, m.number, m.data_time, m.start_step, m.end_step - period)  # same run, shorter range
    start = next((j for j, o in acc if (o.param, o.number, o.data_time, o.start_step, o.end_step) == earlier), None)
    return None if start is None else gf.values(i) - gf.values(start)


def _meta(m: Message) -> dict[str, object]:
    """anemoi-datasets' ``variables_metadata`` entry: MARS and GRIB identity, units."""
    mars: dict[str, object] = {"param": m.param, "levtype": "pl" if m.type_of_level == "isobaricInhPa" else "sfc"}
    if m.type_of_level == "isobaricInhPa":
        mars["levelist"] = m.level
    meta: dict[str, object] = {
        "mars": mars,
        "grib": {"paramId": m.param_id, "shortName": m.param},
        "units": m.units,
        "typeOfLevel": m.type_of_level,
    }
    if m.step_type == "accum":
        meta.update(process="accumulation", period=[f"{m.start_step}h", f"{m.end_step}h"])
    return meta
