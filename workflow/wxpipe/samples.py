"""Samples: windows of dates read from a dataset a batch at a time, for training and for scoring alike.

A sample starting at date index ``t`` needs dates ``t + o`` for some offsets ``o`` (negative ones
reach back: a model's past states); it is usable when none of them is a declared missing date
(and, for training, all lie in the period). Reading per batch (one date is one chunk) keeps memory
flat however long the period is; any sample that still holds a NaN is dropped with a warning, unless
the reader is told to keep it (a loss masked where the truth is NaN trains on it).

:func:`read_batch` reads through zarr-python; the training loader (:mod:`wxpipe.train.loader`) reads
the same batches from the chunk files with a pool of threads, and both share :func:`needed` and
:func:`kept`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._strict import Period
from .dataset import Dataset

log = logging.getLogger(__name__)


def present(dataset: Dataset) -> np.ndarray:
    """(dates,) True where the date is not declared missing."""
    missing = np.array(dataset.missing_dates, dtype="datetime64[s]")
    return ~np.isin(dataset.dates, missing)


def _shift(flags: np.ndarray, offset: int) -> np.ndarray:
    """``out[t] = flags[t + offset]``, False where ``t + offset`` falls outside."""
    n = len(flags)
    out = np.zeros(n, dtype=bool)
    if 0 <= offset < n:
        out[: n - offset] = flags[offset:]
    elif -n < offset < 0:
        out[-offset:] = flags[: n + offset]
    return out


def sample_starts(dataset: Dataset, period: Period, offsets: Sequence[int], *, whole: bool = True) -> np.ndarray:
    """Date indices ``t`` in ``period`` with every ``t + o`` present in the dataset.

    With ``whole`` (training) every ``t + o`` must also lie in ``period``; without it (scoring) only
    the start must, and the other dates may lie outside the period.
    """
    ok_dates = present(dataset)
    in_period = np.zeros(len(ok_dates), dtype=bool)
    in_period[dataset.indices(period.start, period.end)] = True
    needed = ok_dates & in_period if whole else ok_dates
    ok = ok_dates & in_period
    for o in offsets:
        ok &= _shift(needed, o)
    return np.nonzero(ok)[0]


@dataclass(frozen=True)
class Batch:
    """``fields`` (batch, len(offsets), values, variables) float32 in physical units; ``dates`` of each start.

    The training loader's ``fields`` are a transposed view of a (batch, offsets, variables, values) buffer,
    the order a chunk holds a date in; :func:`read_batch`'s are contiguous. The values are the same.
    """

    starts: np.ndarray
    dates: np.ndarray
    fields: np.ndarray


def needed(starts: np.ndarray, offsets: Sequence[int], n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """The dates a batch of samples needs, each once (sorted), and for each (sample, offset) the index of
    its date among them; a date outside the dataset is an error (negative indices would wrap)."""
    want = np.asarray(starts, dtype=np.int64)[:, None] + np.asarray(offsets, dtype=np.int64)[None, :]
    if want.size and (want.min() < 0 or want.max() >= n_dates):
        raise IndexError(f"samples need dates {want.min()}..{want.max()}, outside the dataset's 0..{n_dates - 1}")
    unique, where = np.unique(want, return_inverse=True)
    return unique, where.reshape(want.shape)


def kept(dataset: Dataset, starts: np.ndarray, fields: np.ndarray, finite: np.ndarray | None) -> Batch:
    """The batch of the samples kept: every one when ``finite`` is None, else those it flags (the others
    are named in a warning)."""
    if finite is None or finite.all():
        return Batch(starts=starts, dates=dataset.dates[starts], fields=fields)
    bad = ", ".join(str(dataset.dates[t]) for t in starts[~finite])
    log.warning("%s: skipping samples with NaN values starting at %s", dataset.path, bad)
    return Batch(starts=starts[finite], dates=dataset.dates[starts[finite]], fields=fields[finite])


def read_batch(
    dataset: Dataset, starts: Sequence[int] | np.ndarray, offsets: Sequence[int], *, drop_nan: bool = True
) -> Batch:
    """Read the dates the samples need in one orthogonal selection (each date once); with ``drop_nan``
    drop the samples that hold a NaN."""
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:  # a rank's empty share of a short global batch
        shape = (0, len(offsets), dataset.data.shape[-1], dataset.data.shape[1])
        return Batch(starts=starts, dates=dataset.dates[starts], fields=np.zeros(shape, dtype=np.float32))
    unique, where = needed(starts, offsets, len(dataset.dates))
    block = np.asarray(dataset.data.oindex[unique], dtype=np.float32)  # (unique, variables, 1, values)
    fields = np.ascontiguousarray(block[:, :, 0, :].transpose(0, 2, 1)[where])
    return kept(dataset, starts, fields, np.isfinite(fields).all(axis=(1, 2, 3)) if drop_nan else None)


def read_members(dataset: Dataset, starts: Sequence[int] | np.ndarray, offsets: Sequence[int]) -> Batch:
    """:func:`read_batch` keeping every ensemble member: ``fields`` (batch, offsets, members, values, variables),
    NaN kept: an initial-condition ensemble's states, each member rolled out on its own."""
    starts = np.asarray(starts, dtype=np.int64)
    unique, where = needed(starts, offsets, len(dataset.dates))
    block = np.asarray(dataset.data.oindex[unique], dtype=np.float32)  # (unique, variables, members, values)
    fields = np.ascontiguousarray(block.transpose(0, 2, 3, 1)[where])
    return Batch(starts=starts, dates=dataset.dates[starts], fields=fields)
