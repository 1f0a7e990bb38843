"""Progress in a terminal and in a log: live bar, or a line every few seconds; a summary line at the end."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
import yaml

from wxpipe import progress as progress_mod
from wxpipe.progress import done, interactive, progress
from wxpipe.sources.demo import write_demo_archive

WXPIPE = Path(sys.executable).parent / "wxpipe"


@pytest.mark.parametrize(("columns", "expected"), [(0, False), (80, True)])
def test_a_tty_draws_a_bar_only_when_it_has_columns(columns: int, expected: bool) -> None:
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        with os.fdopen(os.dup(follower), "w") as stream:
            assert interactive(stream) is expected
    finally:
        os.close(leader)
        os.close(follower)


def test_a_log_gets_whole_lines_with_counts_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "LOG_INTERVAL", 0.0)
    log = io.StringIO()
    for _ in progress(iterable=range(5), desc="load 1/2", unit="date", file=log, mininterval=0, miniters=1):
        pass
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) >= 2
    assert re.fullmatch(r"load 1/2: +100% 5/5 \[00:00<00:00, .*date/s\]", lines[-1]), lines


def test_done_says_what_size_and_time() -> None:
    assert re.fullmatch(r"x\.zarr: complete; 1\.5 MB, \d+\.\d s", done("x.zarr: complete", 0.0, 1_500_000))


def test_create_logs_lines_and_ends_with_a_summary(tmp_path: Path) -> None:
    dates = np.arange(np.datetime64("2020-01-01T00"), np.datetime64("2020-01-02T00"), np.timedelta64(6, "h"))
    write_demo_archive(tmp_path / "grib", dates.astype("datetime64[s]"), grid="O32", seed=1)
    recipe = {
        "dates": {"start": "2020-01-01T00:00", "end": "2020-01-01T18:00", "frequency": "6h"},
        "input": {"grib": {"path": f"{tmp_path}/grib/{{date:strftime(%Y%m%d%H)}}.grib2", "param": ["2t"]}},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    store = tmp_path / "ds.zarr"
    res = subprocess.run([WXPIPE, "create", tmp_path / "r.yaml", store], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and re.search(r"^load 1/1: +100% 4/4 \[", res.stderr, flags=re.M), res.stderr
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    summary = res.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{store}: complete, 4 dates x 1 variables, statistics of 2020-01-01T00:00:00 ..")
    assert re.search(rf"; {size / 1000:.1f} kB, \d+\.\d s$", summary), (summary, size)
