"""Executing a statistics plan: read each chunk once, reduce it in a thread pool, merge in date order."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pydantic

from ..dataset import Dataset, Part, read_dates
from ..errors import WxpipeError
from ..progress import progress
from ..recipe import Recipe
from ..timeutil import iso
from ._moments import Moments, Summary
from ._plan import ChunkRead, StatisticsPlan, plan_for

_T = TypeVar("_T")


def tendencies_of(ds: Dataset) -> dict[str, int]:
    """The dataset's recipe ``statistics.tendencies`` as ``{"6h": 1, "12h": 2}``."""
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


def compute(
    ds: Dataset,
    start: dt.datetime,
    end: dt.datetime,
    allow_nans: bool,
    tendencies: Mapping[str, int] | None = None,
    part: Part | None = None,
    threads: int = 1,
) -> Summary:
    """One read pass over ``part`` of the dates in ``[start, end]``, skipping declared missing dates:
    :func:`~wxpipe.statistics.plan_for`, then :func:`run_statistics`."""
    tendencies = dict(tendencies or {})
    part = part or Part(1, 1)
    plan = plan_for(ds, start, end, tendencies, part)
    total, deltas = run_statistics(ds, plan, allow_nans, threads)
    dates = (plan.dates.start, plan.dates.stop)
    return Summary(
        ds.uuid, list(ds.variables), start, end, allow_nans, tendencies, (part.index, part.count), dates, total, deltas
    )


def run_statistics(
    ds: Dataset, plan: StatisticsPlan, allow_nans: bool, threads: int = 1
) -> tuple[Moments, dict[str, Moments]]:
    """The moments of the plan's dates and of its tendencies.

    With ``threads`` > 1, chunks are read and reduced by that many threads; the moments are merged in
    date order all the same, so the result does not depend on the number of threads.
    """
    n_threads = max(1, threads)
    sums = _Reductions(ds, plan.tendencies, allow_nans)
    window: dict[int, np.ndarray] = {}  # date index -> fields of earlier reads, for the tendencies
    desc = f"statistics {plan.part.index}/{plan.part.count}"
    with ThreadPoolExecutor(n_threads) as pool, progress(total=len(plan.dates), desc=desc, unit="date") as bar:

        def read(r: ChunkRead) -> np.ndarray:
            return read_dates(ds, r.dates.start, r.dates.stop)

        for r, fields in _read_ahead(pool, read, plan.reads, 2 * n_threads):
            if r.present:
                _submit(pool, sums, r, fields, window, plan.look_back)
                sums.settle(2 * n_threads * (1 + len(plan.tendencies)))
            bar.update(len(r.own))
        sums.settle()
    return sums.total, sums.deltas


def _submit(
    pool: Executor, sums: _Reductions, r: ChunkRead, fields: np.ndarray, window: dict[int, np.ndarray], back: int
) -> None:
    """Send the reductions of one read to ``pool``; keep the fields the next reads' tendencies need."""
    a = r.dates.start
    block = fields if len(r.present) == len(r.dates) else fields[[i - a for i in r.present]]
    at = {i: k for k, i in enumerate(r.present)}
    mine = r.reduced
    if mine:
        tail = block[len(r.present) - len(mine) :]  # the dates of the part are the tail of the read
        sums.add(pool.submit(_reduce, tail), None, mine, tail)
    for name, pairs in r.pairs.items():
        if pairs:
            before = np.stack([block[at[j]] if j >= a else window[j] for _, j in pairs])
            after = block[[at[i] for i, _ in pairs]]
            sums.add(pool.submit(_reduce_difference, after, before), name, (), after)
    if back:
        for k, i in enumerate(r.present):
            window[i] = block[k]
        for i in [i for i in window if i <= r.dates.stop - 1 - back]:
            del window[i]


class _Reductions:
    """Reductions in flight, merged in the order they were sent (so threads never change the result)."""

    def __init__(self, ds: Dataset, tendencies: Mapping[str, int], allow_nans: bool) -> None:
        self.total = Moments.empty(len(ds.variables))
        self.deltas = {name: Moments.empty(len(ds.variables)) for name in tendencies}
        self._ds, self._allow_nans = ds, allow_nans
        # (reduction, tendency name or None, dates, block)
        self._flight: deque[tuple[Future[Moments], str | None, Sequence[int], np.ndarray]] = deque()

    def add(self, reduction: Future[Moments], name: str | None, dates: Sequence[int], block: np.ndarray) -> None:
        self._flight.append((reduction, name, dates, block))

    def settle(self, keep: int = 0) -> None:
        """Merge the oldest reductions until at most ``keep`` are in flight."""
        while len(self._flight) > keep:
            reduction, name, dates, block = self._flight.popleft()
            m = reduction.result()
            if name is not None:
                self.deltas[name] = self.deltas[name].merge(m)
                continue
            if not self._allow_nans and m.has_nans.any():
                _refuse_nans_in_block(self._ds, dates, np.isnan(block).any(axis=(2, 3)))
            self.total = self.total.merge(m)


def _refuse_nans_in_block(ds: Dataset, dates: Sequence[int], nans: np.ndarray) -> None:
    """Raise naming the first date (and its variables) with NaNs; ``nans`` is (dates, variables)."""
    if nans.any():
        k = int(np.nonzero(nans.any(axis=1))[0][0])
        bad = [v for v, flag in zip(ds.variables, nans[k], strict=True) if flag]
        raise WxpipeError(f"{ds.path}: NaN in {', '.join(bad)} at {iso(ds.dates[dates[k]])} (allow_nans is false)")


def _pooled(fields: np.ndarray) -> np.ndarray:
    """(dates, variables, ensembles, values) -> (variables, samples)."""
    return np.moveaxis(fields, 1, 0).reshape(fields.shape[1], -1)


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
