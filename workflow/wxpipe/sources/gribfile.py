"""GRIB files decoded with ecCodes, GRIB 1 and 2 alike: every message's keys, values on demand.

Each file is read once, in one piece, and split into messages; keys are read for every message,
values are decoded only for the messages a source asks for. ecCodes is imported by the functions
that decode, never when this module is imported: Snakemake imports the package to build its DAG,
and that must not pay for loading ecCodes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WxpipeError
from ..fsutil import atomic_write_text
from ..timeutil import seconds

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
# Statistical products (accumulations) also carry the end of their interval in section 4, a date that
# changes with every message; it follows from reference time and step, so it is left out of the key.
_INTERVAL_END = {8: slice(34, 41), 11: slice(37, 44)}  # product definition template -> bytes
_SECOND = np.timedelta64(1, "s")


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


# ecCodes loads a concept table (paramId, shortName, units) the first time a process asks for it: ~0.1 s
# each, so every load job would pay ~0.5 s before its first field. ``init`` saves the headers it resolved
# next to the store and the load jobs start from them (same ecCodes and definitions, else ignored).
def _eccodes_id() -> str:
    import eccodes

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


def _without_interval_end(sec4: memoryview) -> bytes:
    raw = bytearray(sec4)
    end = _INTERVAL_END.get(int.from_bytes(sec4[7:9], "big"))
    if end is not None:
        raw[end] = bytes(end.stop - end.start)
    return bytes(raw)


def _get(h: Any, key: str, default: Any = None) -> Any:
    import eccodes

    try:
        return eccodes.codes_get(h, key)
    except eccodes.KeyValueNotFoundError:
        return default


def _long(h: Any, key: str, default: int) -> int:
    import eccodes

    return int(eccodes.codes_get_long(h, key)) if eccodes.codes_is_defined(h, key) else default


def _stamp(date: Any, time: Any) -> np.datetime64:
    d, t = str(date), int(time)
    return np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:8]}T{t // 100:02d}:{t % 100:02d}:00", "s")


def _fingerprint(msg: memoryview, h: Any) -> tuple[tuple[object, ...], np.datetime64]:
    """The header's fingerprint and the message's reference time."""
    import eccodes

    if msg[7] == 2:
        sec = _grib2_sections(msg)
        s1 = sec[1]
        year = int.from_bytes(s1[12:14], "big")
        stamp = f"{year:04d}-{s1[14]:02d}-{s1[15]:02d}T{s1[16]:02d}:{s1[17]:02d}:{s1[18]:02d}"
        return (2, msg[6], bytes(s1[5:11]), _without_interval_end(sec[4])), seconds(stamp)
    ref = _stamp(eccodes.codes_get_long(h, "dataDate"), eccodes.codes_get_long(h, "dataTime"))
    return (1, *(_long(h, k, -1) for k in _GRIB1_KEYS)), ref


def _header(h: Any, data_time: np.datetime64) -> Header:
    import eccodes

    get = eccodes.codes_get
    valid = _stamp(get(h, "validityDate"), get(h, "validityTime"))
    return Header(
        param=str(get(h, "shortName")),
        type_of_level=str(get(h, "typeOfLevel")),
        level=int(get(h, "level")),
        step_type=str(get(h, "stepType")),
        start_step=int(get(h, "startStep")),
        end_step=int(get(h, "endStep")),
        number=_long(h, "number", 0),
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
        import eccodes

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

    def key(self, i: int, key: str) -> Any:
        """Message ``i``'s value of ``key`` in its native type, or None where it has none."""
        return _get(self.handles[i], key)

    def count(self, i: int, key: str) -> int:
        """Message ``i``'s integer ``key`` (a count such as ``numberOfMissing``), 0 where it has none."""
        return _long(self.handles[i], key, 0)

    def values(self, i: int) -> np.ndarray:
        """Message ``i``'s values as float64, points missing in the bitmap as NaN (decoded once)."""
        import eccodes

        if i not in self._values:
            h = self.handles[i]
            try:
                values = np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
                if _get(h, "bitmapPresent", 0):
                    values[values == eccodes.codes_get(h, "missingValue")] = np.nan
            except eccodes.CodesInternalError as exc:
                raise WxpipeError(f"{self.path}: message {i + 1} cannot be decoded ({exc})") from None
            self._values[i] = values
        return self._values[i]

    def grid(self) -> tuple[np.ndarray, np.ndarray, list[int], str | float]:
        """Latitudes, longitudes, field shape and resolution name, from the first message.

        A grid without coordinates (spherical harmonics) is an error naming the file.
        """
        import eccodes

        h = self.handles[0]
        grid_type = str(eccodes.codes_get(h, "gridType"))
        try:
            lats = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64)
            lons = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64)
        except eccodes.CodesInternalError as exc:
            raise WxpipeError(f"{self.path}: a {grid_type} grid has no coordinates ({exc})") from None
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
        import eccodes

        for h in self.handles:
            eccodes.codes_release(h)
        self.handles.clear()
        self._values.clear()


class GribCache:
    """The scanned files of the current date, shared by every GRIB source of a recipe.

    A file holding surface and pressure-level fields is opened once for all the sources that read it.
    """

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
