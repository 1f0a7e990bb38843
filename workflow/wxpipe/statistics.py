"""Per-variable statistics over the statistics period, exact in float64 and mergeable.

Chunks are reduced to (count, mean, M2) and merged with Chan's pairwise formula, which stays
exact for fields with large offsets (geopotential ~5e5 with unit variance) where sums of squares
would cancel catastrophically. ``sums``/``squares`` are still written: they are the merge inputs
anemoi-datasets expects.

Samples are pooled over dates x ensemble members x grid points. Tendency statistics (anemoi's
``statistics.tendencies``) are the same moments of ``x[t + delta] - x[t]`` over the pairs whose two
dates are both in the period and neither is missing; they are stored as
``statistics_tendencies_<delta>_<stat>`` arrays, which ``anemoi.datasets`` reads with
``statistics_tendencies(delta)``.

The work splits like dataset creation: :func:`compute` reduces one :class:`~wxpipe.dataset.Part`
(a range of whole chunks of the period's dates, read once, plus the few dates before it that its
tendencies need) to a :class:`Summary`; :func:`save_part`/:func:`load_part` keep a summary in a
small ``.npz``; :func:`merge_parts` joins the parts of one run and :func:`write` stores the result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydantic
import zarr

from .dataset import (
    STATISTICS_DIGEST,
    STATISTICS_PENDING,
    Dataset,
    Part,
    chunks_of,
    read_dates,
    statistics_arrays,
    statistics_digest,
    write_unit,
)
from .errors import WxpipeError
from .fsutil import atomic_path
from .progress import progress
from .timeutil import iso

log = logging.getLogger(__name__)
_T = TypeVar("_T")

STATISTICS = ("mean", "stdev", "minimum", "maximum", "sums", "squares", "count", "has_nans")
_FIELDS = ("count", "shift", "offset", "m2", "minimum", "maximum", "has_nans", "nans")


@dataclass
class Moments:
    """Running per-variable moments; ``merge`` is exact (Chan et al. 1979).

    The mean is kept as ``shift + offset``: ``shift`` is a float32 value near the data and
    ``offset`` the mean of ``x - shift``, so means stay exact to float64 precision near zero even
    for fields with large offsets, and the differences of means that ``merge`` squares do not lose
    the digits that matter. ``count`` counts the values used, ``nans`` the NaNs that were excluded
    (``has_nans`` flags them).
    """

    count: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    has_nans: np.ndarray
    nans: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Moments:
        z = np.zeros(n)
        return cls(
            np.zeros(n, np.int64),
            z.copy(),
            z.copy(),
            z.copy(),
            np.full(n, np.inf),
            np.full(n, -np.inf),
            np.zeros(n, bool),
            np.zeros(n, np.int64),
        )

    @classmethod
    def of(cls, block: np.ndarray) -> Moments:
        """Moments of ``block`` shaped (variables, samples); NaNs are excluded, counted and flagged.

        The shift is the mean of a strided sample rounded to float32, so ``x - shift`` is exact in
        float64 and small: the sums of ``x - shift`` and of its squares (one compiled pass,
        :func:`~wxpipe._kernels.shifted_sums`) give the mean and M2 without cancellation. A constant
        row gets exactly its value as mean and a zero M2. Blocks with NaNs take a slower masked path.
        """
        from ._kernels import shifted_sums  # here: numba's start (~0.8 s) is for the passes alone, not the merge

        n = block.shape[1]
        mn = block.min(axis=1, initial=np.inf) if n else np.full(block.shape[0], np.inf)
        if np.isnan(mn).any() or n == 0:
            return cls._of_with_nans(block.astype(np.float64, copy=False))
        mx = block.max(axis=1).astype(np.float64)
        mn = mn.astype(np.float64)
        sample = block[:, :: max(1, n // 512)]
        shift = sample.mean(axis=1, dtype=np.float64).astype(np.float32).astype(np.float64)
        s1, s2 = shifted_sums(block, shift)
        offset = s1 / n
        m2 = np.maximum(s2 - n * offset * offset, 0.0)
        return cls._finish(
            np.full(block.shape[0], n, np.int64), np.zeros(block.shape[0], np.int64), mn, mx, shift, offset, m2
        )

    @classmethod
    def _of_with_nans(cls, x: np.ndarray) -> Moments:
        nans = np.isnan(x)
        n_nans = nans.sum(axis=1)
        count = x.shape[1] - n_nans
        has = count > 0
        safe = np.maximum(count, 1)
        with np.errstate(invalid="ignore"):
            mn = np.where(has, np.min(np.where(nans, np.inf, x), axis=1, initial=np.inf), np.inf)
            mx = np.where(has, np.max(np.where(nans, -np.inf, x), axis=1, initial=-np.inf), -np.inf)
            shift = (np.nansum(x, axis=1) / safe).astype(np.float32).astype(np.float64)
            y = x - shift[:, None]
            offset = np.nansum(y, axis=1) / safe
            m2 = np.nansum((y - offset[:, None]) ** 2, axis=1)
        return cls._finish(count.astype(np.int64), n_nans.astype(np.int64), mn, mx, shift, offset, m2)

    @classmethod
    def _finish(
        cls,
        count: np.ndarray,
        n_nans: np.ndarray,
        mn: np.ndarray,
        mx: np.ndarray,
        shift: np.ndarray,
        offset: np.ndarray,
        m2: np.ndarray,
    ) -> Moments:
        has = count > 0
        constant = ~has | (mn == mx)
        shift = np.where(constant, np.where(has, mn, 0.0), shift)
        offset = np.where(constant, 0.0, offset)
        m2 = np.where(constant, 0.0, m2)
        return cls(count, shift, offset, m2, mn, mx, np.asarray(n_nans > 0), n_nans)

    def merge(self, other: Moments) -> Moments:
        a, b = self, other
        n = a.count + b.count
        shift = a.shift
        ob = b.offset + (b.shift - shift)  # exact: both shifts are float32 values near the data
        delta = ob - a.offset
        frac = b.count / np.maximum(n, 1)
        offset = a.offset + delta * frac
        m2 = a.m2 + b.m2 + delta**2 * (a.count * frac)
        only_b, only_a = a.count == 0, b.count == 0  # take the other's values whole: no shift round trip
        return Moments(
            n,
            np.where(only_b, b.shift, shift),
            np.where(only_b, b.offset, np.where(only_a, a.offset, offset)),
            np.where(only_b, b.m2, np.where(only_a, a.m2, m2)),
            np.minimum(a.minimum, b.minimum),
            np.maximum(a.maximum, b.maximum),
            a.has_nans | b.has_nans,
            a.nans + b.nans,
        )

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.offset

    @property
    def stdev(self) -> np.ndarray:
        """Population standard deviation; never NaN (0 for constant fields and empty variables)."""
        return np.sqrt(np.maximum(self.m2 / np.maximum(self.count, 1), 0.0))

    def arrays(self) -> dict[str, np.ndarray]:
        """The anemoi statistics arrays, float64 except ``count`` (int64) and ``has_nans`` (bool)."""
        return {
            "mean": self.mean,
            "stdev": self.stdev,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "sums": self.mean * self.count,
            "squares": self.m2 + self.mean**2 * self.count,
            "count": self.count,
            "has_nans": self.has_nans,
        }


@dataclass
class Summary:
    """The moments of part (or all) of a statistics period, and of its tendencies.

    ``part`` is ``(index, count)``; ``tendencies`` maps anemoi's delta name (``6h``) to the number of
    dates it spans, and ``deltas`` holds the moments of each.
    """

    uuid: str
    variables: list[str]
    start: dt.datetime
    end: dt.datetime
    allow_nans: bool
    tendencies: dict[str, int]
    part: tuple[int, int]
    dates: tuple[int, int]
    moments: Moments
    deltas: dict[str, Moments]

    def meta(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "variables": self.variables,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "allow_nans": self.allow_nans,
            "tendencies": self.tendencies,
            "part": list(self.part),
            "dates": list(self.dates),
        }


def tendencies_of(ds: Dataset) -> dict[str, int]:
    """The dataset's recipe ``statistics.tendencies`` as ``{"6h": 1, "12h": 2}``."""
    from .recipe import Recipe

    try:
        return Recipe.model_validate(ds.attrs["recipe"]).tendencies()
    except (KeyError, pydantic.ValidationError) as exc:
        raise WxpipeError(f"{ds.path}: cannot read the recipe stored in the dataset ({exc})") from None


def allow_nans_of(ds: Dataset) -> bool:
    """The dataset's recipe ``statistics.allow_nans``."""
    return bool((ds.attrs.get("recipe", {}).get("statistics") or {}).get("allow_nans", False))


def period_of(ds: Dataset, start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """``start``/``end`` where given, else the period stored in the dataset's attributes."""
    return (
        start or dt.datetime.fromisoformat(ds.attrs["statistics_start_date"]),
        end or dt.datetime.fromisoformat(ds.attrs["statistics_end_date"]),
    )


def of_dataset(
    ds: Dataset,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    part: Part | None = None,
    threads: int = 1,
) -> Summary:
    """:func:`compute` as the dataset's recipe asks: its period unless ``start``/``end`` override it, its
    NaN policy and its tendencies (what ``wxpipe statistics``, its parts and ``wxpipe create`` compute)."""
    start, end = period_of(ds, start, end)
    return compute(ds, start, end, allow_nans_of(ds), tendencies_of(ds), part, threads)


def part_range(ds: Dataset, start: dt.datetime, end: dt.datetime, part: Part) -> range:
    """The date indices of ``part``: whole chunks (shards) of the period, shared out as evenly as can be."""
    idx = ds.indices(start, end)
    if len(idx) == 0:
        raise WxpipeError(f"{ds.path}: no dates between {start} and {end} for statistics")
    first, last = int(idx[0]), int(idx[-1])
    unit = write_unit(ds.data)
    c0 = first // unit
    n_chunks = last // unit - c0 + 1
    lo = c0 + (part.index - 1) * n_chunks // part.count
    hi = c0 + part.index * n_chunks // part.count
    a = min(max(lo * unit, first), last + 1)
    return range(a, max(a, min(hi * unit, last + 1)))


def _check_nans(ds: Dataset, dates: Sequence[int], nans: np.ndarray) -> None:
    """Raise naming the first date (and its variables) with NaNs; ``nans`` is (dates, variables)."""
    if nans.any():
        k = int(np.nonzero(nans.any(axis=1))[0][0])
        bad = [v for v, flag in zip(ds.variables, nans[k], strict=True) if flag]
        raise WxpipeError(f"{ds.path}: NaN in {', '.join(bad)} at {iso(ds.dates[dates[k]])} (allow_nans is false)")


def _pooled(fields: np.ndarray) -> np.ndarray:
    """(dates, variables, ensembles, values) -> (variables, samples)."""
    return np.moveaxis(fields, 1, 0).reshape(fields.shape[1], -1)


def compute(
    ds: Dataset,
    start: dt.datetime,
    end: dt.datetime,
    allow_nans: bool,
    tendencies: Mapping[str, int] | None = None,
    part: Part | None = None,
    threads: int = 1,
) -> Summary:
    """One read pass over ``part`` of the dates in ``[start, end]``, skipping declared missing dates.

    Tendency pairs end in the part and start in the period, so the part also reads up to the
    largest delta's dates before its first one. With ``threads`` > 1, chunks are read and reduced
    by that many threads; the moments are merged in date order all the same, so the result does
    not depend on the number of threads.
    """
    tendencies = dict(tendencies or {})
    part = part or Part(1, 1)
    rng = part_range(ds, start, end, part)
    first = int(ds.indices(start, end)[0])
    back = max(tendencies.values(), default=0)
    missing = set(ds.missing_dates)
    present = np.array([d not in missing for d in ds.dates])
    n_var = len(ds.variables)
    total = Moments.empty(n_var)
    deltas = {name: Moments.empty(n_var) for name in tendencies}
    window: dict[int, np.ndarray] = {}  # date index -> fields, for the tendencies
    lo = max(first, rng.start - back)
    chunk = ds.data.chunks[0]
    chunks = list(chunks_of(range(lo - lo % chunk, rng.stop), chunk)) if len(rng) else []
    # reductions in flight, merged in submission order: (future, tendency name or None, dates, block)
    flight: deque[tuple[Future[Moments], str | None, list[int], np.ndarray]] = deque()

    def settle(keep: int) -> None:
        nonlocal total
        while len(flight) > keep:
            fut, name, dates, block = flight.popleft()
            m = fut.result()
            if name is not None:
                deltas[name] = deltas[name].merge(m)
                continue
            if not allow_nans and m.has_nans.any():
                _check_nans(ds, dates, np.isnan(block).any(axis=(2, 3)))
            total = total.merge(m)

    with (
        ThreadPoolExecutor(max(1, threads)) as pool,
        progress(total=len(rng), desc=f"statistics {part.index}/{part.count}", unit="date") as bar,
    ):

        def read(c: range) -> np.ndarray:
            return read_dates(ds, max(c.start, lo), c.stop)

        for c, fields in _read_ahead(pool, read, chunks, 2 * max(1, threads)):
            a, b = max(c.start, lo), c.stop
            keep = [i for i in range(a, b) if present[i]]
            done = max(0, b - max(a, rng.start))
            if not keep:
                bar.update(done)
                continue
            block = fields if len(keep) == b - a else fields[[i - a for i in keep]]
            at = {i: k for k, i in enumerate(keep)}
            ours = [k for k, i in enumerate(keep) if i >= rng.start]
            if ours:
                mine = block[ours[0] :]  # the dates of the part are the tail of the chunk
                flight.append((pool.submit(_reduce, mine), None, [keep[k] for k in ours], mine))
            for name, k in tendencies.items():
                pairs = [(j, i) for j, i in enumerate(keep) if i >= rng.start and i - k >= first and present[i - k]]
                if pairs:
                    before = np.stack([block[at[i - k]] if i - k >= a else window[i - k] for _, i in pairs])
                    after = block[[j for j, _ in pairs]]
                    flight.append((pool.submit(_reduce_difference, after, before), name, [], after))
            if back:
                for k, i in enumerate(keep):
                    window[i] = block[k]
                for i in [i for i in window if i <= b - 1 - back]:
                    del window[i]
            settle(2 * max(1, threads) * (1 + len(tendencies)))
            bar.update(done)
        settle(0)
    return Summary(
        ds.uuid,
        list(ds.variables),
        start,
        end,
        allow_nans,
        tendencies,
        (part.index, part.count),
        (rng.start, rng.stop),
        total,
        deltas,
    )


def _reduce(fields: np.ndarray) -> Moments:
    return Moments.of(_pooled(fields))


def _reduce_difference(after: np.ndarray, before: np.ndarray) -> Moments:
    return Moments.of(_pooled(np.subtract(after, before, dtype=np.float64)))


def _read_ahead(
    pool: Executor, read: Callable[[_T], np.ndarray], items: Sequence[_T], ahead: int
) -> Iterator[tuple[_T, np.ndarray]]:
    """``(item, read(item))`` in order, with up to ``ahead`` reads running in ``pool`` meanwhile."""
    futures: deque[tuple[_T, Future[np.ndarray]]] = deque()
    for item in items:
        futures.append((item, pool.submit(read, item)))
        if len(futures) > ahead:
            head, fut = futures.popleft()
            yield head, fut.result()
    while futures:
        head, fut = futures.popleft()
        yield head, fut.result()


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
