"""Statistics on disk: a part's summary in a small ``.npz``, the parts of one run merged, and the
merged set stored in the dataset as one set (flagged pending first, its digest written last)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import zarr

from ..dataset import STATISTICS_DIGEST, STATISTICS_PENDING, statistics_arrays, statistics_digest
from ..errors import WxpipeError
from ..fsutil import atomic_path
from ..timeutil import iso
from ._moments import Moments, Summary

log = logging.getLogger(__name__)

_FIELDS = ("count", "shift", "offset", "m2", "minimum", "maximum", "has_nans", "nans")


def save_part(path: str | Path, s: Summary) -> None:
    """Write ``s`` as a small ``.npz``, atomically (a killed job leaves no half-written part)."""
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(s.meta()))}
    for f in _FIELDS:
        arrays[f] = getattr(s.moments, f)
        for name, m in s.deltas.items():
            arrays[f"tendencies_{name}_{f}"] = getattr(m, f)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]


def load_part(path: str | Path) -> Summary:
    try:
        with np.load(str(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            moments = Moments(*(np.asarray(z[f]) for f in _FIELDS))
            deltas = {n: Moments(*(np.asarray(z[f"tendencies_{n}_{f}"]) for f in _FIELDS)) for n in meta["tendencies"]}
    except (OSError, KeyError, ValueError) as exc:
        raise WxpipeError(f"{path}: not a statistics part ({exc})") from None
    return Summary(
        meta["uuid"],
        meta["variables"],
        dt.datetime.fromisoformat(meta["start"]),
        dt.datetime.fromisoformat(meta["end"]),
        meta["allow_nans"],
        {k: int(v) for k, v in meta["tendencies"].items()},
        (int(meta["part"][0]), int(meta["part"][1])),
        (int(meta["dates"][0]), int(meta["dates"][1])),
        moments,
        deltas,
    )


def merge_parts(parts: Sequence[Summary], uuid: str | None = None) -> Summary:
    """Join the parts of one run, in part order; refuse parts of other runs, duplicates or gaps."""
    if not parts:
        raise WxpipeError("no statistics parts to merge")
    ordered = sorted(parts, key=lambda s: s.part[0])
    head = ordered[0]
    n = head.part[1]
    keys = ("uuid", "variables", "start", "end", "allow_nans", "tendencies")
    for s in ordered:
        if s.part[1] != n or any(getattr(s, k) != getattr(head, k) for k in keys):
            raise WxpipeError(f"statistics part {s.part[0]}/{s.part[1]} is not of the same run as part 1/{n}")
    if uuid is not None and head.uuid != uuid:
        raise WxpipeError(f"statistics parts are of dataset {head.uuid}, not of {uuid}")
    got = [s.part[0] for s in ordered]
    if got != list(range(1, n + 1)):
        raise WxpipeError(f"statistics parts {got} are not exactly the parts 1..{n}")
    total, deltas = head.moments, dict(head.deltas)
    for s in ordered[1:]:
        total = total.merge(s.moments)
        deltas = {k: deltas[k].merge(s.deltas[k]) for k in deltas}
    dates = (head.dates[0], ordered[-1].dates[1])
    return Summary(
        head.uuid, head.variables, head.start, head.end, head.allow_nans, head.tendencies, (1, 1), dates, total, deltas
    )


def write(path: str | Path, s: Summary) -> None:
    """Store the statistics (and tendency statistics) arrays and their period in the dataset, as one set.

    Earlier statistics are overwritten, and tendency arrays of deltas no longer configured removed. A
    directory store cannot swap a set of arrays at once, so the set is flagged pending (one attribute
    write) before any array changes, and its digest and period are written last (one attribute write):
    a kill in between leaves a set every wxpipe reader refuses, and the next run writes it whole. One
    run at a time per store (a lock on the store's folder).
    """
    empty = [v for v, c in zip(s.variables, s.moments.count, strict=True) if c == 0]
    if empty:
        raise WxpipeError(f"{path}: no values of {', '.join(empty)} in {s.start} .. {s.end}")
    arrays = {k: np.asarray(v) for k, v in s.moments.arrays().items()}
    for name, m in s.deltas.items():
        arrays.update({f"statistics_tendencies_{name}_{k}": np.asarray(v) for k, v in m.arrays().items()})
    start, end = iso(s.start), iso(s.end)
    with store_lock(Path(path), "statistics"):
        root = zarr.open_group(str(path), mode="r+")
        root.attrs.update({STATISTICS_PENDING: True})
        for old in statistics_arrays(root):
            if old not in arrays:
                del root[old]
        for name, values in arrays.items():
            root.create_array(name, data=values, overwrite=True)
        root.attrs.update(
            {
                "statistics_start_date": start,
                "statistics_end_date": end,
                STATISTICS_DIGEST: statistics_digest(arrays, start, end),
                STATISTICS_PENDING: False,
            }
        )
    for v, n in zip(s.variables, s.moments.nans, strict=True):
        if n:
            log.warning("%s: %d NaN values excluded from the statistics", v, n)
    log.info("statistics over %s .. %s written to %s", s.start, s.end, path)


@contextmanager
def store_lock(path: Path, what: str) -> Iterator[None]:
    """An exclusive lock on the store's folder while ``what`` is written; a second writer fails at once.

    ``flock`` on the folder itself: no lock file inside the store to be copied or left behind. Where the
    file system has no flock (some Lustre mounts), the write goes on unlocked, with a warning.
    """
    import errno
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise WxpipeError(
                    f"{path}: another process is writing its {what} now; run again when it ends"
                ) from None
            log.warning("%s: no file lock on this file system (%s): %s written unlocked", path, exc.strerror, what)
        yield
    finally:
        os.close(fd)  # closing the folder's descriptor releases the lock
