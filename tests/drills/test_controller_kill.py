"""Drill (opt-in, `make drill`): kill -9 the Snakemake controller mid-run, `--unlock`, rerun, and compare the
dataset (with its statistics) and a layout with those of an uninterrupted run, byte for byte.

Not part of `make test`: two workflow runs cost more than a minute of CI.
"""

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

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECIPE = {
    "dates": {"start": "2021-05-01T00:00", "end": "2021-05-10T18:00", "frequency": "6h"},
    "input": {"grib": {"path": "archive/{date:strftime(%Y%m%d%H)}.grib2", "param": ["2t", "msl", "10u"]}},
}
CONFIG = {
    "datasets": {"mine": {"recipe": "mine.yaml", "parts": 4, "statistics": {"parts": 2}}},
    "layouts": {"mine-ts": {"dataset": "mine", "chunks": {"dates": 8, "values": 1000}, "parts": 2}},
}


def project(work: Path) -> Path:
    work.mkdir()
    archive = [BIN / "wxpipe", "demo", work / "archive", "--start", "2021-05-01T00:00", "--end", "2021-05-10T18:00"]
    subprocess.run(archive, check=True, capture_output=True)
    (work / "mine.yaml").write_text(yaml.safe_dump(RECIPE))
    (work / "my.yaml").write_text(yaml.safe_dump(CONFIG))
    return work


def snakemake(work: Path, *args: str, wait: bool = True) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work)}
    cmd = [BIN / "snakemake", "-s", REPO / "Snakefile", "--configfile", "my.yaml", *args]
    log = open(work / "snakemake.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=log)
    if wait:
        assert proc.wait(timeout=900) == 0, (work / "snakemake.log").read_text()[-4000:]
    return proc


def arrays(store: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(store), mode="r")
    return {name: np.asarray(root[name][:]) for name in sorted(root.array_keys())}


def test_controller_kill_unlock_rerun_gives_the_same_bytes(tmp_path: Path) -> None:
    clean = project(tmp_path / "clean")
    snakemake(clean, "--cores", "2", "rechunk")
    drilled = project(tmp_path / "drilled")
    proc = snakemake(drilled, "--cores", "2", "rechunk", wait=False)
    loads = drilled / "results/lineage/load/mine"
    deadline = time.monotonic() + 600
    while not (loads.is_dir() and any(loads.iterdir())):  # mid-run: one load part done, others running
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(5)  # the orphaned jobs finish or die on their own; the rerun redoes what is incomplete
    locked = snakemake(drilled, "--cores", "2", "rechunk", wait=False)
    assert locked.wait(timeout=300) != 0 and "LockException" in (drilled / "snakemake.log").read_text()
    snakemake(drilled, "--unlock")
    snakemake(drilled, "--cores", "2", "rechunk")
    for store in ("results/datasets/mine.zarr", "results/layouts/mine-ts.zarr"):
        a, b = arrays(clean / store), arrays(drilled / store)
        assert a.keys() == b.keys(), store
        for name in a:
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), (store, name)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
