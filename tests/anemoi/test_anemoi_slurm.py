"""make test-anemoi on the project's SLURM test cluster: anemoi-training as a 2-task job whose ranks srun starts
(Lightning reads SLURM's variables; gloo on the CPU, the cluster's GPUs being fake), cancelled once anemoi saved
a last.ckpt and submitted again: the second job continues the same anemoi run to its last step."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from gnn_run import BIN, GNN, REPO, env

from wxpipe.model import read_metadata

STEPS, EVERY = 40, 10


def _slurm_helpers():  # type: ignore[no-untyped-def]
    """tests/slurm/test_profiles.py's cluster fixture and sacct helpers, loaded by path."""
    spec = importlib.util.spec_from_file_location("wxpipe_slurm_helpers", REPO / "tests/slurm/test_profiles.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


SLURM = _slurm_helpers()
start_cluster = SLURM.start_cluster  # the fixture, found here by pytest


def test_a_cancelled_two_rank_job_continues_its_run(project: Path, start_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = start_cluster("generic")
    copy = "results/lineage/transfer/scratch/demo.json"  # the dataset copy the GNN reads (the engine tests made it)
    make = [str(BIN / "snakemake"), "--cores", "2", copy]
    subprocess.run(make, cwd=project, env=env(), check=True, capture_output=True)
    settings = {**GNN, "steps": STEPS, "checkpoint_every": EVERY}
    small = {"model.num_channels": 16, "dataloader.num_workers": {"training": 1, "validation": 1}}
    settings["anemoi"] = {**GNN["anemoi"], **small}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    checkpoint = tmp_path / "models/gnn/checkpoint.pt"
    command = (
        f"{BIN}/wxpipe train {project}/results/sites/scratch/demo.zarr {checkpoint} --name gnn"
        f" --settings @{tmp_path}/settings.json --ranks 2 --cpus-per-rank 1 --lineage {tmp_path}/record.json"
    )

    def submit(log: str) -> str:
        args = ["sbatch", "--parsable", "-A", site.account, "-p", "gpu", "--gres=gpu:2", "--ntasks=2"]
        args += ["--cpus-per-task=1", "--mem=8000", "-t", "20", "-o", str(tmp_path / log), "--wrap", command]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()

    first = submit("first.log")
    folder = tmp_path / "models/gnn/anemoi/checkpoint"
    deadline = time.monotonic() + 600
    while not list(folder.glob("*/last.ckpt")):
        queued = subprocess.run(["squeue", "-h", "-j", first], capture_output=True, text=True).stdout.strip()
        assert queued and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-4000:]
        time.sleep(0.5)
    time.sleep(1)
    subprocess.run(["scancel", first], check=True)
    assert SLURM.wait_for_job(first, timeout=120).startswith("CANCELLED")
    [killed] = [p.name for p in folder.iterdir()]
    assert not checkpoint.exists()

    second = submit("second.log")
    state = SLURM.wait_for_job(second, timeout=900)
    log = (tmp_path / "second.log").read_text()
    assert state == "COMPLETED", log[-6000:]
    assert f"continuing anemoi run {killed}" in log and "Restoring states from the checkpoint path" in log
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log  # Lightning's ranks
    assert "anemoi-training on 2 cpu device(s) x 1 node(s)" in log and "srun --ntasks=2" in log
    steps = {r["JobID"]: r for r in SLURM.sacct("-j", second, "-o", "JobID,NTasks,State")}
    assert steps[f"{second}.0"]["NTasks"] == "2" and steps[f"{second}.0"]["State"] == "COMPLETED", steps
    assert [p.name for p in folder.iterdir()] == [killed]
    assert read_metadata(checkpoint).training_step == STEPS
    assert json.loads((tmp_path / "record.json").read_text())["anemoi"]["run_id"] == killed
