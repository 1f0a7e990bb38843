"""``python -m bench loader``: the training loader against the bare read+decode rate of the same chunks.

On the synthetic store of :func:`bench._env.ensure_synthetic` (default 1000 dates x 10 variables x 40 320
points float32, Zarr v2, one date per chunk, Blosc lz4 5 shuffle), the same training batches (``--batch``
(t, t+1) samples drawn as training draws them, :func:`wxpipe.train.order.batches`) are read by:

(a) the bare read+decode (the anchor): exactly the chunk files those batches need (each batch's dates
    once), read and decoded by numcodecs into a reused buffer per thread, by a pool of ``--workers``
    threads: no batch assembly, no NaN check, no order kept;
(b) the production loader (:class:`wxpipe.train.loader.Loader`) with the same number of threads,
    iterating the same batches in order, nothing done with them; NaN samples kept (as training reads,
    its loss masks NaN) and dropped (``drop_nan=True``, a NaN check per date);
(c) the loader training had before it (one background thread, one batch ahead, zarr-python's
    orthogonal selection), on the first batches only, for reference;
(d) the same (a) and (b) on a layout of a smaller store with 8 dates per chunk (``wxpipe rechunk``), where
    a batch reads whole 8-date chunks.

Rates are GB/s of decoded float32 chunks (10^9 bytes), the same bytes for (a) and (b); the target is
(b) ≥ 80 % of (a). Files are in the page cache; malloc is tuned as the CLI tunes it.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import statistics as stats
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._env import WORK, ensure_synthetic, machine, rel, replace_section, revision, today

log = logging.getLogger("bench.loader")

SECTION = "Training loader"
TARGET = 0.80  # loader GB/s over the bare read+decode GB/s, at least
OFFSETS = (0, 1)
OLD_BATCHES = 40  # the old loader is slow: its rate from the first batches


@dataclass(frozen=True)
class Case:
    """One store and the batches read from it; ``chunks``: the chunk indices each batch needs."""

    name: str
    store: Path
    batches: list[np.ndarray]
    chunks: list[tuple[int, ...]]
    chunk_bytes: int

    @property
    def gb(self) -> float:
        return len(self.chunks) * self.chunk_bytes / 1e9


def draw(n_dates: int, n_batches: int, batch: int, seed: int = 0) -> list[np.ndarray]:
    """``n_batches`` batches of sample starts, as training draws them."""
    from wxpipe.train.order import Position, batches

    starts = np.arange(-min(OFFSETS), n_dates - max(OFFSETS))
    return [b for b, _ in itertools.islice(batches(starts, batch, seed, Position()), n_batches)]


def case(name: str, store: Path, batches: list[np.ndarray]) -> Case:
    """The chunk files each batch needs: each batch's dates once, member 0, every variable and point."""
    from wxpipe.dataset import ChunkFiles, Dataset
    from wxpipe.samples import needed

    ds = Dataset(store)
    files = ChunkFiles.of(store, ds.data)
    assert files is not None, f"{store}: the bench reads Zarr v2 chunk files"
    cd, cv, _, cp = files.chunks
    grid = (range(-(-ds.data.shape[1] // cv)), range(-(-ds.data.shape[3] // cp)))
    chunks = []
    for starts in batches:
        rows = np.unique(needed(starts, OFFSETS, ds.data.shape[0])[0] // cd)
        chunks += [(int(r), iv, 0, ip) for r in rows for iv, ip in itertools.product(*grid)]
    return Case(name, store, batches, chunks, int(np.prod(files.chunks)) * files.dtype.itemsize)


def bare(c: Case, workers: int) -> float:
    """Seconds to read and decode every chunk ``c`` needs with ``workers`` threads, one reused buffer each."""
    from wxpipe.dataset import ChunkFiles, Dataset

    ds = Dataset(c.store)
    files = ChunkFiles.of(c.store, ds.data)
    assert files is not None
    local = threading.local()

    def one(index: tuple[int, ...]) -> None:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty(files.chunks, files.dtype)
        with open(files.file(index), "rb") as f:
            files.codec.decode(f.read(), out=buf)

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        for _ in pool.map(one, c.chunks, chunksize=8):
            pass
        return time.perf_counter() - t0


def loader(c: Case, workers: int, prefetch: int, drop_nan: bool = False) -> float:
    """Seconds for :class:`wxpipe.train.loader.Loader` to deliver every batch of ``c``, in order (from its
    first request: setting it up, e.g. loading the compiled NaN check, is once per run, not throughput)."""
    from wxpipe.dataset import Dataset
    from wxpipe.train.loader import Loader

    batches = Loader(
        Dataset(c.store),
        iter(c.batches),
        OFFSETS,
        len(c.batches),
        workers=workers,
        prefetch=prefetch,
        drop_nan=drop_nan,
    )
    t0 = time.perf_counter()
    for _ in batches:
        pass
    return time.perf_counter() - t0


def old_loader(c: Case) -> float:
    """Seconds for the loader training had before, over the first OLD_BATCHES batches of ``c``."""
    from wxpipe.dataset import Dataset
    from wxpipe.samples import read_batch

    ds = Dataset(c.store)
    batches = c.batches[:OLD_BATCHES]

    def read(starts: np.ndarray) -> object:
        return read_batch(ds, starts, OFFSETS)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, batches[0])
        for i in range(len(batches)):
            ahead.result()
            if i + 1 < len(batches):
                ahead = pool.submit(read, batches[i + 1])
    return time.perf_counter() - t0


def ensure_layout(src: Path, dst: Path, dates: int, threads: int) -> Path:
    """``src`` rechunked to ``dates`` dates per chunk (every point), written once and reused."""
    import zarr

    from wxpipe.rechunk import Layout, done, rechunk

    if dst.exists():
        try:
            if zarr.open_group(str(dst), mode="r")["data"].chunks[0] == dates and done(dst).all():
                return dst
        except Exception:
            pass
        shutil.rmtree(dst)
    log.info("writing the layout %s (%d dates per chunk)", dst, dates)
    points = zarr.open_group(str(src), mode="r")["data"].shape[3]
    rechunk(src, dst, Layout((dates, points)), max_mem=1 << 30, threads=threads)
    return dst


def warm(store: Path) -> None:
    """Every chunk file in the page cache: the figures are reading and decoding, not the disk."""
    for path in (store / "data").iterdir():
        if not path.name.startswith("."):
            path.read_bytes()


def rounds(fns: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """Each timing ``repeat`` times, interleaved so that a busy spell hits them alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeat):
        for name, fn in fns.items():
            out[name].append(fn())
        log.info("round %d/%d: %s", r + 1, repeat, ", ".join(f"{k} {v[-1]:.2f} s" for k, v in out.items()))
    return out


@dataclass(frozen=True)
class Options:
    dates: int
    points: int
    batches: int
    batch: int
    workers: int
    prefetch: int
    repeat: int
    layout_dates: int


def run(o: Options) -> list[str]:
    from wxpipe._malloc import keep_freed_buffers

    keep_freed_buffers()  # as every wxpipe command does: batch buffers are reused, not faulted in afresh
    store = ensure_synthetic(WORK / "synthetic" / f"synth-{o.dates}.zarr", o.dates, o.points)
    small = ensure_synthetic(WORK / "synthetic" / f"synth-{o.layout_dates}.zarr", o.layout_dates, o.points)
    layout = ensure_layout(small, WORK / "loader" / f"synth-{o.layout_dates}-dates8.zarr", 8, o.workers)
    for path in (store, layout):
        warm(path)
    main = case("dates", store, draw(o.dates, o.batches, o.batch))
    lay = case("layout", layout, draw(o.layout_dates, o.batches, o.batch, seed=1))
    load_before = os.getloadavg()[0]
    times = rounds(
        {
            "bare": lambda: bare(main, o.workers),
            "loader": lambda: loader(main, o.workers, o.prefetch),
            "loader, NaN check": lambda: loader(main, o.workers, o.prefetch, drop_nan=True),
            "old": lambda: old_loader(main),
            "layout bare": lambda: bare(lay, o.workers),
            "layout loader": lambda: loader(lay, o.workers, o.prefetch),
        },
        o.repeat,
    )
    loads = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    missed = []
    for key in ("loader", "loader, NaN check"):
        ratio, _ = _ratio(times, "bare", key)
        if ratio < TARGET:
            missed.append(f"{key} at {ratio:.0%} of the bare read+decode rate, target ≥ 80 %")
    body = _report(o, main, lay, times, missed, loads)
    replace_section(SECTION, body)
    print(body)
    return missed


def _ratio(times: dict[str, list[float]], anchor: str, key: str, scale: float = 1.0) -> tuple[float, str]:
    """The median over rounds of anchor seconds ÷ ``key`` seconds (x ``scale``), and the per-round ratios."""
    each = [a / t * scale for a, t in zip(times[anchor], times[key], strict=True)]
    return stats.median(each), ", ".join(f"{r:.2f}" for r in each)


def _table(o: Options, main: Case, lay: Case, times: dict[str, list[float]]) -> list[str]:
    med = {k: stats.median(v) for k, v in times.items()}
    old_gb = main.gb * min(OLD_BATCHES, len(main.batches)) / len(main.batches)
    rows = [
        ("bare read+decode of the batches' chunk files (anchor)", main, "bare", main.gb),
        ("`Loader` (production; NaN samples kept, as training reads)", main, "loader", main.gb),
        ("`Loader`, NaN samples dropped (`drop_nan=True`)", main, "loader, NaN check", main.gb),
        (f"old loader: 1 thread, 1 batch ahead, zarr `oindex` (first {OLD_BATCHES} batches)", main, "old", old_gb),
        ("bare read+decode, 8-date chunks (anchor)", lay, "layout bare", lay.gb),
        ("`Loader`, 8-date chunks", lay, "layout loader", lay.gb),
    ]
    anchor = {"dates": main.gb / med["bare"], "layout": lay.gb / med["layout bare"]}
    table = [
        "| reader | store | threads | decoded GB | wall s | GB/s | ÷ anchor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, c, key, gb in rows:
        rate = gb / med[key]
        threads = 1 if key == "old" else o.workers
        table.append(
            f"| {name} | `{rel(c.store)}` | {threads} | {gb:.2f} | {med[key]:.3f} | {rate:.2f} | "
            f"{rate / anchor[c.name]:.2f} |"
        )
    return table


def _ratios(o: Options, main: Case, times: dict[str, list[float]]) -> list[str]:
    loader_ratio, loader_rounds = _ratio(times, "bare", "loader")
    nan_ratio, nan_rounds = _ratio(times, "bare", "loader, NaN check")
    old_ratio, _ = _ratio(times, "bare", "old", min(OLD_BATCHES, len(main.batches)) / len(main.batches))
    lay_ratio, lay_rounds = _ratio(times, "layout bare", "layout loader")
    return [
        "| ratio (median of per-round ratios) | measured | per round | target |",
        "|---|---:|---|---|",
        f"| `Loader` GB/s ÷ bare read+decode GB/s, {o.workers} threads each | **{loader_ratio:.2f}** | "
        f"{loader_rounds} | ≥ {TARGET:.2f} |",
        f"| the same, NaN samples dropped | **{nan_ratio:.2f}** | {nan_rounds} | ≥ {TARGET:.2f} |",
        f"| old loader GB/s ÷ bare GB/s | {old_ratio:.2f} | | |",
        f"| `Loader` ÷ bare, 8-date chunks | {lay_ratio:.2f} | {lay_rounds} | |",
    ]


def _report(o: Options, main: Case, lay: Case, times: dict[str, list[float]], missed: list[str], loads: str) -> str:
    samples = len(main.batches) * o.batch / stats.median(times["loader"])
    argv = " ".join(sys.argv[1:]) or "loader"
    out = [
        f"Measured {today()} ({revision()}) on {machine()}; load average {loads} "
        "(other work shares this machine: compare ratios, not seconds).",
        "",
        f"Command: `.venv/bin/python -m bench {argv}` (effective options `--dates {o.dates} --points {o.points} "
        f"--batches {o.batches} --batch {o.batch} --workers {o.workers} --prefetch {o.prefetch} --repeat {o.repeat} "
        f"--layout-dates {o.layout_dates}`). Stores written by `bench/_env.py:ensure_synthetic` (10 variables x "
        f"{o.points} points float32, Zarr v2, Blosc lz4 5 shuffle, one date per chunk); the layout by "
        f"`wxpipe.rechunk.rechunk` from the {o.layout_dates}-date store. {o.batches} batches of {o.batch} "
        f"(t, t+1) samples drawn as training draws them; each batch's dates read once. GB/s = decoded GB of the "
        "chunk files the batches need ÷ wall s, the same GB for the anchor and the loader; files in the page cache. "
        f"{o.repeat} round(s), medians.",
        "",
        *_table(o, main, lay, times),
        "",
        *_ratios(o, main, times),
        "",
        f"The production loader delivered {samples:.0f} samples/s ({samples * 2 * main.chunk_bytes / 1e9:.2f} GB/s "
        "of input + target fields).",
        "",
        "Targets missed: " + ("; ".join(missed) if missed else "none") + ".",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench loader", description=__doc__)
    ap.add_argument("--dates", type=int, default=1000, help="dates of the synthetic store (default 1000)")
    ap.add_argument("--points", type=int, default=40320, help="grid points (default 40320, O96)")
    ap.add_argument("--batches", type=int, default=250, help="batches read per round (default 250)")
    ap.add_argument("--batch", type=int, default=4, help="samples per batch (default 4)")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="threads of both readers")
    ap.add_argument("--prefetch", type=int, default=2, help="batches the loader reads ahead (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported (default 3)")
    ap.add_argument("--layout-dates", type=int, default=240, help="dates of the store the layout is made of")
    ap.add_argument("--quick", action="store_true", help="fewer batches and one round (a busy machine)")
    a = ap.parse_args(argv)
    if a.quick:
        a.batches, a.repeat = min(a.batches, 80), 1
    run(Options(a.dates, a.points, a.batches, a.batch, a.workers, a.prefetch, a.repeat, a.layout_dates))


__all__ = ["bare", "loader", "main", "run"]
