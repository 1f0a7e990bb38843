"""kill -9 in the middle of a load part, then rerun: the data are byte-identical to a clean build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from wxpipe import create, dataset
from wxpipe.errors import WxpipeError
from wxpipe.fsutil import file_sha256, tree_files
from wxpipe.sources.demo import write_demo_archive

REPO = Path(__file__).resolve().parents[2]
START, END = np.datetime64("2020-01-01T00:00:00"), np.datetime64("2020-01-20T18:00:00")


def _chunks(store: Path) -> dict[str, str]:
    return {str(f): file_sha256(store / "data" / f) for f in tree_files(store / "data")}


def test_kill_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    dates = np.arange(START, END + np.timedelta64(6, "h"), np.timedelta64(6, "h"))
    write_demo_archive(tmp_path / "grib", dates, grid="O48", seed=5)
    recipe = yaml.safe_load((REPO / "config/recipes/demo.yaml").read_text())
    recipe["dates"].update(start=str(START), end=str(END))
    for item in recipe["input"]["join"]:
        next(iter(item.values()))["path"] = str(tmp_path / "grib/{date:strftime(%Y%m%d%H)}.grib2")
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))

    clean = tmp_path / "clean.zarr"
    create.create(recipe_path, clean)

    store = tmp_path / "killed.zarr"
    create.init(recipe_path, store)
    cmd = [sys.executable, "-m", "wxpipe.cli", "load", str(recipe_path), str(store), "--part", "1/1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    flags = zarr.open_group(str(store), mode="r")
    while time.monotonic() < deadline and proc.poll() is None:
        if dataset.loaded(store).sum() >= 10:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail("the load part finished before it could be killed: make the archive longer")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = int(dataset.loaded(store).sum())
    assert 10 <= done < len(dates), done
    with pytest.raises(WxpipeError, match="not loaded"):
        dataset.finalise(store)

    flagged = {i for i, ok in enumerate(dataset.loaded(store)) if ok}
    before = {f: (store / "data" / f).stat().st_mtime_ns for f in _chunks(store)}
    (store / "data" / ".3.0.0.0.tmp4242").write_bytes(b"")  # what a kill inside a chunk write leaves
    create.load(recipe_path, store, dataset.Part(1, 1), resume=True)
    dataset.finalise(store)
    assert _chunks(store) == _chunks(clean)
    counted = [zarr.open_group(str(p), mode="r").attrs["total_number_of_files"] for p in (store, clean)]
    assert counted[0] == counted[1]
    kept = {f for f, t in before.items() if not f.startswith(".") and (store / "data" / f).stat().st_mtime_ns == t}
    assert {int(f.split(".")[0]) for f in kept} >= flagged  # resume did not rewrite finished chunks
    assert flags.attrs["variables"] == zarr.open_group(str(clean), mode="r").attrs["variables"]

    # a plain rerun of the part rewrites all of its chunks, to the same bytes
    create.load(recipe_path, store, dataset.Part(1, 1))
    assert all((store / "data" / f).stat().st_mtime_ns != t for f, t in before.items() if not f.startswith("."))
    assert _chunks(store) == _chunks(clean)
