"""``python -m bench create``: dataset creation speed against bare ecCodes decoding and anemoi-datasets.

One run measures, on the regular 1° archive of :mod:`bench.gribgen` (8 variables × 65 160 points per date):

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
import cProfile
import io
import logging
import os
import pstats
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import eccodes
import numpy as np
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
    replace_section,
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


def wxpipe_recipe(archive: Path, n_dates: int, name: str) -> dict[str, object]:
    path = str(archive / gribgen.PATTERN)
    return {
        "name": name,
        "description": f"wxpipe bench: {n_dates} dates of the regular 1 degree archive",
        "dates": _dates(n_dates),
        "input": {
            "join": [
                {"grib": {"path": path, "param": list(gribgen.SURFACE), "levtype": "sfc"}},
                {"grib": {"path": path, "param": list(gribgen.PRESSURE), "levtype": "pl", "levelist": list(gribgen.LEVELS)}},
            ]
        },
        "build": {"variable_naming": "{param}_{levelist}"},
    }


def anemoi_recipe(archive: Path, n_dates: int) -> dict[str, object]:
    path = str(archive / gribgen.PATTERN)
    return {
        "description": f"anemoi bench: {n_dates} dates of the regular 1 degree archive",
        "dates": _dates(n_dates),
        "input": {
            "join": [
                {"grib": {"path": path, "param": list(gribgen.SURFACE), "levtype": "sfc"}},
                {"grib": {"path": path, "param": list(gribgen.PRESSURE), "levtype": "pl", "levelist": list(gribgen.LEVELS)}},
            ]
        },
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
    for f in files:
        f.read_bytes()
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
    """``wxpipe create`` in a child Python under cProfile; the top by own time and by cumulative time."""
    prof = out.with_suffix(".prof")
    code = (
        "import cProfile, sys; from wxpipe.cli import main; "
        f"cProfile.run('main([\"create\", {str(recipe)!r}, {str(fresh(store))!r}])', {str(prof)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    out.write_text(text.getvalue())
    return text.getvalue()


# --- the benchmark ---------------------------------------------------------------------------------------


def run(n_dates: int = 500, small: int = 100, parts: int = 2, skip_anemoi: bool = False, profile: bool = False) -> None:
    work = WORK / "create"
    logs = work / "logs"
    archive = gribgen.ensure_archive(max(n_dates, small))
    full = write_yaml(work / f"wxpipe-{n_dates}.yaml", wxpipe_recipe(archive, n_dates, f"bench-1deg-{n_dates}"))
    short = write_yaml(work / f"wxpipe-{small}.yaml", wxpipe_recipe(archive, small, f"bench-1deg-{small}"))
    anemoi_yaml = write_yaml(work / f"anemoi-{n_dates}.yaml", anemoi_recipe(archive, n_dates))
    version = "" if skip_anemoi else ensure_anemoi_venv()

    log.info("(a) bare ecCodes decode of %d dates", n_dates)
    dec = bare_decode(archive, n_dates)

    log.info("(b) wxpipe create, %d dates", n_dates)
    store = fresh(work / "wxpipe-create.zarr")
    create = run_timed(wx("create", full, store), logs / "wxpipe-create.log")

    log.info("(b) wxpipe init + load --part 1/1 + finalise")
    one = fresh(work / "wxpipe-parts1.zarr")
    init1 = run_timed(wx("init", full, one), logs / "init-1.log")
    load1 = run_timed(wx("load", full, one, "--part", "1/1"), logs / "load-1-of-1.log")
    fin1 = run_timed(wx("finalise", one), logs / "finalise-1.log")

    log.info("(b) wxpipe load --part i/%d, %d processes at once", parts, parts)
    many = fresh(work / f"wxpipe-parts{parts}.zarr")
    run_timed(wx("init", full, many), logs / f"init-{parts}.log")
    wall_n, loads = run_parallel(
        [wx("load", full, many, "--part", f"{i}/{parts}") for i in range(1, parts + 1)],
        [logs / f"load-{i}-of-{parts}.log" for i in range(1, parts + 1)],
    )
    run_timed(wx("finalise", many), logs / f"finalise-{parts}.log")

    log.info("(d) peak RSS of one load part, %d dates", small)
    few = fresh(work / f"wxpipe-{small}.zarr")
    run_timed(wx("init", short, few), logs / f"init-{small}.log")
    load_small = run_timed(wx("load", short, few, "--part", "1/1"), logs / f"load-{small}.log")

    anemoi: Timed | None = None
    if not skip_anemoi:
        log.info("(c) anemoi-datasets %s create, %d dates (slow: ~8 dates/s)", version, n_dates)
        out = fresh(work / "anemoi.zarr")
        exe = str(ANEMOI_VENV / "bin" / "anemoi-datasets")
        anemoi = run_timed([exe, "create", str(anemoi_yaml), str(out), "--overwrite"], logs / "anemoi-create.log")

    speedup = load1.wall / wall_n
    figures = {
        "decode": dec,
        "create": create,
        "init": init1,
        "load1": load1,
        "finalise": fin1,
        "loadN": wall_n,
        "loads": loads,
        "small": load_small,
        "anemoi": anemoi,
    }
    missed = _missed(n_dates, figures, parts, speedup)
    prof_text = ""
    if profile or missed:
        log.info("profiling wxpipe create in-process (cProfile) because: %s", "; ".join(missed) or "--profile")
        prof_text = profile_create(full, work / "wxpipe-profile.zarr", work / "wxpipe-create-profile.txt")
        print(prof_text)
    body = _report(n_dates, small, parts, full, short, anemoi_yaml, store, version, figures, speedup, missed, prof_text)
    replace_section(SECTION, body)
    print(body)


def _missed(n: int, f: dict[str, object], parts: int, speedup: float) -> list[str]:
    out = []
    create = f["create"]
    dec = f["decode"]
    anemoi = f["anemoi"]
    assert isinstance(create, Timed) and isinstance(dec, Decode)
    if isinstance(anemoi, Timed) and anemoi.wall / create.wall < TARGET_ANEMOI:
        out.append(f"{anemoi.wall / create.wall:.2f}x anemoi's dates/s, target {TARGET_ANEMOI:g}x")
    if create.wall / dec.wall > TARGET_DECODE:
        out.append(f"create takes {create.wall / dec.wall:.2f}x the bare decode, target <= {TARGET_DECODE:g}x")
    if speedup < TARGET_PARTS * parts:
        out.append(f"{parts} parts speed-up {speedup:.2f}, target >= {TARGET_PARTS * parts:.2f}")
    return out


def _report(
    n: int,
    small: int,
    parts: int,
    full: Path,
    short: Path,
    anemoi_yaml: Path,
    store: Path,
    version: str,
    f: dict[str, object],
    speedup: float,
    missed: list[str],
    prof_text: str,
) -> str:
    dec, create, init1, load1, fin1, wall_n, loads, load_small, anemoi = (
        f[k] for k in ("decode", "create", "init", "load1", "finalise", "loadN", "loads", "small", "anemoi")
    )
    assert isinstance(dec, Decode) and isinstance(create, Timed) and isinstance(load1, Timed)
    assert isinstance(init1, Timed) and isinstance(fin1, Timed) and isinstance(wall_n, float)
    assert isinstance(load_small, Timed) and isinstance(loads, list)
    st = rel(store).replace("wxpipe-create", "STORE")
    w = "wxpipe"
    rows = [
        ("bare ecCodes decode (anchor)", dec.wall, dec.cpu, None, f"{dec.messages} messages, in-process, warm cache"),
        ("`wxpipe create`", create.wall, create.cpu, create.max_rss_mib, f"`{w} create {rel(full)} {st}`"),
        ("`wxpipe init`", init1.wall, init1.cpu, init1.max_rss_mib, f"`{w} init {rel(full)} {st}`"),
        ("`wxpipe load --part 1/1`", load1.wall, load1.cpu, load1.max_rss_mib, f"`{w} load {rel(full)} {st} --part 1/1`"),
        ("`wxpipe finalise`", fin1.wall, fin1.cpu, fin1.max_rss_mib, f"`{w} finalise {st}`"),
        (
            f"`wxpipe load --part i/{parts}` × {parts} at once",
            wall_n,
            sum(t.cpu for t in loads),
            max(t.max_rss_mib for t in loads),
            f"`{w} load {rel(full)} {st} --part i/{parts}` for i = 1..{parts}, concurrently",
        ),
        (
            f"`wxpipe load --part 1/1`, {small} dates",
            load_small.wall,
            load_small.cpu,
            load_small.max_rss_mib,
            f"`{w} load {rel(short)} {st} --part 1/1`",
        ),
    ]
    if isinstance(anemoi, Timed):
        rows.append(
            (
                f"`anemoi-datasets create` {version}",
                anemoi.wall,
                anemoi.cpu,
                anemoi.max_rss_mib,
                f"`{rel(ANEMOI_VENV)}/bin/anemoi-datasets create {rel(anemoi_yaml)} OUT.zarr --overwrite`",
            )
        )
    table = ["| step | wall s | CPU s | dates/s | peak RSS MiB | command |", "|---|---:|---:|---:|---:|---|"]
    for name, wall, cpu, rss, cmd in rows:
        dates = small if f"{small} dates" in name else n
        rss_text = "" if rss is None else f"{rss:.0f}"
        table.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {dates / wall:.1f} | {rss_text} | {cmd} |")

    ratios = [
        "| ratio | measured | target |",
        "|---|---:|---|",
    ]
    if isinstance(anemoi, Timed):
        ratios.append(
            f"| wxpipe create dates/s ÷ anemoi create dates/s | **{anemoi.wall / create.wall:.2f}** | ≥ {TARGET_ANEMOI:g} |"
        )
    ratios += [
        f"| wxpipe create time ÷ bare decode time | **{create.wall / dec.wall:.2f}** | ≤ {TARGET_DECODE:g} |",
        f"| wxpipe load 1/1 time ÷ bare decode time | {load1.wall / dec.wall:.2f} | |",
        f"| speed-up of {parts} parts in parallel over 1 | **{speedup:.2f}** | ≥ {TARGET_PARTS * parts:.1f} ({os.cpu_count()} cores) |",
        f"| peak RSS of a load part, {n} ÷ {small} dates | {load1.max_rss_mib / load_small.max_rss_mib:.2f} | ≈ 1 (flat in length) |",
    ]
    out = [
        f"Measured {today()} on {machine()}.",
        "",
        f"Command: `.venv/bin/python -m bench create` (archive: `bench/gribgen.py`, {n} dates × "
        f"{len(gribgen.VARIABLES)} variables on the regular 1° grid, {gribgen.NI * gribgen.NJ} points, "
        "one GRIB2 file per date, 16-bit packing; files in the page cache). Wall times of one run each; "
        "subprocess CPU and peak RSS from `/usr/bin/time -v`; `STORE` is a fresh store under `bench/work/create/`.",
        "",
        *table,
        "",
        *ratios,
        "",
        "Targets missed: " + ("; ".join(missed) if missed else "none") + ".",
    ]
    if prof_text:
        top = _profile_head(prof_text, 15)
        out += [
            "",
            "Where `wxpipe create` spends its time (cProfile, own time, top 15; full profile in "
            "`bench/work/create/wxpipe-create-profile.txt`):",
            "",
            "```",
            *top,
            "```",
        ]
    return "\n".join(out)


def _profile_head(text: str, n: int) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
    head = [ln.rstrip() for ln in lines[start : start + n + 1]]
    total = next((ln.strip() for ln in lines if "function calls" in ln), "")
    return [total, *head]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench create", description=__doc__)
    ap.add_argument("--dates", type=int, default=500, help="archive length for speed (default 500)")
    ap.add_argument("--small", type=int, default=100, help="shorter archive for the RSS comparison (default 100)")
    ap.add_argument("--parts", type=int, default=2, help="parallel load parts (default 2)")
    ap.add_argument("--skip-anemoi", action="store_true", help="do not run anemoi-datasets")
    ap.add_argument("--profile", action="store_true", help="profile wxpipe create even when every target is met")
    args = ap.parse_args(argv)
    run(args.dates, args.small, args.parts, args.skip_anemoi, args.profile)


__all__ = ["main", "run", "wxpipe_recipe", "anemoi_recipe", "bare_decode", "np"]
