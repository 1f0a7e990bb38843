"""``python -m bench statistics``: `wxpipe statistics` throughput against the store's bare read+decode rate.

One run, on the synthetic store of :func:`bench._env.ensure_synthetic` (default 1000 dates x 10 variables x
40 320 points float32, Zarr v2, one date per chunk, Blosc lz4 5 shuffle), measures:

(a) the bare read+decode rate: every chunk file read with ``open().read()`` and decoded by numcodecs into one
    reused buffer, in-process (the anchor), and the same dates read through zarr-python (for reference);
(b) ``wxpipe statistics STORE`` as a CLI subprocess, and the statistics pass in-process
    (:func:`wxpipe.statistics.compute`, no interpreter start or imports) with the CLI's default threads and 1;
(c) the parts path: ``wxpipe statistics-part --part i/2`` x 2 at once, then ``wxpipe statistics-merge``.

Rates are MB/s of decoded float32 (10^6 bytes). The target is statistics throughput ≥ 60 % of the bare rate:
the in-process pass, since a process's fixed start (interpreter, imports, ~1 s) is no throughput; the CLI's
figure and that fixed cost are reported beside it.
When it is missed (or with ``--profile``) ``wxpipe statistics`` is profiled with cProfile.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics as stats
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._env import (
    WORK,
    Timed,
    ensure_synthetic,
    machine,
    profile_cli,
    profile_section,
    rel,
    replace_section,
    revision,
    run_timed,
    synth_dates,
    today,
    wxpipe_exe,
)

log = logging.getLogger("bench.statistics")

SECTION = "Statistics (`wxpipe statistics`)"
THREADS = min(4, os.cpu_count() or 1)  # `wxpipe statistics --threads` default
TARGET = 0.60  # statistics MB/s over the bare read+decode MB/s, at least


def store_path(n_dates: int) -> Path:
    return WORK / "synthetic" / f"synth-{n_dates}.zarr"


def decoded_bytes(store: Path) -> int:
    spec = json.loads((store / "data" / ".zarray").read_text())
    return int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize


def disk_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "data").iterdir() if not p.name.startswith("."))


def bare_read(store: Path) -> float:
    """Seconds to read every date-chunk file and decode it with numcodecs into one reused buffer."""
    import numcodecs

    spec = json.loads((store / "data" / ".zarray").read_text())
    codec = numcodecs.get_codec(spec["compressor"])
    shape, chunks = spec["shape"], spec["chunks"]
    assert chunks[1:] == shape[1:], "bare read expects chunks spanning all variables, members and points"
    buf = np.empty(chunks, dtype=spec["dtype"])
    files = [store / "data" / f"{i}.0.0.0" for i in range(-(-shape[0] // chunks[0]))]
    t0 = time.perf_counter()
    for path in files:
        with open(path, "rb") as f:
            codec.decode(f.read(), out=buf)
    return time.perf_counter() - t0


def zarr_read(store: Path) -> float:
    """Seconds to read every date through zarr-python, one chunk per call (for reference)."""
    import zarr

    data = zarr.open_group(str(store), mode="r")["data"]
    step = data.chunks[0]
    t0 = time.perf_counter()
    for i in range(0, data.shape[0], step):
        np.asarray(data[i : i + step])
    return time.perf_counter() - t0


def in_process(store: Path, start: str, end: str, threads: int) -> tuple[float, float]:
    """Seconds of :func:`wxpipe.statistics.compute` over the period, timed inside a fresh child Python, and
    the seconds of numba's one-off start before it (its import and the load of the cached kernels,
    :func:`wxpipe._kernels.warm`). Imports, opening and numba's start are excluded from the pass: the CLI row
    holds them. A child so that the bench's own state does not slow it. The child tunes malloc as the CLI
    does (``wxpipe._malloc.keep_freed_buffers``): without it the pass takes about twice as long, every block
    faulting in fresh pages."""
    code = (
        "import datetime as dt, sys, time; from wxpipe._malloc import keep_freed_buffers; keep_freed_buffers(); "
        "from wxpipe.dataset import Dataset; from wxpipe.statistics import compute; "
        "t = time.perf_counter(); from wxpipe._kernels import warm; warm(); t = time.perf_counter() - t; "
        "ds = Dataset(sys.argv[1]); t0 = time.perf_counter(); "
        "start, end = (dt.datetime.fromisoformat(a) for a in sys.argv[2:4]); "
        "compute(ds, start, end, False, None, None, int(sys.argv[4])); "
        "print(time.perf_counter() - t0, t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(store), start, end, str(threads)], capture_output=True, text=True, check=True
    )
    took, start_s = out.stdout.strip().splitlines()[-1].split()
    return float(took), float(start_s)


def wx(*args: str | Path) -> list[str]:
    return [wxpipe_exe(), *(str(a) for a in args)]


@dataclass
class Round:
    bare: float
    zarr: float
    cli: Timed
    inproc: float
    inproc1: float
    numba_start: float
    parts_wall: float
    parts: list[Timed]
    merge: Timed

    @property
    def parts_total(self) -> float:
        return self.parts_wall + self.merge.wall


def measure_round(r: int, store: Path, period: list[str], repeat: int) -> Round:
    work, logs = WORK / "statistics", WORK / "statistics" / "logs"
    tag = f"round {r}/{repeat}"
    log.info("%s: (a) bare read+decode, zarr-python read", tag)
    bare = bare_read(store)
    zr = zarr_read(store)
    log.info("%s: (b) wxpipe statistics (CLI), then in-process compute", tag)
    cli = run_timed(wx("statistics", store, *period), logs / "statistics.log")
    inproc, numba_start = in_process(store, period[1], period[3], THREADS)
    inproc1, _ = in_process(store, period[1], period[3], 1)
    log.info("%s: (c) wxpipe statistics-part x 2 at once, statistics-merge", tag)
    outs = [work / f"part-{i}-of-2.npz" for i in (1, 2)]
    cmds = [wx("statistics-part", store, "--part", f"{i}/2", "--out", outs[i - 1], *period) for i in (1, 2)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(run_timed, cmds, [logs / f"part-{i}-of-2.log" for i in (1, 2)]))
    parts_wall = time.perf_counter() - t0
    merge = run_timed(wx("statistics-merge", store, *outs, *period), logs / "merge.log")
    return Round(bare, zr, cli, inproc, inproc1, numba_start, parts_wall, parts, merge)


def run(n_dates: int = 1000, n_points: int = 40320, repeat: int = 2, profile: bool = False) -> list[str]:
    store = ensure_synthetic(store_path(n_dates), n_dates, n_points)
    dates = synth_dates(n_dates)
    period = ["--start", dates[0].isoformat(), "--end", dates[-1].isoformat()]
    for path in (store / "data").iterdir():  # warm the page cache: every figure reads from memory
        path.read_bytes()
    load_before = os.getloadavg()[0]
    rounds = [measure_round(r, store, period, repeat) for r in range(1, repeat + 1)]
    load_after = os.getloadavg()[0]
    mb = decoded_bytes(store) / 1e6

    ratio_cli = stats.median([r.bare / r.cli.wall for r in rounds])
    ratio_in = stats.median([r.bare / r.inproc for r in rounds])
    missed = [] if ratio_in >= TARGET else [f"statistics at {ratio_in:.0%} of the bare read rate, target ≥ 60 %"]
    prof_text = ""
    if profile or missed:
        log.info("profiling wxpipe statistics (cProfile)")
        prof_text = profile_cli(["statistics", str(store), *period], WORK / "statistics" / "profile.txt")
    loads = f"{load_before:.1f} before, {load_after:.1f} after"
    body = _report(store, n_dates, n_points, repeat, mb, rounds, ratio_cli, ratio_in, missed, prof_text, period, loads)
    replace_section(SECTION, body)
    print(body)
    return missed


def _report(
    store: Path,
    n_dates: int,
    n_points: int,
    repeat: int,
    mb: float,
    rounds: list[Round],
    ratio_cli: float,
    ratio_in: float,
    missed: list[str],
    prof_text: str,
    period: list[str],
    loads: str,
) -> str:
    def med(values: list[float]) -> float:
        return stats.median(values)

    s, per = rel(store), " ".join(period)
    rows = [
        (
            "bare read+decode, numcodecs into a reused buffer (anchor)",
            med([r.bare for r in rounds]),
            None,
            "in-process",
        ),
        ("zarr-python 3 reads, one chunk per call", med([r.zarr for r in rounds]), None, "in-process"),
        (
            "`wxpipe statistics` (CLI)",
            med([r.cli.wall for r in rounds]),
            max(r.cli.max_rss_mib for r in rounds),
            f"`wxpipe statistics {s} {per}`",
        ),
        (
            f"`wxpipe.statistics.compute` in-process, {THREADS} threads (the CLI's default)",
            med([r.inproc for r in rounds]),
            None,
            "`compute()` timed inside a child Python (malloc tuned as the CLI), imports and numba's start excluded",
        ),
        (
            "`wxpipe.statistics.compute` in-process, 1 thread",
            med([r.inproc1 for r in rounds]),
            None,
            "the same with `threads=1`",
        ),
        (
            "`wxpipe statistics-part --part i/2` x 2 at once",
            med([r.parts_wall for r in rounds]),
            max(t.max_rss_mib for r in rounds for t in r.parts),
            f"`wxpipe statistics-part {s} --part i/2 --out part-i.npz {per}`, i = 1, 2 concurrently",
        ),
        (
            "`wxpipe statistics-merge`",
            med([r.merge.wall for r in rounds]),
            max(r.merge.max_rss_mib for r in rounds),
            f"`wxpipe statistics-merge {s} part-1.npz part-2.npz {per}`",
        ),
        ("parts path: 2 parts + merge", med([r.parts_total for r in rounds]), None, "the two rows above"),
    ]
    table = ["| step | wall s | MB/s | peak RSS MiB | command |", "|---|---:|---:|---:|---|"]
    for name, wall, rss, cmd in rows:
        table.append(f"| {name} | {wall:.2f} | {mb / wall:.0f} | {'' if rss is None else f'{rss:.0f}'} | {cmd} |")

    def per_round(f: object) -> str:
        return ", ".join(f"{f(r):.2f}" for r in rounds)  # type: ignore[operator]

    ratios = [
        "| ratio (median of per-round ratios) | measured | per round | target |",
        "|---|---:|---|---|",
        f"| statistics throughput ({THREADS} threads, in-process) MB/s ÷ bare read MB/s | **{ratio_in:.2f}** | "
        f"{per_round(lambda r: r.bare / r.inproc)} | ≥ {TARGET:.2f} |",
        f"| the same, 1 thread | {med([r.bare / r.inproc1 for r in rounds]):.2f} | "
        f"{per_round(lambda r: r.bare / r.inproc1)} | |",
        f"| `wxpipe statistics` (CLI, interpreter start and imports included) MB/s ÷ bare read MB/s | "
        f"{ratio_cli:.2f} | {per_round(lambda r: r.bare / r.cli.wall)} | |",
        f"| CLI fixed cost (CLI wall minus in-process compute), s | "
        f"{med([r.cli.wall - r.inproc for r in rounds]):.2f} | "
        f"{per_round(lambda r: r.cli.wall - r.inproc)} | |",
        f"| of which numba's start (import, cached kernels loaded), s | "
        f"{med([r.numba_start for r in rounds]):.2f} | {per_round(lambda r: r.numba_start)} | |",
        f"| parts path (2 parts + merge) MB/s ÷ bare read MB/s | "
        f"{med([r.bare / r.parts_total for r in rounds]):.2f} | {per_round(lambda r: r.bare / r.parts_total)} | |",
        f"| CLI CPU s ÷ wall s | {med([r.cli.cpu / r.cli.wall for r in rounds]):.2f} | "
        f"{per_round(lambda r: r.cli.cpu / r.cli.wall)} | |",
    ]
    disk = disk_bytes(store) / 1e6
    out = [
        f"Measured {today()} ({revision()}) on {machine()}; load average {loads} "
        "(other work shares this machine: compare ratios, not seconds).",
        "",
        f"Command: `.venv/bin/python -m bench {' '.join(sys.argv[1:]) or 'statistics'}` (effective options "
        f"`--dates {n_dates} --points {n_points} --repeat {repeat}`). Store: `{s}`, written by "
        f"`bench/_env.py:ensure_synthetic` with `wxpipe.dataset.init`/`Writer`: {n_dates} dates (6 h) x 10 variables "
        f"x {n_points} points float32, Zarr v2, one date per chunk, Blosc lz4 5 shuffle; {mb:.0f} MB decoded, "
        f"{disk:.0f} MB on disk (ratio {mb / disk:.2f}), files in the page cache. MB/s = decoded MB ÷ wall s; "
        f"`{per}` covers every date, so every figure reads the same {mb:.0f} MB. {repeat} round(s); the table "
        "gives medians; CLI times include interpreter start and imports, CPU and peak RSS from `/usr/bin/time -v`.",
        "",
        *table,
        "",
        *ratios,
        "",
        "Targets missed: " + ("; ".join(missed) if missed else "none") + ".",
    ]
    if prof_text:
        out += profile_section(prof_text, "wxpipe statistics", "bench/work/statistics/profile.txt")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench statistics", description=__doc__)
    ap.add_argument("--dates", type=int, default=1000, help="dates in the synthetic store (default 1000)")
    ap.add_argument("--points", type=int, default=40320, help="grid points (default 40320, O96)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; medians are reported (default 2)")
    ap.add_argument("--profile", action="store_true", help="profile wxpipe statistics even when the target is met")
    args = ap.parse_args(argv)
    run(args.dates, args.points, args.repeat, args.profile)


__all__ = ["bare_read", "main", "run"]
