"""GRIB sources (``grib`` and ``accumulations``) decoded with ecCodes, GRIB 1 and 2 alike.

Each file is scanned once per date: message keys are read for every message, values are decoded
only for the messages a source asks for, and the handles of one date's files are shared by all the
recipe's GRIB sources (a file holding surface and pressure-level fields is opened once).
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eccodes
import numpy as np

from ..errors import WxpipeError
from ..fsutil import atomic_write_text
from ..recipe import AccumulationsSource, GribSource
from ..timeutil import iso, seconds, to_datetime

_STRFTIME = re.compile(r"\{date:strftime\(([^)]*)\)\}")
_SFC_LEVELS = {"surface", "heightAboveGround", "meanSea", "entireAtmosphere", "depthBelowLandLayer"}
_GLOB = re.compile(r"[*?\[]")


def expand_path(pattern: str, date: np.datetime64 | dt.datetime) -> Path:
    """``data/{date:strftime(%Y%m%d%H)}.grib2`` -> the path (or glob) for ``date``."""
    d = date if isinstance(date, dt.datetime) else to_datetime(date)
    return Path(_STRFTIME.sub(lambda m: d.strftime(m.group(1)), pattern))


def matching_files(pattern: str | list[str], date: np.datetime64) -> list[Path]:
    """The files for ``date``: the expanded path, or every file its glob matches (sorted); for a list
    of paths (anemoi accepts one), those of each in turn."""
    if isinstance(pattern, list):
        return [f for p in pattern for f in matching_files(p, date)]
    path = expand_path(pattern, date)
    if not _GLOB.search(str(path)):
        return [path]
    found = sorted(Path(p) for p in glob.glob(str(path)))
    if not found:
        raise WxpipeError(f"date {iso(date)}: no file matches {path}")
    return found


def _get(h: Any, key: str, default: Any = None) -> Any:
    try:
        return eccodes.codes_get(h, key)
    except eccodes.KeyValueNotFoundError:
        return default


def _stamp(date: Any, time: Any) -> np.datetime64:
    d, t = str(date), int(time)
    return np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:8]}T{t // 100:02d}:{t % 100:02d}:00", "s")


# Reading a message's keys through ecCodes' concepts (shortName, units, stepType) costs ~1.5 ms each,
# more than decoding its values. Archives repeat the same headers date after date, so everything but the
# reference time is cached under a fingerprint of the header: in GRIB 2, the raw bytes of section 4
# (parameter, level, step, member) with the discipline and section 1's centre and table versions; in
# GRIB 1, the integer keys that define parameter, level and time range (its section 1 holds the date).
_GRIB1_KEYS = (
    "centre",
    "table2Version",
    "indicatorOfParameter",
    "indicatorOfTypeOfLevel",
    "level",
    "timeRangeIndicator",
    "P1",
    "P2",
    "unitOfTimeRange",
    "perturbationNumber",
    "localDefinitionNumber",
)


@dataclass(frozen=True)
class Header:
    """A message's keys that do not change with its reference time."""

    param: str
    type_of_level: str
    level: int
    step_type: str
    start_step: int
    end_step: int
    number: int
    units: str
    param_id: int
    lead: np.timedelta64  # validity time minus reference time


@dataclass(frozen=True)
class Message(Header):
    """The keys of one GRIB message that selection needs: its header and its times."""

    valid: np.datetime64
    data_time: np.datetime64


Memo = dict[tuple[object, ...], Header]
# one memo per process: a header's keys follow from its fingerprint alone, and every thread's and
# every date's files repeat the same few headers (dict updates are atomic under the GIL)
_HEADERS: Memo = {}
_SECOND = np.timedelta64(1, "s")


# ecCodes loads a concept table (paramId, shortName, units) the first time a process asks for it: ~0.1 s
# each, so every load job would pay ~0.5 s before its first field. ``init`` saves the headers it resolved
# next to the store and the load jobs start from them (same ecCodes and definitions, else ignored).
def _eccodes_id() -> str:
    return f"{eccodes.codes_get_api_version()} {os.environ.get('ECCODES_DEFINITION_PATH', '')}"


def save_headers(path: Path) -> None:
    """Write the headers resolved so far in this process to ``path`` (JSON; nothing when there are none)."""
    if not _HEADERS:
        return
    rows: list[Any] = []
    for key, h in list(_HEADERS.items()):
        fields: dict[str, Any] = {**vars(h), "lead": int(h.lead // _SECOND)}
        rows.append([[f"b:{k.hex()}" if isinstance(k, bytes) else k for k in key], fields])
    atomic_write_text(path, json.dumps({"eccodes": _eccodes_id(), "headers": rows}))


def load_headers(path: Path) -> int:
    """Start from the headers another process saved with :func:`save_headers`; how many were taken."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return 0
    if not isinstance(data, dict) or data.get("eccodes") != _eccodes_id():
        return 0
    for key, fields in data["headers"]:
        k = tuple(bytes.fromhex(x[2:]) if isinstance(x, str) and x.startswith("b:") else x for x in key)
        _HEADERS.setdefault(k, Header(**{**fields, "lead": np.timedelta64(fields["lead"], "s")}))
    return len(data["headers"])


def split_messages(data: bytes, path: Path) -> list[tuple[int, memoryview]]:
    """(offset, bytes) of every GRIB message in ``data``; a truncated message is an error."""
    out = []
    view = memoryview(data)
    o = data.find(b"GRIB")
    if o < 0:
        raise WxpipeError(f"{path}: not a GRIB file (no GRIB message found)")
    while o >= 0:
        edition = data[o + 7] if o + 16 <= len(data) else 0
        if edition == 2:
            n = int.from_bytes(data[o + 8 : o + 16], "big")
        elif edition == 1:
            n = int.from_bytes(data[o + 4 : o + 7], "big")
        else:
            raise WxpipeError(f"{path}: message at byte {o} has an unknown GRIB edition {edition}")
        if o + n > len(data) or data[o + n - 4 : o + n] != b"7777":
            raise WxpipeError(f"{path}: message at byte {o} is truncated or corrupt ({n} bytes announced)")
        out.append((o, view[o : o + n]))
        o = data.find(b"GRIB", o + n)
    return out


def _grib2_sections(msg: memoryview) -> dict[int, memoryview]:
    sections: dict[int, memoryview] = {}
    o = 16
    while o < len(msg) - 4:
        length = int.from_bytes(msg[o : o + 4], "big")
        sections.setdefault(msg[o + 4], msg[o : o + length])
        o += length
    return sections


# Statistical products (accumulations) also carry the end of their interval in section 4, a date that
# changes with every message; it follows from reference time and step, so it is left out of the key.
_INTERVAL_END = {8: slice(34, 41), 11: slice(37, 44)}  # product definition template -> bytes


def _without_interval_end(sec4: memoryview) -> bytes:
    raw = bytearray(sec4)
    end = _INTERVAL_END.get(int.from_bytes(sec4[7:9], "big"))
    if end is not None:
        raw[end] = bytes(end.stop - end.start)
    return bytes(raw)


def _long(h: Any, key: str) -> int:
    return int(eccodes.codes_get_long(h, key)) if eccodes.codes_is_defined(h, key) else -1


def _fingerprint(msg: memoryview, h: Any) -> tuple[tuple[object, ...], np.datetime64]:
    """The header's fingerprint and the message's reference time."""
    if msg[7] == 2:
        sec = _grib2_sections(msg)
        s1 = sec[1]
        year = int.from_bytes(s1[12:14], "big")
        stamp = f"{year:04d}-{s1[14]:02d}-{s1[15]:02d}T{s1[16]:02d}:{s1[17]:02d}:{s1[18]:02d}"
        return (2, msg[6], bytes(s1[5:11]), _without_interval_end(sec[4])), seconds(stamp)
    ref = _stamp(eccodes.codes_get_long(h, "dataDate"), eccodes.codes_get_long(h, "dataTime"))
    return (1, *(_long(h, k) for k in _GRIB1_KEYS)), ref


def _header(h: Any, data_time: np.datetime64) -> Header:
    valid = _stamp(eccodes.codes_get(h, "validityDate"), eccodes.codes_get(h, "validityTime"))
    return Header(
        param=str(eccodes.codes_get(h, "shortName")),
        type_of_level=str(eccodes.codes_get(h, "typeOfLevel")),
        level=int(eccodes.codes_get(h, "level")),
        step_type=str(eccodes.codes_get(h, "stepType")),
        start_step=int(eccodes.codes_get(h, "startStep")),
        end_step=int(eccodes.codes_get(h, "endStep")),
        number=int(eccodes.codes_get(h, "number")) if eccodes.codes_is_defined(h, "number") else 0,
        units=str(_get(h, "units", "")),
        param_id=int(_get(h, "paramId", 0) or 0),
        lead=valid - data_time,
    )


def _message(msg: memoryview, h: Any) -> Message:
    key, data_time = _fingerprint(msg, h)
    if key not in _HEADERS:
        _HEADERS[key] = _header(h, data_time)
    head = _HEADERS[key]
    return Message(**vars(head), valid=data_time + head.lead, data_time=data_time)


@dataclass
class GribFile:
    """One file's messages with their handles kept open, so values are decoded at most once."""

    path: Path
    messages: list[Message] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)
    _values: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def scan(cls, path: Path) -> GribFile:
        """Index every message of ``path``; the file is read once, in one piece."""
        out = cls(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise WxpipeError(f"{path}: file does not exist") from None
        try:
            for _, msg in split_messages(data, path):
                h = eccodes.codes_new_from_message(msg)
                out.handles.append(h)
                out.messages.append(_message(msg, h))
        except (eccodes.CodesInternalError, ValueError, KeyError, IndexError) as exc:
            out.close()
            raise WxpipeError(f"{path}: not a readable GRIB file ({exc})") from None
        except WxpipeError:
            out.close()
            raise
        return out

    def values(self, i: int) -> np.ndarray:
        if i not in self._values:
            h = self.handles[i]
            try:
                values = np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
                if _get(h, "bitmapPresent", 0):  # points missing in the bitmap become NaN
                    values[values == eccodes.codes_get(h, "missingValue")] = np.nan
            except eccodes.CodesInternalError as exc:
                raise WxpipeError(f"{self.path}: message {i + 1} cannot be decoded ({exc})") from None
            self._values[i] = values
        return self._values[i]

    def grid(self) -> tuple[np.ndarray, np.ndarray, list[int], str | float]:
        """Latitudes, longitudes, field shape and resolution name, from the first message."""
        h = self.handles[0]
        lats = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64)
        lons = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64)
        grid_type = str(eccodes.codes_get(h, "gridType"))
        if grid_type == "regular_ll":
            shape = [int(eccodes.codes_get(h, "Nj")), int(eccodes.codes_get(h, "Ni"))]
            resolution: str | float = float(eccodes.codes_get(h, "iDirectionIncrementInDegrees"))
        elif grid_type == "reduced_gg":
            shape = [len(lats)]
            resolution = str(_get(h, "gridName", f"N{eccodes.codes_get(h, 'N')}"))  # as anemoi writes it: O96
        else:
            shape, resolution = [len(lats)], grid_type
        return lats, lons, shape, resolution

    def close(self) -> None:
        for h in self.handles:
            eccodes.codes_release(h)
        self.handles.clear()
        self._values.clear()


class GribCache:
    """The scanned files of the current date, shared by every GRIB source of a recipe."""

    def __init__(self) -> None:
        self._files: dict[Path, GribFile] = {}

    def get(self, path: Path) -> GribFile:
        if path not in self._files:
            self._files[path] = GribFile.scan(path)
        return self._files[path]

    def clear(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def names(spec: GribSource | AccumulationsSource, naming: str) -> list[str]:
    if isinstance(spec, GribSource) and spec.levtype == "pl":
        return [naming.format(param=p, levelist=lev) for p in spec.param for lev in spec.levelist]
    return list(spec.param)


class GribReader:
    """A ``grib`` or ``accumulations`` source (implements :class:`~wxpipe.sources.base.FieldSource`)."""

    def __init__(self, spec: GribSource | AccumulationsSource, naming: str, cache: GribCache) -> None:
        self.spec = spec
        self.naming = naming
        self.cache = cache
        self._metadata: dict[str, dict[str, object]] = {}

    def variables(self) -> list[str]:
        return names(self.spec, self.naming)

    def files(self, date: np.datetime64) -> list[Path]:
        return matching_files(self.spec.path, date)

    def metadata(self) -> dict[str, dict[str, object]]:
        return dict(self._metadata)

    def _name(self, m: Message) -> str | None:
        """The dataset name of an instantaneous message this source selects, else None."""
        spec = self.spec
        assert isinstance(spec, GribSource)
        if m.param not in spec.param or m.step_type != "instant":
            return None
        if spec.number and m.number not in spec.number:
            return None
        if spec.levtype == "pl":
            if m.type_of_level == "isobaricInhPa" and m.level in spec.levelist:
                return self.naming.format(param=m.param, levelist=m.level)
            return None
        return m.param if m.type_of_level in _SFC_LEVELS else None

    def read(self, date: np.datetime64) -> dict[str, np.ndarray]:
        if isinstance(self.spec, AccumulationsSource):
            return self._accumulations(date)
        found: dict[str, dict[int, np.ndarray]] = {}
        for path in self.files(date):
            gf = self.cache.get(path)
            for i, m in enumerate(gf.messages):
                name = self._name(m) if m.valid == date else None
                if name is None:
                    continue
                if m.number in found.setdefault(name, {}):
                    raise WxpipeError(f"{path}: {name} (number {m.number}) appears twice for {iso(date)}")
                found[name][m.number] = gf.values(i)
                self._metadata.setdefault(name, _meta(m))
        return self._stack(found, date)

    def _accumulations(self, date: np.datetime64) -> dict[str, np.ndarray]:
        """Totals over the period ending at ``date``: a message with exactly that step range, or the
        difference of two accumulations of the same forecast (e.g. 0-12 minus 0-6)."""
        spec = self.spec
        period = spec.accumulation_period if isinstance(spec, AccumulationsSource) else 0
        found: dict[str, dict[int, np.ndarray]] = {}
        for path in self.files(date):
            gf = self.cache.get(path)
            acc = [(i, m) for i, m in enumerate(gf.messages) if m.param in spec.param and m.step_type == "accum"]
            for i, m in acc:
                if m.valid != date or m.number in found.get(m.param, {}):
                    continue
                if m.end_step - m.start_step == period:
                    values = gf.values(i)
                else:
                    start = [
                        j
                        for j, o in acc
                        if (o.param, o.number, o.data_time, o.start_step)
                        == (m.param, m.number, m.data_time, m.start_step)
                        and o.end_step == m.end_step - period
                    ]
                    if not start:
                        continue
                    values = gf.values(i) - gf.values(start[0])
                found.setdefault(m.param, {})[m.number] = values
                self._metadata.setdefault(m.param, {**_meta(m), "period": ["0h", f"{period}h"]})
        return self._stack(found, date)

    def _stack(self, found: dict[str, dict[int, np.ndarray]], date: np.datetime64) -> dict[str, np.ndarray]:
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


def _same_run(a: Message, b: Message) -> bool:
    """Two accumulations of one forecast run and member, from the same start step."""
    return (a.param, a.number, a.data_time, a.start_step) == (b.param, b.number, b.data_time, b.start_step)


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
