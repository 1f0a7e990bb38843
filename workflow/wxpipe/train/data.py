"""Training batches: endless shuffled draws of (t, t+1) samples, read ahead of the optimiser step.

Which samples exist and how one batch is read is :mod:`wxpipe.samples`, shared with the evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..dataset import Dataset
from ..samples import Batch, read_batch


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
