"""``python -m bench create``: dataset creation speed against bare ecCodes decoding and anemoi-datasets.

One run measures, on the regular 1° archive of :mod:`bench.gribgen` (8 variables x 65 160 points per date):

(a) bare ecCodes decoding of every message (open, ``codes_grib_new_from_file``, ``codes_get_values``);
(b) ``wxpipe create`` as a CLI subprocess, and ``wxpipe load --part i/N`` for N = 1 and N = 2 parallel
    processes (init and finalise timed apart);
(c) ``anemoi-datasets create`` from its own venv on the equivalent anemoi recipe (same files);
(d) peak RSS of one ``wxpipe load`` part for two archive lengths.

Every figure that is compared is a ratio of two timings from this run. When wxpipe misses a target the
``wxpipe create`` run is repeated in-process under cProfile and the top of the profile is written too.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import eccodes
import yaml
from tqdm import tqdm

from . import gribgen
from ._env import (
    ANEMOI_VENV,
    ROOT,
    WORK,
    Timed,
    ensure_anemoi_venv,
    machine,
    profile_cli,
    profile_head,
    replace_section,
    revision,
    run_timed,
    today,
    wxpipe_exe,
)

log = logging.getLogger("bench.create")

SECTION = "Dataset creation (`wxpipe create`)"
TARGET_ANEMOI = 5.0  # wxpipe dates/s over anemoi's, one process
TARGET_DECODE = 2.0  # wxpipe create time over bare decode time, at most
TARGET_PARTS = 0.8  # speed-up of N parallel parts over one, as a fraction of N


def rel(path: Path) -> str:
    """``path`` relative to the repository root when inside it (commands in BENCHMARKS.md run from there)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- recipes ---------------------------------------------------------------------------------------------


def join(path: str, surface: list[str] | None = None) -> list[dict[str, object]]:
    """The recipe's ``input.join`` (same keys in wxpipe and anemoi): surface fields, then z and t on levels."""
    pl = {"path": path, "param": list(gribgen.PRESSURE), "levtype": "pl", "levelist": list(gribgen.LEVELS)}
    return [{"grib": {"path": path, "param": surface or list(gribgen.SURFACE), "levtype": "sfc"}}, {"grib": pl}]


def wxpipe_recipe(archive: Path, n_dates: int, name: str) -> dict[str, object]:
    return {
        "name": name,
        "description": f"wxpipe bench: {n_dates} dates of the regular 1 degree archive",
        "dates": _dates(n_dates),
        "input": {"join": join(str(archive / gribgen.PATTERN))},
        "build": {"variable_naming": "{param}_{levelist}"},
    }


def anemoi_recipe(archive: Path, n_dates: int) -> dict[str, object]:
    return {
        "description": f"anemoi bench: {n_dates} dates of the regular 1 degree archive",
        "dates": _dates(n_dates),
        "input": {"join": join(str(archive / gribgen.PATTERN))},
        "build": {"variable_naming": "{param}_{levelist}"},
    }


def _dates(n_dates: int) -> dict[str, str]:
    d = gribgen.dates(n_dates)
    return {"start": str(d[0]), "end": str(d[-1]), "frequency": "6h"}


def write_yaml(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- measurements ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decode:
    wall: float
    cpu: float
    messages: int


def bare_decode(archive: Path, n_dates: int) -> Decode:
    """Decode every message of the first ``n_dates`` files; files are read once beforehand (warm cache)."""
    files = [gribgen.file_of(archive, d) for d in gribgen.dates(n_dates)]
    for path in files:
        path.read_bytes()
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for path in tqdm(files, desc="bare decode", unit="date"):
        with open(path, "rb") as f:
            while (h := eccodes.codes_grib_new_from_file(f)) is not None:
                eccodes.codes_get_values(h)
                eccodes.codes_release(h)
                n += 1
    return Decode(time.perf_counter() - t0, time.process_time() - c0, n)


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


def wx(*args: str | Path) -> list[str]:
    return [wxpipe_exe(), *(str(a) for a in args)]


def run_parallel(cmds: list[list[str]], logs: list[Path]) -> tuple[float, list[Timed]]:
    """Start every command at once; wall time until the last ends, and each one's own timing."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(cmds)) as pool:
        results = list(pool.map(run_timed, cmds, logs))
    return time.perf_counter() - t0, results


def profile_create(recipe: Path, store: Path, out: Path, top: int = 25) -> str:
    """``wxpipe create`` (2 threads, as timed) under cProfile: see :func:`profile_cli`."""
    return profile_cli(["create", str(recipe), str(fresh(store)), "--threads", "2"], out, top)


# --- the benchmark ---------------------------------------------------------------------------------------


@dataclass
class Round:
    """One round: every timing that a ratio pairs is taken in the same round, minutes apart at most."""

    decode: Decode
    create: Timed
    init: Timed
    load1: Timed
    finalise: Timed
    load_n_wall: float
    load_n: list[Timed]
    anemoi: Timed | None

    @property
    def speedup(self) -> float:
        return self.load1.wall / self.load_n_wall

    @property
    def vs_decode(self) -> float:
        return self.create.wall / self.decode.wall

    @property
    def vs_anemoi(self) -> float | None:
        return None if self.anemoi is None else self.anemoi.wall / self.create.wall


@dataclass
class Figures:
    rounds: list[Round]
    small: Timed  # one load part of the short archive, for peak RSS

    def median(self, ratio: Callable[[Round], float | None]) -> float | None:
        values = [v for r in self.rounds if (v := ratio(r)) is not None]
        return statistics.median(values) if values else None

    def per_round(self, ratio: Callable[[Round], float | None]) -> str:
        return ", ".join(f"{v:.2f}" for r in self.rounds if (v := ratio(r)) is not None)


def measure_round(
    r: int, full: Path, archive: Path, n: int, parts: int, repeat: int, anemoi_yaml: Path | None
) -> Round:
    """(a) decode, (b) create, (c) anemoi create, then init / load 1/1 / finalise and N parts at once."""
    work, logs = WORK / "create", WORK / "create" / "logs"
    tag = f"round {r}/{repeat}"
    log.info("%s: (a) bare ecCodes decode of %d dates", tag, n)
    dec = bare_decode(archive, n)
    log.info("%s: (b) wxpipe create, %d dates", tag, n)
    create = run_timed(wx("create", full, fresh(work / "wxpipe-create.zarr"), "--threads", "2"), logs / "create.log")
    anemoi = None
    if anemoi_yaml is not None:
        log.info("%s: (c) anemoi-datasets create, %d dates (slow: ~8 dates/s)", tag, n)
        exe = str(ANEMOI_VENV / "bin" / "anemoi-datasets")
        cmd = [exe, "create", str(anemoi_yaml), str(fresh(work / "anemoi.zarr")), "--overwrite"]
        anemoi = run_timed(cmd, logs / "anemoi-create.log")

    log.info("%s: (b) wxpipe init, load --part 1/1, finalise", tag)
    one = fresh(work / "wxpipe-parts1.zarr")
    init1 = run_timed(wx("init", full, one), logs / "init-1.log")
    load1 = run_timed(wx("load", full, one, "--part", "1/1"), logs / "load-1-of-1.log")
    fin1 = run_timed(wx("finalise", one), logs / "finalise-1.log")

    log.info("%s: (b) wxpipe load --part i/%d, %d processes at once", tag, parts, parts)
    many = fresh(work / f"wxpipe-parts{parts}.zarr")
    run_timed(wx("init", full, many), logs / f"init-{parts}.log")
    wall_n, loads = run_parallel(
        [wx("load", full, many, "--part", f"{i}/{parts}") for i in range(1, parts + 1)],
        [logs / f"load-{i}-of-{parts}.log" for i in range(1, parts + 1)],
    )
    run_timed(wx("finalise", many), logs / f"finalise-{parts}.log")
    return Round(dec, create, init1, load1, fin1, wall_n, loads, anemoi)


def measure_small(short: Path, small: int) -> Timed:
    log.info("(d) peak RSS of one load part, %d dates", small)
    work, logs = WORK / "create", WORK / "create" / "logs"
    few = fresh(work / f"wxpipe-{small}.zarr")
    run_timed(wx("init", short, few), logs / f"init-{small}.log")
    return run_timed(wx("load", short, few, "--part", "1/1"), logs / f"load-{small}.log")


def run(
    n_dates: int = 500,
    small: int = 100,
    parts: int = 2,
    repeat: int = 2,
    skip_anemoi: bool = False,
    profile: bool = False,
    keep: bool = False,
) -> list[str]:
    """Measure, write the section of BENCHMARKS.md, and return the targets missed."""
    work = WORK / "create"
    archive = gribgen.ensure_archive(max(n_dates, small))
    full = write_yaml(work / f"wxpipe-{n_dates}.yaml", wxpipe_recipe(archive, n_dates, f"bench-1deg-{n_dates}"))
    short = write_yaml(work / f"wxpipe-{small}.yaml", wxpipe_recipe(archive, small, f"bench-1deg-{small}"))
    anemoi_yaml = write_yaml(work / f"anemoi-{n_dates}.yaml", anemoi_recipe(archive, n_dates))
    version = "" if skip_anemoi else ensure_anemoi_venv()
    load_before = os.getloadavg()[0]
    rounds = [
        measure_round(r, full, archive, n_dates, parts, repeat, None if skip_anemoi else anemoi_yaml)
        for r in range(1, repeat + 1)
    ]
    f = Figures(rounds, measure_small(short, small))
    load_after = os.getloadavg()[0]

    missed = _missed(f, parts)
    prof_text = ""
    if profile or missed:
        log.info("profiling wxpipe create in-process (cProfile) because: %s", "; ".join(missed) or "--profile")
        prof_text = profile_create(full, work / "wxpipe-profile.zarr", work / "wxpipe-create-profile.txt")
        print(prof_text)
    if not keep:
        for store in work.glob("*.zarr"):  # ~0.6 GB each at 500 dates
            shutil.rmtree(store)
    context = Context(n_dates, small, parts, repeat, full, short, anemoi_yaml, version, (load_before, load_after))
    body = _report(context, f, missed, prof_text)
    replace_section(SECTION, body)
    print(body)
    return missed


@dataclass(frozen=True)
class Context:
    n: int
    small: int
    parts: int
    repeat: int
    full: Path
    short: Path
    anemoi_yaml: Path
    version: str
    load: tuple[float, float]


def _vs_decode(r: Round) -> float:
    return r.vs_decode


def _vs_anemoi(r: Round) -> float | None:
    return r.vs_anemoi


def _speedup(r: Round) -> float:
    return r.speedup


def _cores_one(r: Round) -> float:
    return r.load1.cpu / r.load1.wall


def _cpu_split(r: Round) -> float:
    return sum(t.cpu for t in r.load_n) / r.load1.cpu


def _missed(f: Figures, parts: int) -> list[str]:
    out = []
    vs_anemoi, vs_decode, speedup = f.median(_vs_anemoi), f.median(_vs_decode), f.median(_speedup)
    if vs_anemoi is not None and vs_anemoi < TARGET_ANEMOI:
        out.append(f"{vs_anemoi:.2f}x anemoi's dates/s, target >= {TARGET_ANEMOI:g}x")
    if vs_decode is not None and vs_decode > TARGET_DECODE:
        out.append(f"create takes {vs_decode:.2f}x the bare decode, target <= {TARGET_DECODE:g}x")
    if speedup is not None and speedup < TARGET_PARTS * parts:
        out.append(f"{parts} parts speed-up {speedup:.2f}, target >= {TARGET_PARTS * parts:.2f}")
    return out


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _report(c: Context, f: Figures, missed: list[str], prof_text: str) -> str:
    st = "STORE"
    w = "wxpipe"
    full, short, n, small, parts = rel(c.full), rel(c.short), c.n, c.small, c.parts
    rs = f.rounds

    def med(get: Callable[[Round], Timed]) -> tuple[float, float, float]:
        return _med([get(r).wall for r in rs]), _med([get(r).cpu for r in rs]), max(get(r).max_rss_mib for r in rs)

    dec_wall, dec_cpu = _med([r.decode.wall for r in rs]), _med([r.decode.cpu for r in rs])
    rows: list[tuple[str, int, tuple[float, float, float | None], str]] = [
        ("bare ecCodes decode (anchor)", n, (dec_wall, dec_cpu, None), f"{rs[0].decode.messages} messages, in-process"),
        ("`wxpipe create --threads 2`", n, med(lambda r: r.create), f"`{w} create {full} {st} --threads 2`"),
        ("`wxpipe init`", n, med(lambda r: r.init), f"`{w} init {full} {st}`"),
        ("`wxpipe load --part 1/1`", n, med(lambda r: r.load1), f"`{w} load {full} {st} --part 1/1`"),
        ("`wxpipe finalise`", n, med(lambda r: r.finalise), f"`{w} finalise {st}`"),
        (
            f"`wxpipe load --part i/{parts}` x {parts} at once",
            n,
            (
                _med([r.load_n_wall for r in rs]),
                _med([sum(t.cpu for t in r.load_n) for r in rs]),
                max(t.max_rss_mib for r in rs for t in r.load_n),
            ),
            f"`{w} load {full} {st} --part i/{parts}`, i = 1..{parts} concurrently",
        ),
        (
            "`wxpipe load --part 1/1`",
            small,
            (f.small.wall, f.small.cpu, f.small.max_rss_mib),
            f"`{w} load {short} {st} --part 1/1` (once)",
        ),
    ]
    anemoi_runs = [r.anemoi for r in rs if r.anemoi is not None]
    if anemoi_runs:
        a = (_med([t.wall for t in anemoi_runs]), _med([t.cpu for t in anemoi_runs]), anemoi_runs[0].max_rss_mib)
        cmd = f"`{rel(ANEMOI_VENV)}/bin/anemoi-datasets create {rel(c.anemoi_yaml)} OUT.zarr --overwrite`"
        rows.append((f"`anemoi-datasets create` {c.version}", n, a, cmd))
    table = [
        "| step | dates | wall s | CPU s | dates/s | peak RSS MiB | command |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, dates, (wall, cpu, rss), cmd in rows:
        rss_text = "" if rss is None else f"{rss:.0f}"
        table.append(f"| {name} | {dates} | {wall:.2f} | {cpu:.2f} | {dates / wall:.1f} | {rss_text} | {cmd} |")

    ratios = ["| ratio (median of the per-round ratios) | measured | per round | target |", "|---|---:|---|---|"]
    vs_anemoi = f.median(_vs_anemoi)
    if vs_anemoi is not None:
        ratios.append(
            f"| wxpipe create dates/s ÷ anemoi create dates/s | **{vs_anemoi:.2f}** | {f.per_round(_vs_anemoi)} "
            f"| ≥ {TARGET_ANEMOI:g} |"
        )
    cores = os.cpu_count()
    speedup = f.median(_speedup) or float("nan")
    load1_rss = max(r.load1.max_rss_mib for r in rs)
    ratios += [
        f"| wxpipe create time ÷ bare decode time | **{f.median(_vs_decode):.2f}** | {f.per_round(_vs_decode)} "
        f"| ≤ {TARGET_DECODE:g} |",
        f"| speed-up of {parts} parts in parallel over 1 | **{speedup:.2f}** | {f.per_round(_speedup)} "
        f"| ≥ {TARGET_PARTS * parts:.1f} ({cores} cores) |",
        f"| cores busy during one load part (its CPU s ÷ wall s) | {f.median(_cores_one):.2f} "
        f"| {f.per_round(_cores_one)} | bounds the parts speed-up: at most {cores} ÷ this on {cores} cores |",
        f"| CPU s of {parts} parts ÷ CPU s of 1 part (work added by splitting) | {f.median(_cpu_split):.2f} "
        f"| {f.per_round(_cpu_split)} | ≈ 1 |",
        f"| peak RSS of a load part, {n} ÷ {small} dates | {load1_rss / f.small.max_rss_mib:.2f} | "
        "| ≈ 1 (flat in length) |",
    ]
    out = [
        f"Measured {today()} ({revision()}) on {machine()}; load average {c.load[0]:.1f} before, {c.load[1]:.1f} "
        "after (other work shares this machine: compare ratios, not seconds).",
        "",
        f"Command: `.venv/bin/python -m bench {' '.join(sys.argv[1:]) or 'create'}` (effective options "
        f"`--dates {n} --small {small} --parts {parts} --repeat {c.repeat}`). Archive: `bench/gribgen.py`, "
        f"{n} dates x {len(gribgen.VARIABLES)} variables on the regular 1° grid ({gribgen.NI * gribgen.NJ} points), "
        "one GRIB2 file per date, 16-bit packing, files in the page cache. "
        f"{c.repeat} round(s), each: bare decode, `wxpipe create`, `anemoi-datasets create`, init + load 1/1 + "
        f"finalise, {parts} parts at once; the table gives medians over rounds, each ratio is taken within a round. "
        "CLI times include interpreter start and imports; subprocess CPU and peak RSS from `/usr/bin/time -v`; "
        "`STORE` is a fresh store under `bench/work/create/`.",
        "",
        *table,
        "",
        *ratios,
        "",
        "Targets missed: " + ("; ".join(missed) if missed else "none") + ".",
    ]
    if prof_text:
        out += [
            "",
            "Where `wxpipe create` spends its time (cProfile, in-process, by own time, top 15; full profile "
            "in `bench/work/create/wxpipe-create-profile.txt`):",
            "",
            "```",
            *profile_head(prof_text, 15),
            "```",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench create", description=__doc__)
    ap.add_argument("--dates", type=int, default=500, help="archive length for speed (default 500)")
    ap.add_argument("--small", type=int, default=100, help="shorter archive for the RSS comparison (default 100)")
    ap.add_argument("--parts", type=int, default=2, help="parallel load parts (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the wxpipe timings; the best is kept (default 2)")
    ap.add_argument("--skip-anemoi", action="store_true", help="do not run anemoi-datasets")
    ap.add_argument("--profile", action="store_true", help="profile wxpipe create even when every target is met")
    ap.add_argument("--keep-stores", action="store_true", help="keep the stores under bench/work/create")
    args = ap.parse_args(argv)
    run(args.dates, args.small, args.parts, args.repeat, args.skip_anemoi, args.profile, args.keep_stores)


__all__ = ["anemoi_recipe", "bare_decode", "join", "main", "run", "wxpipe_recipe"]
