"""`make gpu-check`'s CPU dry run: the same script at tiny sizes, gloo instead of NCCL, in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_check_dry_run_trains_through_the_production_parts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    res = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--dry-run", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    report = json.loads((out / "gpu-check.json").read_text())
    assert (report["backend"], report["precision"]) == ("gloo", "bf16")
    assert report["samples_per_second"] > 0 and 0 < report["gpu_step_seconds"] <= report["step_seconds"]
    assert 0 <= report["data_wait_fraction"] < 1 and report["parameters"] > 1000
    assert "samples/s" in res.stdout and "data wait" in res.stdout
    assert report["predict"]["device"] == "cpu" and report["predict"]["forecasts"] > 0  # the predict stage, too
    assert (out / "forecasts.zarr").is_dir()
    # the run went through DDP (a process group of one), the loader, an MLflow file store and a checkpoint
    assert (out / "model" / "checkpoint.pt").is_file()
    assert list((out / "mlruns").rglob("data_wait_fraction")), "the loader's wait metric reached the file store"
