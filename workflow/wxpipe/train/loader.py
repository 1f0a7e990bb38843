"""The training loader: batches of samples read ahead by a pool of threads, straight from the chunk files.

Each batch's dates are read once (a date two samples share is decoded once, then copied), one task per
date chunk (or shard), by ``workers`` threads, ``prefetch`` batches ahead of the optimiser step. Batches
come out in the order their starts were drawn, so training stays deterministic whatever the thread count.

A Zarr v2 store without filters (the default layout, and the v2 layouts wxpipe writes) is read as chunk
files decoded by the array's own codec (:class:`~wxpipe.dataset.ChunkFiles`; zarr-python's selection
costs several times the decoding); other stores (Zarr v3, shards) go through zarr-python, one selection
per date chunk or shard. A chunk that is one date of one member decodes straight into its place: a
batch's ``fields`` are a transposed view of a (batch, offsets, variables, values) buffer, the order a
chunk holds a date in. :func:`to_device` makes them a contiguous tensor on the device; on a GPU the
buffers are pinned and that copy does not block.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import LoaderConfig
from ..dataset import ChunkFiles, Dataset
from ..samples import Batch, kept, needed

__all__ = ["Loader", "WaitClock", "prefetched", "to_device"]

log = logging.getLogger(__name__)


class _Reader:
    """Reads dates of one store into (variables, values) places, member 0: chunk files, else zarr-python."""

    def __init__(self, dataset: Dataset) -> None:
        self.data = dataset.data
        self.shape: tuple[int, ...] = tuple(self.data.shape)
        self.files = ChunkFiles.of(dataset.path, self.data)
        shards = self.data.shards if self.files is None else None
        self.rows = int((shards or self.data.chunks)[0])  # dates one task reads together
        one_date = (1, self.shape[1], 1, self.shape[3])
        self.direct = self.files is not None and self.files.chunks == one_date and self.files.dtype == np.float32
        self._local = threading.local()

    def groups(self, dates: np.ndarray) -> list[np.ndarray]:
        """Indices into the sorted ``dates``, one group per date chunk (or shard): what one task reads."""
        if len(dates) == 0:
            return []
        rows = dates // self.rows
        return np.split(np.arange(len(dates)), np.flatnonzero(np.diff(rows)) + 1)

    def read(self, dates: np.ndarray, places: Sequence[np.ndarray]) -> None:
        """Date ``dates[i]`` into ``places[i]``; the dates lie in one date chunk (or shard)."""
        if self.files is None:
            block = np.asarray(self.data.oindex[dates, :, 0, :])  # one selection: each chunk read once
            for place, date in zip(places, block, strict=True):
                place[...] = date
        elif self.direct:
            for d, place in zip(dates, places, strict=True):
                self.files.read_into(int(d), place.reshape(self.files.chunks))
        else:
            self._read_chunks(self.files, dates, places)

    def _read_chunks(self, files: ChunkFiles, dates: np.ndarray, places: Sequence[np.ndarray]) -> None:
        """Every chunk of the dates' row holding member 0, decoded once into this thread's scratch buffer."""
        cd, cv, _, cp = files.chunks
        row = int(dates[0]) // cd
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = np.empty(files.chunks, files.dtype)
        for iv, ip in itertools.product(range(-(-self.shape[1] // cv)), range(-(-self.shape[3] // cp))):
            files.read_into((row, iv, 0, ip), scratch)
            v0, p0 = iv * cv, ip * cp
            v1, p1 = min(v0 + cv, self.shape[1]), min(p0 + cp, self.shape[3])
            for d, place in zip(dates, places, strict=True):
                place[v0:v1, p0:p1] = scratch[int(d) - row * cd, : v1 - v0, 0, : p1 - p0]


@dataclass
class _Job:
    """One batch being read: its samples, the buffer its tasks fill, and which needed dates are finite."""

    starts: np.ndarray
    where: np.ndarray  # (samples, offsets): index of each date among the needed ones
    fields: np.ndarray  # (samples, offsets, variables, values)
    finite: np.ndarray  # per needed date
    tasks: list[Future[None]]


class Loader:
    """``count`` batches of the samples each array from ``starts`` holds, read ahead by a pool of threads.

    ``starts`` is drawn from in the consumer's thread, at most ``prefetch`` + 1 arrays ahead of the
    batch it takes. Iterate once: the threads stop when the iteration ends, early too (``break``, an
    error, :meth:`close`). ``waits`` holds the seconds the consumer spent waiting for each batch.
    """

    def __init__(
        self,
        dataset: Dataset,
        starts: Iterable[np.ndarray],
        offsets: Sequence[int],
        count: int,
        *,
        workers: int = 4,
        prefetch: int = 2,
        pin_memory: bool = False,
        drop_nan: bool = True,
    ) -> None:
        if workers < 1 or prefetch < 1:
            raise ValueError(f"workers and prefetch must be at least 1, got {workers} and {prefetch}")
        self.dataset, self.offsets = dataset, tuple(offsets)
        self.starts = itertools.islice(starts, max(0, count))
        self.workers, self.prefetch, self.pin_memory, self.drop_nan = workers, prefetch, pin_memory, drop_nan
        self.reader = _Reader(dataset)
        self.waits: list[float] = []
        self._buffers: list[np.ndarray] = []
        self._active: weakref.ref[Generator[Batch]] | None = None
        how = "chunk files" if self.reader.files is not None else "zarr-python"
        log.info(
            "%s: batches read from %s, %d date(s) per read, by %d threads, %d batches ahead",
            *(dataset.path, how, self.reader.rows, workers, prefetch),
        )
        self._finite: Any = None
        if drop_nan:  # numba only then: training keeps NaN samples and runs where numba is not installed
            from .._kernels import all_finite

            self._finite = all_finite
            all_finite(np.zeros(1, np.float32))  # compiled (or loaded from numba's cache) here, not in a batch

    @property
    def wait_seconds(self) -> float:
        return float(sum(self.waits))

    def __iter__(self) -> Iterator[Batch]:
        batches = self._batches()
        self._active = weakref.ref(batches)  # not the generator itself: a cycle would keep its threads alive
        return batches

    def close(self) -> None:
        """Stop reading ahead: the threads end once their current chunk is decoded."""
        batches = self._active() if self._active is not None else None
        if batches is not None:
            batches.close()

    def _batches(self) -> Generator[Batch]:
        ahead: deque[_Job] = deque()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="wxpipe-load")
        try:
            while True:
                asked = time.perf_counter()
                while len(ahead) <= self.prefetch and (starts := next(self.starts, None)) is not None:
                    ahead.append(self._submit(pool, starts))
                if not ahead:
                    return
                batch = self._finish(ahead.popleft())
                self.waits.append(time.perf_counter() - asked)
                yield batch
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, starts: np.ndarray) -> _Job:
        """The job reading one batch, its tasks (one per date chunk) queued behind the earlier batches'."""
        starts = np.asarray(starts, dtype=np.int64)
        n_vars, n_values = self.reader.shape[1], self.reader.shape[3]
        fields = self._empty((len(starts), len(self.offsets), n_vars, n_values))
        dates, where = needed(starts, self.offsets, self.reader.shape[0])
        job = _Job(starts, where, fields, np.ones(len(dates), dtype=bool), [])
        flat = fields.reshape(-1, n_vars, n_values)
        order = np.argsort(where.ravel(), kind="stable")  # the places of each date, date by date
        bounds = np.searchsorted(where.ravel()[order], np.arange(len(dates) + 1))
        places = [order[bounds[i] : bounds[i + 1]] for i in range(len(dates))]
        groups = self.reader.groups(dates)
        per = max(1, -(-len(groups) // self.workers))  # a batch's groups in at most one task per worker
        for lo in range(0, len(groups), per):
            job.tasks.append(pool.submit(self._fill, job, flat, groups[lo : lo + per], dates, places))
        return job

    def _fill(
        self, job: _Job, flat: np.ndarray, groups: list[np.ndarray], dates: np.ndarray, places: list[np.ndarray]
    ) -> None:
        """Read the dates of ``groups`` into their first places, copy them to the others, note which are finite."""
        for group in groups:
            self.reader.read(dates[group], [flat[places[i][0]] for i in group])
            for i in group:
                first, *others = places[i]
                if others:
                    flat[others] = flat[first]
                if self._finite is not None:
                    job.finite[i] = self._finite(flat[first].reshape(-1))

    def _finish(self, job: _Job) -> Batch:
        for task in job.tasks:
            task.result()
        fields = job.fields.transpose(0, 1, 3, 2)
        finite = job.finite[job.where].all(axis=1) if self.drop_nan else None
        return kept(self.dataset, job.starts, fields, finite)

    def _empty(self, shape: tuple[int, ...]) -> np.ndarray:
        """A batch buffer: an earlier one nothing refers to any more (every view of it, a tensor made from it,
        holds a reference), else a new one. Fresh pages cost more than decoding into them; pinned buffers
        come from torch's cache, which also waits for the copies still reading them."""
        if self.pin_memory:
            return torch.empty(shape, dtype=torch.float32, pin_memory=True).numpy()
        for buf in self._buffers:
            if buf.shape == shape and sys.getrefcount(buf) == 3:  # the list, ``buf`` and getrefcount's argument
                return buf
        buf = np.empty(shape, dtype=np.float32)
        self._buffers = [*self._buffers[-(self.prefetch + 3) :], buf]  # enough for the batches in flight
        return buf


def prefetched(
    dataset: Dataset,
    starts: Iterable[np.ndarray],
    offsets: Sequence[int],
    count: int,
    loader: LoaderConfig | None = None,
    device: str = "cpu",
    drop_nan: bool = True,
) -> Loader:
    """The training batches as ``training.<run>.loader`` sets the loader up; pinned buffers on a GPU."""
    cfg = loader or LoaderConfig.model_validate({})
    pin = torch.device(device).type == "cuda"
    return Loader(
        dataset, starts, offsets, count, workers=cfg.workers, prefetch=cfg.prefetch, pin_memory=pin, drop_nan=drop_nan
    )


def to_device(fields: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """``fields`` as a contiguous tensor on ``device``: from pinned memory without blocking (the loader's
    buffers on a GPU stay alive while their batch does), then in the order the model expects."""
    tensor = torch.from_numpy(fields)
    if torch.device(device).type != "cpu":
        tensor = tensor.to(device, non_blocking=tensor.is_pinned())
    return tensor.contiguous()


class WaitClock:
    """The time a consumer waits for its batches against its steps' wall time, over the last ``window``.

    A step runs from the moment the consumer asks for a batch (:meth:`ask`) through its arrival
    (:meth:`got`) to the end of its work (:meth:`stepped`); what the consumer does between
    :meth:`stepped` and the next :meth:`ask` (saving a state) counts as neither.
    """

    def __init__(self, window: int) -> None:
        self.steps: deque[tuple[float, float]] = deque(maxlen=window)  # (wait, wall) per step
        self.asked = self.arrived = time.perf_counter()

    def ask(self) -> None:
        self.asked = time.perf_counter()

    def got(self) -> None:
        self.arrived = time.perf_counter()

    def stepped(self) -> None:
        self.steps.append((self.arrived - self.asked, time.perf_counter() - self.asked))

    def fraction(self) -> float:
        wall = sum(w for _, w in self.steps)
        return sum(s for s, _ in self.steps) / wall if wall > 0 else 0.0

    def metrics(self, step: int) -> list[tuple[str, float, int]]:
        """``data_wait_fraction``, ``data_wait_seconds`` (the mean wait per step) and ``step_seconds`` (the
        mean wall time per step, wait included) at ``step``."""
        n = max(1, len(self.steps))
        wait, wall = sum(s for s, _ in self.steps) / n, sum(w for _, w in self.steps) / n
        return [
            ("data_wait_fraction", self.fraction(), step),
            ("data_wait_seconds", wait, step),
            ("step_seconds", wall, step),
        ]

    def show(self, bar: Any) -> None:
        """The wait fraction in ``bar``'s postfix, beside what else it shows."""
        rest = [p for p in str(bar.postfix or "").split(", ") if p and not p.startswith("wait=")]
        bar.set_postfix_str(", ".join([*rest, f"wait={self.fraction():.0%}"]), refresh=False)
