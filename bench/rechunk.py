"""``python -m bench rechunk``: `wxpipe rechunk` against pangeo rechunker and a single-pass limit.

One run, on the synthetic store of :func:`bench._env.ensure_synthetic` (default 1000 dates x 10 variables x
40 320 points float32, Zarr v2, one date per chunk), rechunked to (250 dates, 10, 1, 1008 points):

(a) pangeo rechunker 0.5.4 (zarr 2 only, in its own venv ``bench/.venv-rechunker``, dask threads) at
    ``max_mem``; its intermediate store is timed too;
(b) ``wxpipe rechunk`` at the same ``max_mem``, as a CLI subprocess;
(c) the single-pass limit: each source date-chunk file read and decoded once (numcodecs, reused slab buffer
    of one target date-chunk), each target chunk encoded and written with numcodecs: no zarr-python at all;
(d) access patterns with zarr-python 3 (``wxpipe.dataset.Dataset``): 720 dates (180 days at 6 h) x 100
    points from the time-series layout and from the date-chunked source, and one whole date from each;
(e) file counts of a Zarr v3 layout unsharded and sharded, when ``wxpipe rechunk`` offers ``--zarr-format``.

Wall time and peak RSS from ``/usr/bin/time -v``. Targets: rechunker time ÷ wxpipe time ≥ 3; wxpipe peak
RSS ≤ max_mem + 0.3 GB; the series read ≥ 10x faster from the time-series layout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics as stats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wxpipe.rechunk import SHARD_WRITE_OVERHEAD, parse_size

from ._env import (
    RECHUNKER_PYTHON,
    RECHUNKER_VENV,
    ROOT,
    SYNTH_VARIABLES,
    WORK,
    Timed,
    ensure_rechunker_venv,
    ensure_synthetic,
    machine,
    profile_cli,
    profile_section,
    rel,
    replace_section,
    revision,
    run_timed,
    today,
    wxpipe_exe,
)

log = logging.getLogger("bench.rechunk")

SECTION = "Rechunking (`wxpipe rechunk`)"
TARGET_RECHUNKER = 3.0  # pangeo rechunker time over wxpipe rechunk time, at least
TARGET_RSS_SLACK = 0.3e9  # wxpipe peak RSS at most max_mem + this many bytes
TARGET_SERIES = 10.0  # series read from the time-series layout, times faster than from date chunks

PANGEO = """
import sys, zarr, rechunker
src, dst, tmp, d, v, mem = sys.argv[1:7]
z = zarr.open_group(src, mode="r")["data"]
chunks = (int(d), z.shape[1], z.shape[2], int(v))
rechunker.rechunk(z, target_chunks=chunks, max_mem=mem, target_store=dst, temp_store=tmp).execute()
"""


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


def count_files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def count_data_files(path: Path) -> int:
    """Files of the ``data`` array and its per-unit done flags: those grow with the dataset; the rest
    (metadata, grid, statistics) is a fixed few dozen."""
    return sum(count_files(path / name) for name in ("data", "_build/done"))


# --- (c) the single-pass limit ------------------------------------------------------------------------------


def single_pass(
    src: str | Path, dst: str | Path, dates_chunk: int, values_chunk: int, threads: int = 1
) -> dict[str, float]:
    """Read and decode each source date-chunk once into a slab of one target date-chunk, then encode and
    write every target chunk of the slab; Zarr v2 ``data`` array with the source's codec, nothing else.

    Returns (and prints as ``PHASES {json}``) the seconds spent reading+decoding, copying the target chunk
    out of the slab, encoding and writing. With ``threads`` > 1 the dates of a slab are decoded and its
    target chunks copied, encoded and written by that many threads (Blosc releases the GIL); the phases are
    then wall seconds of the two stages (decode, and copy+encode+write under ``encode``).
    """
    if threads > 1:
        return _single_pass_threads(Path(src), Path(dst), dates_chunk, values_chunk, threads)

    src, dst = Path(src), Path(dst)
    codec, (n_dates, n_vars, n_ens, n_values), dtype, d, v = _start_single_pass(src, dst, dates_chunk, values_chunk)
    slab = np.empty((d, n_vars, n_ens, n_values), dtype)
    piece = np.empty((d, n_vars, n_ens, v), dtype)
    phases = dict.fromkeys(("decode", "copy", "encode", "write"), 0.0)
    clock = time.perf_counter
    for s, lo in enumerate(range(0, n_dates, d)):
        n = min(d, n_dates - lo)
        t0 = clock()
        for k in range(n):
            with open(src / "data" / f"{lo + k}.0.0.0", "rb") as f:
                codec.decode(f.read(), out=slab[k])
        if n < d:
            slab[n:] = np.nan
        phases["decode"] += clock() - t0
        for j, a in enumerate(range(0, n_values, v)):
            t0 = clock()
            b = min(a + v, n_values)
            if b - a < v:
                piece.fill(np.nan)
            piece[:, :, :, : b - a] = slab[:, :, :, a:b]
            t1 = clock()
            raw = codec.encode(piece)
            t2 = clock()
            (dst / "data" / f"{s}.0.0.{j}").write_bytes(raw)
            t3 = clock()
            phases["copy"] += t1 - t0
            phases["encode"] += t2 - t1
            phases["write"] += t3 - t2
    print("PHASES " + json.dumps(phases), flush=True)
    return phases


def _start_single_pass(
    src: Path, dst: Path, dates_chunk: int, values_chunk: int
) -> tuple[Any, list[int], np.dtype[Any], int, int]:
    """Check the source layout and write the target's metadata: (codec, shape, dtype, dates, values)."""
    import numcodecs

    spec = json.loads((src / "data" / ".zarray").read_text())
    shape, chunks, dtype = spec["shape"], spec["chunks"], np.dtype(spec["dtype"])
    assert chunks[0] == 1 and chunks[1:] == shape[1:], "single pass expects one date per chunk, whole fields"
    codec = numcodecs.get_codec(spec["compressor"])
    n_dates, n_vars, n_ens, n_values = shape
    d, v = min(dates_chunk, n_dates), min(values_chunk, n_values)
    fresh(dst)
    (dst / "data").mkdir(parents=True)
    (dst / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (dst / "data" / ".zarray").write_text(json.dumps({**spec, "chunks": [d, n_vars, n_ens, v]}))
    return codec, shape, dtype, d, v


def _single_pass_threads(src: Path, dst: Path, dates_chunk: int, values_chunk: int, threads: int) -> dict[str, float]:
    from concurrent.futures import ThreadPoolExecutor

    codec, (n_dates, n_vars, n_ens, n_values), dtype, d, v = _start_single_pass(src, dst, dates_chunk, values_chunk)
    slab = np.empty((d, n_vars, n_ens, n_values), dtype)
    pieces = [np.empty((d, n_vars, n_ens, v), dtype) for _ in range(-(-n_values // v))]
    phases = {"decode": 0.0, "encode": 0.0}
    clock = time.perf_counter

    def decode(i: int, k: int) -> None:
        with open(src / "data" / f"{i}.0.0.0", "rb") as f:
            codec.decode(f.read(), out=slab[k])

    def encode(s: int, j: int) -> None:
        a, b = j * v, min(j * v + v, n_values)
        piece = pieces[j]
        if b - a < v:
            piece.fill(np.nan)
        piece[:, :, :, : b - a] = slab[:, :, :, a:b]
        (dst / "data" / f"{s}.0.0.{j}").write_bytes(codec.encode(piece))

    with ThreadPoolExecutor(threads) as pool:
        for s, lo in enumerate(range(0, n_dates, d)):
            n = min(d, n_dates - lo)
            t0 = clock()
            list(pool.map(decode, range(lo, lo + n), range(n)))
            if n < d:
                slab[n:] = np.nan
            t1 = clock()
            list(pool.map(encode, [s] * len(pieces), range(len(pieces))))
            phases["decode"] += t1 - t0
            phases["encode"] += clock() - t1
    print("PHASES " + json.dumps(phases), flush=True)
    return phases


def phases_of(log_path: Path) -> dict[str, float]:
    for line in log_path.read_text().splitlines():
        if line.startswith("PHASES "):
            return {k: float(x) for k, x in json.loads(line[7:]).items()}
    return {}


# --- (d) access patterns ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    series_ts: float
    series_dates: float
    date_ts: float
    date_dates: float
    equal: bool


def _best(f: object, n: int = 3) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = f()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def access(layout: Path, source: Path, first: int, n_dates: int, point: int, n_points: int, date: int) -> Access:
    """Best of 3 reads of each pattern from each store through zarr-python 3 (files in the page cache)."""
    from wxpipe.dataset import Dataset

    ts, dc = Dataset(layout).data, Dataset(source).data
    sel = (slice(first, first + n_dates), slice(None), slice(None), slice(point, point + n_points))
    s_ts, a = _best(lambda: np.asarray(ts[sel]))
    s_dc, b = _best(lambda: np.asarray(dc[sel]))
    d_ts, c = _best(lambda: np.asarray(ts[date]))
    d_dc, e = _best(lambda: np.asarray(dc[date]))
    return Access(s_ts, s_dc, d_ts, d_dc, bool(np.array_equal(a, b) and np.array_equal(c, e)))


# --- the benchmark ------------------------------------------------------------------------------------------


def wx(*args: str | Path) -> list[str]:
    return [wxpipe_exe(), *(str(a) for a in args)]


def rechunk_help() -> str:
    return subprocess.run(wx("rechunk", "--help"), capture_output=True, text=True).stdout


def chunk_args(help_text: str, dates: int, values: int) -> list[str]:
    """``--chunks dates=N,values=M`` when the CLI has it, else ``--dates N --values M``."""
    if "--chunks" in help_text:
        return ["--chunks", f"dates={dates},values={values}"]
    return ["--dates", str(dates), "--values", str(values)]


@dataclass
class Round:
    pangeo: Timed
    wxpipe: Timed
    single: Timed
    phases: dict[str, float]
    single2: Timed

    @property
    def of_limit2(self) -> float:
        return self.single2.wall / self.wxpipe.wall

    @property
    def vs_pangeo(self) -> float:
        return self.pangeo.wall / self.wxpipe.wall

    @property
    def of_limit(self) -> float:
        return self.single.wall / self.wxpipe.wall


def measure_round(r: int, repeat: int, src: Path, cargs: list[str], dates: int, values: int, mem: str) -> Round:
    work, logs = WORK / "rechunk", WORK / "rechunk" / "logs"
    tag = f"round {r}/{repeat}"
    log.info("%s: (a) pangeo rechunker at max_mem=%s", tag, mem)
    cmd = [str(RECHUNKER_PYTHON), "-c", PANGEO, str(src), str(fresh(work / "pangeo.zarr"))]
    pangeo = run_timed([*cmd, str(fresh(work / "pangeo-tmp.zarr")), str(dates), str(values), mem], logs / "pangeo.log")
    log.info("%s: (b) wxpipe rechunk at max_mem=%s", tag, mem)
    wxp = run_timed(wx("rechunk", src, fresh(work / "wxpipe.zarr"), *cargs, "--max-mem", mem), logs / "wxpipe.log")
    log.info("%s: (c) single-pass decode+encode limit", tag)
    code = "import sys; from bench.rechunk import single_pass; single_pass(*sys.argv[1:3], *map(int, sys.argv[3:5]))"
    cmd = [sys.executable, "-c", code, str(src), str(fresh(work / "single.zarr")), str(dates), str(values)]
    single = run_timed(cmd, logs / "single.log", env={"PYTHONPATH": str(ROOT)})
    phases = phases_of(logs / "single.log")
    log.info("%s: (c) single-pass limit with 2 threads", tag)
    code2 = code.replace("sys.argv[3:5]", "sys.argv[3:6]")
    cmd = [sys.executable, "-c", code2, str(src), str(fresh(work / "single2.zarr")), str(dates), str(values), "2"]
    single2 = run_timed(cmd, logs / "single2.log", env={"PYTHONPATH": str(ROOT)})
    shutil.rmtree(work / "single2.zarr")
    return Round(pangeo, wxp, single, phases, single2)


def zarr3_counts(help_text: str, src: Path, cargs: list[str], mem: str, shards: tuple[int, int]) -> str:
    """File counts of an unsharded and a sharded Zarr v3 layout, or why they are pending."""
    if "--zarr-format" not in help_text:
        return "pending: `wxpipe rechunk` has no `--zarr-format` option yet"
    work, logs = WORK / "rechunk", WORK / "rechunk" / "logs"
    out = []
    plain = fresh(work / "wxpipe-v3.zarr")
    t = run_timed(wx("rechunk", src, plain, *cargs, "--max-mem", mem, "--zarr-format", "3"), logs / "wxpipe-v3.log")
    plain_data = count_data_files(plain)
    out.append(
        f"unsharded v3 (`{' '.join(cargs)} --zarr-format 3`): {count_files(plain)} files, {plain_data} of them "
        f"data chunks and done flags ({t.wall:.1f} s, {t.max_rss_mib:.0f} MiB peak RSS)"
    )
    if "--shards" in help_text:
        sharded = fresh(work / "wxpipe-v3-sharded.zarr")
        shard = f"dates={shards[0]},values={shards[1]}" if "--shards dates=" in help_text else str(shards[0])
        extra = ["--zarr-format", "3", "--shards", shard]
        t = run_timed(wx("rechunk", src, sharded, *cargs, "--max-mem", mem, *extra), logs / "wxpipe-v3-sharded.log")
        over = t.max_rss_mib * 2**20 > parse_size(mem) + TARGET_RSS_SLACK
        data = count_data_files(sharded)
        out.append(
            f"sharded v3 (`{' '.join(cargs)} --shards {shard} --zarr-format 3`): {count_files(sharded)} files, "
            f"{data} of them data shards and done flags, {plain_data / max(data, 1):.0f}x fewer than unsharded "
            f"(target ≥ 10x: {'**met**' if plain_data >= 10 * data else '**missed**'}; the fixed metadata files are "
            f"the rest) ({t.wall:.1f} s, {t.max_rss_mib:.0f} MiB peak RSS"
            + (", **over max_mem + 0.3 GB**)" if over else ")")
        )
        shutil.rmtree(sharded)
    else:
        out.append("sharded v3: pending (no `--shards` option)")
    shutil.rmtree(plain)
    return "; ".join(out)


def run(
    n_dates: int = 1000,
    n_points: int = 40320,
    dates: int = 250,
    values: int = 1008,
    mem: str = "1GB",
    repeat: int = 2,
    profile: bool = False,
) -> list[str]:
    work = WORK / "rechunk"
    src = ensure_synthetic(WORK / "synthetic" / f"synth-{n_dates}.zarr", n_dates, n_points)
    versions = ensure_rechunker_venv()
    help_text = rechunk_help()
    cargs = chunk_args(help_text, dates, values)
    for path in (src / "data").iterdir():  # warm the page cache
        path.read_bytes()
    load_before = os.getloadavg()[0]
    rounds = [measure_round(r, repeat, src, cargs, dates, values, mem) for r in range(1, repeat + 1)]
    log.info("(d) access patterns")
    series = min(720, n_dates)
    acc = access(work / "wxpipe.zarr", src, (n_dates - series) // 2, series, 20160 % n_points, 100, n_dates // 2)
    same = acc.equal and _same_data(work / "wxpipe.zarr", work / "single.zarr", work / "pangeo.zarr")
    log.info("(e) Zarr v3 file counts")
    # the largest shard (up to 10 chunks along the points) that wxpipe can write in max_mem: a shard
    # costs 3 times its size while zarr-python encodes it (wxpipe.rechunk.SHARD_WRITE_OVERHEAD)
    shard_dates = -(-n_dates // dates) * dates
    per_chunk = shard_dates * len(SYNTH_VARIABLES) * 4 * values * (1 + SHARD_WRITE_OVERHEAD)
    shards = (shard_dates, min(max(1, min(10, parse_size(mem) // per_chunk)) * values, n_points))
    try:
        v3 = zarr3_counts(help_text, src, cargs, mem, shards)
    except RuntimeError as exc:  # the option is being built: report, do not lose the rest
        log.warning("Zarr v3 layouts failed: %s", exc)
        v3 = "failed: " + str(exc).splitlines()[0]
    load_after = os.getloadavg()[0]

    vs_pangeo = stats.median([r.vs_pangeo for r in rounds])
    rss_gb = max(r.wxpipe.max_rss_mib for r in rounds) * 2**20 / 1e9
    limit_gb = (parse_size(mem) + TARGET_RSS_SLACK) / 1e9
    speedup = acc.series_dates / acc.series_ts
    missed = []
    if vs_pangeo < TARGET_RECHUNKER:
        missed.append(f"rechunker ÷ wxpipe time {vs_pangeo:.2f}, target ≥ {TARGET_RECHUNKER:g}")
    if rss_gb > limit_gb:
        missed.append(f"wxpipe peak RSS {rss_gb:.2f} GB > max_mem + 0.3 GB = {limit_gb:.2f} GB")
    if speedup < TARGET_SERIES:
        missed.append(f"series read {speedup:.1f}x faster from the time-series layout, target ≥ {TARGET_SERIES:g}x")
    if not same:
        missed.append("the layouts' data differ")
    prof_text = ""
    if profile or missed:
        log.info("profiling wxpipe rechunk (cProfile)")
        args = ["rechunk", str(src), str(fresh(work / "wxpipe-profile.zarr")), *cargs, "--max-mem", mem]
        prof_text = profile_cli(args, work / "wxpipe-rechunk-profile.txt")
        shutil.rmtree(work / "wxpipe-profile.zarr", ignore_errors=True)
    files = {name: count_files(work / name) for name in ("wxpipe.zarr", "pangeo.zarr", "single.zarr")}
    for name in ("pangeo.zarr", "pangeo-tmp.zarr", "single.zarr"):
        shutil.rmtree(work / name, ignore_errors=True)
    ctx = dict(
        src=src,
        n_dates=n_dates,
        n_points=n_points,
        dates=dates,
        values=values,
        mem=mem,
        repeat=repeat,
        versions=versions,
        cargs=cargs,
        loads=f"{load_before:.1f} before, {load_after:.1f} after",
        series=series,
        v3=v3,
        files=files,
        same=same,
    )
    body = _report(ctx, rounds, acc, vs_pangeo, rss_gb, limit_gb, speedup, missed, prof_text)
    replace_section(SECTION, body)
    print(body)
    return missed


def _same_data(*stores: Path) -> bool:
    """The three rechunked stores hold equal data (compared on a corner slab, through zarr-python)."""
    import zarr

    def corner(p: Path) -> np.ndarray:
        node = zarr.open(str(p), mode="r")
        arr = node["data"] if isinstance(node, zarr.Group) else node
        return np.asarray(arr[:300, :, :, :2100])

    first = corner(stores[0])
    return all(np.array_equal(first, corner(p), equal_nan=True) for p in stores[1:])


def _report(
    c: dict[str, object],
    rounds: list[Round],
    acc: Access,
    vs_pangeo: float,
    rss_gb: float,
    limit_gb: float,
    speedup: float,
    missed: list[str],
    prof_text: str,
) -> str:
    med = stats.median
    src, mem, dates, values = rel(c["src"]), c["mem"], c["dates"], c["values"]  # type: ignore[arg-type]
    cargs = " ".join(c["cargs"])  # type: ignore[arg-type]
    n_dates, n_points, series = c["n_dates"], c["n_points"], c["series"]
    mb = int(n_dates) * 10 * int(n_points) * 4 / 1e6  # type: ignore[call-overload]
    files: dict[str, int] = c["files"]  # type: ignore[assignment]
    target = f"({dates}, 10, 1, {values})"
    rows = [
        (
            "pangeo rechunker (dask threads)",
            [r.pangeo for r in rounds],
            f"`{rel(RECHUNKER_VENV)}/bin/python -c PANGEO {src} OUT TMP {dates} {values} {mem}` "
            "(script `PANGEO` in `bench/rechunk.py`: `rechunker.rechunk(...).execute()`)",
            files["pangeo.zarr"],
        ),
        (
            "`wxpipe rechunk`",
            [r.wxpipe for r in rounds],
            f"`wxpipe rechunk {src} OUT {cargs} --max-mem {mem}`",
            files["wxpipe.zarr"],
        ),
        (
            "single-pass decode+encode limit",
            [r.single for r in rounds],
            f"`bench.rechunk.single_pass({src}, OUT, {dates}, {values})` in a child Python",
            files["single.zarr"],
        ),
        (
            "single-pass limit, 2 threads",
            [r.single2 for r in rounds],
            f"`bench.rechunk.single_pass({src}, OUT, {dates}, {values}, threads=2)` in a child Python",
            files["single.zarr"],
        ),
    ]
    table = [
        "| step | wall s | CPU s | MB/s | peak RSS MiB | files written | command |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, ts, cmd, nfiles in rows:
        wall, cpu, rss = med([t.wall for t in ts]), med([t.cpu for t in ts]), max(t.max_rss_mib for t in ts)
        table.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {mb / wall:.0f} | {rss:.0f} | {nfiles} | {cmd} |")

    def per_round(f: object) -> str:
        return ", ".join(f"{f(r):.2f}" for r in rounds)  # type: ignore[operator]

    ok = "**met**"
    ratios = [
        "| figure | measured | per round | target |",
        "|---|---:|---|---|",
        f"| pangeo rechunker time ÷ wxpipe rechunk time | **{vs_pangeo:.2f}** | "
        f"{per_round(lambda r: r.vs_pangeo)} | ≥ {TARGET_RECHUNKER:g}: "
        f"{ok if vs_pangeo >= TARGET_RECHUNKER else 'missed'} |",
        f"| wxpipe's fraction of the single-pass limit (limit time ÷ wxpipe time) | "
        f"**{med([r.of_limit for r in rounds]):.2f}** | {per_round(lambda r: r.of_limit)} | |",
        f"| wxpipe's fraction of the 2-thread single-pass limit | "
        f"{med([r.of_limit2 for r in rounds]):.2f} | {per_round(lambda r: r.of_limit2)} | |",
        f"| pangeo rechunker time ÷ single-pass limit time, 1 / 2 threads (the most any rechunker can reach) | "
        f"{med([r.pangeo.wall / r.single.wall for r in rounds]):.2f} / "
        f"{med([r.pangeo.wall / r.single2.wall for r in rounds]):.2f} | | |",
        "| single-pass limit split (1 thread), s (median): "
        + ", ".join(f"{k} {med([r.phases.get(k, float('nan')) for r in rounds]):.2f}" for k in rounds[0].phases)
        + " | | | where the limit goes |",
        f"| wxpipe peak RSS (GB) vs max_mem + 0.3 GB | **{rss_gb:.2f}** | | ≤ {limit_gb:.2f}: "
        f"{ok if rss_gb <= limit_gb else 'missed'} |",
    ]
    access_rows = [
        "| read (zarr-python 3, best of 3) | time-series layout s | date-chunked source s | speed-up |",
        "|---|---:|---:|---:|",
        f"| {series} dates (180 days at 6 h) x 10 variables x 100 points | {acc.series_ts:.4f} | "
        f"{acc.series_dates:.4f} | **{speedup:.1f}x** from the time-series layout (target ≥ {TARGET_SERIES:g}x: "
        f"{ok if speedup >= TARGET_SERIES else 'missed'}) |",
        f"| one date, all variables and points | {acc.date_ts:.4f} | {acc.date_dates:.4f} | "
        f"{acc.date_ts / acc.date_dates:.1f}x from the date-chunked source (the reverse) |",
    ]
    out = [
        f"Measured {today()} ({revision()}) on {machine()}; load average {c['loads']} "
        "(other work shares this machine: compare ratios, not seconds). "
        f"Rechunker venv: {c['versions']}.",
        "",
        f"Command: `.venv/bin/python -m bench {' '.join(sys.argv[1:]) or 'rechunk'}` (effective options "
        f"`--dates {n_dates} --points {n_points} --target-dates {dates} --target-values {values} --max-mem {mem} "
        f"--repeat {c['repeat']}`). Source: `{src}` ({n_dates} dates x 10 variables x {n_points} points float32, "
        f"{mb:.0f} MB decoded, Zarr v2, one date per chunk, Blosc lz4 5 shuffle, written by "
        f"`bench/_env.py:ensure_synthetic`), files in the page cache; target chunks {target}, Zarr v2. "
        "Each round runs the three in turn; the table gives medians over rounds (peak RSS: the largest), "
        "wall, CPU and RSS from `/usr/bin/time -v`, MB/s = decoded MB ÷ wall s. "
        f"Data of the three outputs equal on a corner slab and the access reads equal: {'yes' if c['same'] else 'NO'}.",
        "",
        *table,
        "",
        *ratios,
        "",
        "Access patterns, time-series layout = the `wxpipe rechunk` output above:",
        "",
        *access_rows,
        "",
        f"Zarr v3 file counts: {c['v3']}.",
        "",
        "Targets missed: " + ("; ".join(missed) if missed else "none") + ".",
    ]
    if prof_text:
        out += profile_section(prof_text, "wxpipe rechunk", "bench/work/rechunk/wxpipe-rechunk-profile.txt")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench rechunk", description=__doc__)
    ap.add_argument("--dates", type=int, default=1000, help="dates in the synthetic source (default 1000)")
    ap.add_argument("--points", type=int, default=40320, help="grid points (default 40320, O96)")
    ap.add_argument("--target-dates", type=int, default=250, help="dates per target chunk (default 250)")
    ap.add_argument("--target-values", type=int, default=1008, help="points per target chunk (default 1008)")
    ap.add_argument("--max-mem", default="1GB", help="for both rechunkers (default 1GB)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; medians are reported (default 2)")
    ap.add_argument("--profile", action="store_true", help="profile wxpipe rechunk even when every target is met")
    a = ap.parse_args(argv)
    run(a.dates, a.points, a.target_dates, a.target_values, a.max_mem, a.repeat, a.profile)


__all__ = ["access", "main", "run", "single_pass"]
