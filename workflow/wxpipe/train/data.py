"""Samples for training and scoring: windows of consecutive dates, read from Zarr a batch at a time.

A sample starting at date index ``t`` needs dates ``t + o`` for some offsets ``o``; it is usable
when none of them is a declared missing date (and, for training, all lie in the period). Reading per batch (one
date is one chunk) keeps memory flat however long the period is; any sample that still holds a NaN
is dropped with a warning rather than poisoning the loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._model import Period
from ..dataset import Dataset

log = logging.getLogger(__name__)


def present(dataset: Dataset) -> np.ndarray:
    """(dates,) True where the date is not declared missing."""
    missing = np.array(dataset.missing_dates, dtype="datetime64[s]")
    return ~np.isin(dataset.dates, missing)


def sample_starts(dataset: Dataset, period: Period, offsets: Sequence[int], *, whole: bool = True) -> np.ndarray:
    """Date indices ``t`` in ``period`` with every ``t + o`` present in the dataset.

    With ``whole`` (training) every ``t + o`` must also lie in ``period``; without it (scoring) only
    the start must, and the verifying dates may run past the period's end.
    """
    ok_dates = present(dataset)
    in_period = np.zeros(len(ok_dates), dtype=bool)
    in_period[dataset.indices(period.start, period.end)] = True
    needed = ok_dates & in_period if whole else ok_dates
    n = len(needed)
    ok = ok_dates & in_period
    for o in offsets:
        shifted = np.zeros(n, dtype=bool)
        if o < n:
            shifted[: n - o] = needed[o:]
        ok &= shifted
    return np.nonzero(ok)[0]


@dataclass(frozen=True)
class Batch:
    """``fields`` (batch, len(offsets), values, variables) float32 in physical units; ``dates`` of each start."""

    starts: np.ndarray
    dates: np.ndarray
    fields: np.ndarray


def read_batch(dataset: Dataset, starts: Sequence[int] | np.ndarray, offsets: Sequence[int]) -> Batch:
    """Read the dates the samples need in one orthogonal selection (each date once), then drop NaN samples."""
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:  # a rank's empty share of a short global batch
        shape = (0, len(offsets), dataset.data.shape[-1], dataset.data.shape[1])
        return Batch(starts=starts, dates=dataset.dates[starts], fields=np.zeros(shape, dtype=np.float32))
    want = starts[:, None] + np.asarray(offsets, dtype=np.int64)[None, :]
    unique, where = np.unique(want, return_inverse=True)
    block = np.asarray(dataset.data.oindex[unique], dtype=np.float32)  # (unique, variables, 1, values)
    fields = block[:, :, 0, :].transpose(0, 2, 1)[where.reshape(want.shape)]
    finite = np.isfinite(fields).all(axis=(1, 2, 3))
    if not finite.all():
        bad = ", ".join(str(dataset.dates[t]) for t in starts[~finite])
        log.warning("%s: skipping samples with NaN values starting at %s", dataset.path, bad)
    return Batch(
        starts=starts[finite], dates=dataset.dates[starts[finite]], fields=np.ascontiguousarray(fields[finite])
    )


def shuffled_batches(starts: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless batches of start indices: each pass over the samples is a fresh permutation."""
    if len(starts) == 0:
        raise ValueError("no samples to draw batches from")
    while True:
        order = rng.permutation(starts)
        for lo in range(0, len(order), batch_size):
            yield order[lo : lo + batch_size]


def prefetched(dataset: Dataset, starts: Iterator[np.ndarray], offsets: Sequence[int], count: int) -> Iterator[Batch]:
    """``count`` batches, each read in a background thread while the previous one is being used.

    Zarr decompression releases the GIL, so reading overlaps with the optimiser step; the order of
    batches is that of ``starts``, so training stays deterministic.
    """
    if count <= 0:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wxpipe-read") as pool:
        ahead = pool.submit(read_batch, dataset, next(starts), offsets)
        for i in range(count):
            batch = ahead.result()
            if i + 1 < count:
                ahead = pool.submit(read_batch, dataset, next(starts), offsets)
            yield batch


def evenly_spaced(starts: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` samples spread over the whole period (a cheap, deterministic validation set)."""
    if len(starts) <= limit:
        return starts
    return starts[np.linspace(0, len(starts) - 1, limit).round().astype(np.int64)]


def tendency_stdev(
    dataset: Dataset, starts: np.ndarray, mean: np.ndarray, stdev: np.ndarray, limit: int = 64, batch: int = 8
) -> np.ndarray:
    """Per-variable standard deviation of the normalised one-step change, from up to ``limit`` samples.

    The loss divides errors by it, so variables that change little per step weigh as much as those
    that change a lot.
    """
    chosen = evenly_spaced(starts, limit)
    total = np.zeros(len(mean))
    squares = np.zeros(len(mean))
    count = 0
    for lo in range(0, len(chosen), batch):
        fields = read_batch(dataset, chosen[lo : lo + batch], (0, 1)).fields
        step = (fields[:, 1] - fields[:, 0]) / stdev
        total += step.sum(axis=(0, 1))
        squares += (step.astype(np.float64) ** 2).sum(axis=(0, 1))
        count += step.shape[0] * step.shape[1]
    if count == 0:
        return np.ones(len(mean))
    var = squares / count - (total / count) ** 2
    return np.sqrt(np.clip(var, 0.0, None))
