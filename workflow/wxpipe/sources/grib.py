"""Reading fields for one date from GRIB with ecCodes, as the recipe's sources select them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import eccodes
import numpy as np

from ..errors import WxpipeError
from ..recipe import AccumulationsSource, GribSource, Recipe
from ..timeutil import iso, to_datetime

_STRFTIME = re.compile(r"\{date:strftime\(([^)]*)\)\}")
_SFC_LEVELS = {"surface", "heightAboveGround", "meanSea", "entireAtmosphere"}


def expand_path(pattern: str, date: np.datetime64 | dt.datetime) -> Path:
    """``data/{date:strftime(%Y%m%d%H)}.grib2`` -> the file for ``date``."""
    d = date if isinstance(date, dt.datetime) else to_datetime(date)
    return Path(_STRFTIME.sub(lambda m: d.strftime(m.group(1)), pattern))


def variable_names(recipe: Recipe) -> list[str]:
    """Variables in anemoi-datasets' order (sorted by name)."""
    names: list[str] = []
    for entry in recipe.input.join:
        src = entry.source
        if isinstance(src, GribSource) and src.levtype == "pl":
            fmt = recipe.build.variable_naming
            names += [fmt.format(param=p, levelist=lev) for p in src.param for lev in src.levelist]
        else:
            names += list(src.param)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise WxpipeError(f"recipe: variables given twice: {', '.join(dupes)}")
    return sorted(names)


def input_files(recipe: Recipe, dates: np.ndarray) -> list[Path]:
    """The files the recipe reads for ``dates`` (missing dates excluded), for Snakemake's inputs."""
    missing = recipe.dates.missing_set()
    out: dict[Path, None] = {}
    for d in dates:
        if d in missing:
            continue
        for entry in recipe.input.join:
            out[expand_path(entry.source.path, d)] = None
    return list(out)


@dataclass(frozen=True)
class Message:
    short_name: str
    type_of_level: str
    level: int
    step_type: str
    step_hours: int
    valid: np.datetime64
    offset: int


def _valid_time(h: int) -> np.datetime64:
    date = str(eccodes.codes_get(h, "validityDate"))
    time = int(eccodes.codes_get(h, "validityTime"))
    return np.datetime64(f"{date[:4]}-{date[4:6]}-{date[6:8]}T{time // 100:02d}:{time % 100:02d}:00", "s")


class GribFile:
    """An index of one file's messages; values are decoded only for the messages asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[Message] = []
        try:
            with open(path, "rb") as f:
                while True:
                    offset = f.tell()
                    h = eccodes.codes_grib_new_from_file(f)
                    if h is None:
                        break
                    try:
                        start, end = int(eccodes.codes_get(h, "startStep")), int(eccodes.codes_get(h, "endStep"))
                        self.messages.append(
                            Message(
                                short_name=str(eccodes.codes_get(h, "shortName")),
                                type_of_level=str(eccodes.codes_get(h, "typeOfLevel")),
                                level=int(eccodes.codes_get(h, "level")),
                                step_type=str(eccodes.codes_get(h, "stepType")),
                                step_hours=end - start,
                                valid=_valid_time(h),
                                offset=offset,
                            )
                        )
                    finally:
                        eccodes.codes_release(h)
        except FileNotFoundError:
            raise WxpipeError(f"{path}: file does not exist") from None
        except eccodes.CodesInternalError as exc:
            raise WxpipeError(f"{path}: not a readable GRIB file ({exc})") from None
        if not self.messages:
            raise WxpipeError(f"{path}: no GRIB messages")

    def values(self, msg: Message) -> np.ndarray:
        with open(self.path, "rb") as f:
            f.seek(msg.offset)
            h = eccodes.codes_grib_new_from_file(f)
            try:
                return np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
            finally:
                eccodes.codes_release(h)

    def grid(self) -> tuple[np.ndarray, np.ndarray, list[int], str]:
        """Latitudes, longitudes, field shape and resolution name of the first message."""
        with open(self.path, "rb") as f:
            h = eccodes.codes_grib_new_from_file(f)
            try:
                lats = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64)
                lons = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64)
                grid_type = str(eccodes.codes_get(h, "gridType"))
                if grid_type == "regular_ll":
                    shape = [int(eccodes.codes_get(h, "Nj")), int(eccodes.codes_get(h, "Ni"))]
                    resolution = f"{float(eccodes.codes_get(h, 'iDirectionIncrementInDegrees')):g}"
                else:
                    shape = [len(lats)]
                    resolution = (
                        str(eccodes.codes_get(h, "gridName")).lower() if grid_type == "reduced_gg" else grid_type
                    )
            finally:
                eccodes.codes_release(h)
        return lats, lons, shape, resolution


def _select(
    file: GribFile, src: GribSource | AccumulationsSource, date: np.datetime64, naming: str
) -> dict[str, Message]:
    found: dict[str, Message] = {}
    for m in file.messages:
        if m.short_name not in src.param or m.valid != date:
            continue
        if isinstance(src, AccumulationsSource):
            if m.step_type == "accum" and m.step_hours == src.accumulation_period:
                found[m.short_name] = m
        elif m.step_type == "instant":
            if src.levtype == "pl" and m.type_of_level == "isobaricInhPa" and m.level in src.levelist:
                found[naming.format(param=m.short_name, levelist=m.level)] = m
            elif src.levtype == "sfc" and m.type_of_level in _SFC_LEVELS:
                found[m.short_name] = m
    return found


def read_date(recipe: Recipe, date: np.datetime64, variables: list[str]) -> np.ndarray:
    """The fields of ``date`` as (variables, values) float32; names the file and variable at fault."""
    files: dict[Path, GribFile] = {}
    fields: dict[str, np.ndarray] = {}
    for entry in recipe.input.join:
        src = entry.source
        path = expand_path(src.path, date)
        if path not in files:
            files[path] = GribFile(path)
        gf = files[path]
        for name, msg in _select(gf, src, date, recipe.build.variable_naming).items():
            fields[name] = gf.values(msg)
    absent = [v for v in variables if v not in fields]
    if absent:
        where = ", ".join(str(p) for p in files)
        raise WxpipeError(f"date {iso(date)}: variable(s) {', '.join(absent)} not found in {where}")
    sizes = {v: fields[v].size for v in variables}
    if len(set(sizes.values())) != 1:
        raise WxpipeError(f"date {iso(date)}: fields have different sizes {sizes}")
    return np.stack([fields[v] for v in variables]).astype(np.float32)
