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


def ensure_anemoi_venv() -> str:
    """Create ``bench/.venv-anemoi`` with anemoi-datasets when missing; return the installed version."""
    stamp = ANEMOI_VENV / ".bench-installed"
    if not stamp.exists():
        log.info("creating %s with anemoi-datasets %s (about 70 s)", ANEMOI_VENV, ANEMOI_PIN)
        python = shutil.which("python3.11") or sys.executable
        subprocess.run([python, "-m", "venv", "--clear", str(ANEMOI_VENV)], check=True)
        pip = [str(ANEMOI_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
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
