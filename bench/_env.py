"""Paths, the anemoi-datasets venv, timing and machine description shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench")

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work"
ANEMOI_VENV = BENCH / ".venv-anemoi"
ANEMOI_PYTHON = ANEMOI_VENV / "bin" / "python"
ANEMOI_PIN = "0.5.47"
ANEMOI_PACKAGES = ["earthkit-data", "eccodes", "eccodeslib", "cfgrib", "xarray<2026.9"]
BENCHMARKS = ROOT / "BENCHMARKS.md"


def wxpipe_exe() -> str:
    """The ``wxpipe`` console script of the interpreter running the bench."""
    exe = Path(sys.executable).parent / "wxpipe"
    if exe.exists():
        return str(exe)
    found = shutil.which("wxpipe")
    if not found:
        raise SystemExit("bench: no `wxpipe` command beside this Python or on PATH (install the package first)")
    return found


def fresh_venv(venv: Path) -> list[str]:
    """Create (or empty) the venv ``venv`` of a tool compared against; return its pip install command."""
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    return [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]


def ensure_anemoi_venv() -> str:
    """Create ``bench/.venv-anemoi`` with anemoi-datasets when missing; return the installed version."""
    stamp = ANEMOI_VENV / ".bench-installed"
    if not stamp.exists():
        log.info("creating %s with anemoi-datasets %s (about 70 s)", ANEMOI_VENV, ANEMOI_PIN)
        pip = fresh_venv(ANEMOI_VENV)
        pinned = subprocess.run([*pip, f"anemoi-datasets[create]=={ANEMOI_PIN}", *ANEMOI_PACKAGES])
        if pinned.returncode != 0:
            log.warning("anemoi-datasets==%s did not install; trying the newest release", ANEMOI_PIN)
            subprocess.run([*pip, "anemoi-datasets[create]", *ANEMOI_PACKAGES], check=True)
        stamp.write_text("ok\n")
    return anemoi_version()


def anemoi_version() -> str:
    out = subprocess.run(
        [str(ANEMOI_PYTHON), "-c", "import importlib.metadata as m; print(m.version('anemoi-datasets'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@dataclass(frozen=True)
class Timed:
    """Wall and CPU (children included) seconds of a subprocess, with its peak RSS in MiB."""

    wall: float
    cpu: float
    max_rss_mib: float


def run_timed(cmd: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> Timed:
    """Run ``cmd`` under ``/usr/bin/time -v``; its output goes to ``log_path``; fail loudly with the log tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full = ["/usr/bin/time", "-v", *cmd] if Path("/usr/bin/time").exists() else list(cmd)
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.run(full, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-30:])
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return Timed(wall, _time_field(text, "User time") + _time_field(text, "System time"), _rss_mib(text))


def _time_field(text: str, key: str) -> float:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(key):
            return float(line.rsplit(":", 1)[1])
    return float("nan")


def _rss_mib(text: str) -> float:
    return _time_field(text, "Maximum resident set size") / 1024


def machine() -> str:
    """One line: host, CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def revision() -> str:
    """The wxpipe commit measured, flagged when the package has uncommitted changes (read-only git calls)."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "workflow/wxpipe"], capture_output=True, text=True
        )
    except OSError:
        return "unknown revision"
    if sha.returncode != 0:
        return "unknown revision"
    return f"wxpipe {sha.stdout.strip()}" + (" with uncommitted changes" if dirty.stdout.strip() else "")


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def replace_section(title: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the ``## title`` section of BENCHMARKS.md with ``body`` (added at the end when absent)."""
    head = (
        "# wxpipe benchmarks\n\nWritten by `python -m bench` (bench/README.md); figures are compared as ratios "
        "against an anchor measured in the same run.\n"
    )
    text = path.read_text() if path.exists() else head
    lines = text.splitlines(keepends=True)
    marker = f"## {title}"
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == marker), None)
    section = f"{marker}\n\n{body.strip()}\n\n"
    if start is None:
        new = text.rstrip() + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + section + "".join(lines[end:])
    path.write_text(new.rstrip() + "\n")


# --- shared by `statistics` and `rechunk` ------------------------------------------------------------------

RECHUNKER_VENV = BENCH / ".venv-rechunker"
RECHUNKER_PYTHON = RECHUNKER_VENV / "bin" / "python"
RECHUNKER_PIN = "0.5.4"
RECHUNKER_PACKAGES = [f"rechunker=={RECHUNKER_PIN}", "zarr<3", "dask"]

SYNTH_VARIABLES = ("10u", "10v", "2t", "msl", "sp", "tp", "t_850", "u_850", "v_850", "z_500")
SYNTH_START = dt.datetime(2020, 1, 1)
SYNTH_STEP = dt.timedelta(hours=6)


def rel(path: Path) -> str:
    """``path`` relative to the repository root when inside it (commands in BENCHMARKS.md run from there)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def ensure_rechunker_venv() -> str:
    """Create ``bench/.venv-rechunker`` with pangeo rechunker (zarr 2 only) when missing; return its versions."""
    stamp = RECHUNKER_VENV / ".bench-installed"
    if not stamp.exists():
        log.info("creating %s with rechunker %s, zarr<3 and dask", RECHUNKER_VENV, RECHUNKER_PIN)
        pip = fresh_venv(RECHUNKER_VENV)
        subprocess.run([*pip, *RECHUNKER_PACKAGES], check=True)
        stamp.write_text("ok\n")
    (RECHUNKER_VENV / ".gitignore").write_text("*\n")  # keep the venv out of `git status`
    code = (
        "import importlib.metadata as m; "
        "print(', '.join(p + ' ' + m.version(p) for p in ('rechunker', 'zarr', 'dask')))"
    )
    out = subprocess.run([str(RECHUNKER_PYTHON), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def synth_dates(n_dates: int) -> list[dt.datetime]:
    return [SYNTH_START + i * SYNTH_STEP for i in range(n_dates)]


def ensure_synthetic(path: Path, n_dates: int = 1000, n_points: int = 40320, block: int = 50) -> Path:
    """A finalised wxpipe store of ``n_dates`` (6 h) x 10 variables x ``n_points`` float32, one date per chunk.

    Written directly with :func:`wxpipe.dataset.init` and :class:`wxpipe.dataset.Writer` (no GRIB): travelling
    waves plus noise, quantised to 16 bits per field as GRIB packing would, so the Blosc ratio is realistic.
    Reused when ``path`` holds a complete store of that shape.
    """
    import numpy as np
    import zarr

    from wxpipe.dataset import Writer, finalise, init
    from wxpipe.recipe import Recipe

    variables = list(SYNTH_VARIABLES)
    shape = [n_dates, len(variables), 1, n_points]
    if path.exists():
        try:
            root = zarr.open_group(str(path), mode="r")
            if root.attrs.get("build_complete") and list(root["data"].shape) == shape:
                return path
        except Exception:
            pass
        shutil.rmtree(path)
    log.info(
        "writing the synthetic store %s (%d dates x %d variables x %d points)", path, n_dates, len(variables), n_points
    )
    dates = synth_dates(n_dates)
    surface = sorted(v for v in variables if "_" not in v)
    params = sorted({v.split("_")[0] for v in variables if "_" in v})
    levels = sorted({int(v.split("_")[1]) for v in variables if "_" in v})
    recipe = Recipe.model_validate(
        {
            "name": path.stem,
            "description": "wxpipe bench: synthetic travelling waves",
            "dates": {"start": dates[0].isoformat(), "end": dates[-1].isoformat(), "frequency": "6h"},
            "input": {
                "join": [
                    {"grib": {"path": "unused/{date:strftime(%Y%m%d%H)}.grib", "param": surface}},
                    {"grib": {"path": "unused/pl.grib", "param": params, "levtype": "pl", "levelist": levels}},
                ]
            },
        }
    )
    rows = int(np.sqrt(n_points / 2))
    lat = np.repeat(np.linspace(-89.0, 89.0, rows), -(-n_points // rows))[:n_points]
    lon = np.tile(np.linspace(0.0, 360.0, -(-n_points // rows), endpoint=False), rows)[:n_points]
    path.parent.mkdir(parents=True, exist_ok=True)
    init(path, recipe, variables, lat, lon, field_shape=[n_points], resolution="synthetic")
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    rng = np.random.default_rng(0)
    base = np.array([273.0, 1.0e5, 5.0, -3.0, 9.8e4, 1.0e-3, 260.0, 8.0, -1.0, 5.5e4])
    amp = np.array([20.0, 1.5e3, 10.0, 10.0, 1.5e3, 1.0e-3, 15.0, 15.0, 15.0, 3.0e3])
    writer = Writer(path)
    buf = np.empty((block, len(variables), 1, n_points), np.float32)
    for lo in range(0, n_dates, block):
        n = min(block, n_dates - lo)
        for k in range(n):
            hours = 6.0 * (lo + k)
            for v in range(len(variables)):
                wave = np.cos(phi) * np.sin((v + 2) * lam - np.deg2rad(10.0 * hours) + v)
                noise = 0.05 * rng.standard_normal(n_points)
                x = base[v] + amp[v] * (wave + noise)
                lo_v, hi_v = x.min(), x.max()
                step = (hi_v - lo_v) / 65535 or 1.0
                buf[k, v, 0] = lo_v + np.round((x - lo_v) / step) * step
        writer.write(lo, buf[:n])
    writer.close()
    finalise(path)
    return path


def profile_cli(args: Sequence[str], out: Path, top: int = 25) -> str:
    """``wxpipe ARGS`` in a child Python under cProfile; the top by own time and by cumulative time."""
    import io
    import pstats

    prof = out.with_suffix(".prof")
    code = (
        "import cProfile, sys; from wxpipe.cli import main; p = cProfile.Profile(); p.enable(); "
        "rc = main(sys.argv[2:]); p.disable(); p.dump_stats(sys.argv[1]); sys.exit(rc)"
    )
    run_timed([sys.executable, "-c", code, str(prof), *args], out.with_suffix(".log"))
    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    out.write_text(text.getvalue())
    return text.getvalue()


def profile_head(text: str, n: int, table: int = 0) -> list[str]:
    """The first ``n`` rows of table ``table`` (0: by own time, 1: cumulative) of a :func:`profile_cli`
    printout, with its total line."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")] or [0]
    start = starts[min(table, len(starts) - 1)]
    head = [ln.rstrip() for ln in lines[start : start + n + 1]]
    total = next((ln.strip() for ln in lines if "function calls" in ln), "")
    return [total, *head]


def profile_section(prof_text: str, what: str, full: str) -> list[str]:
    """The Markdown lines that show where ``what`` spends its time (top by own and cumulative time)."""
    return [
        "",
        f"Where `{what}` spends its time (cProfile, by own time, top 15; full profile in `{full}`):",
        "",
        "```",
        *profile_head(prof_text, 15),
        "```",
        "",
        "By cumulative time (zarr-python does its I/O and decoding on its own thread: the main thread's "
        "`acquire` is the wait for it):",
        "",
        "```",
        *profile_head(prof_text, 20, table=1)[1:],
        "```",
    ]
