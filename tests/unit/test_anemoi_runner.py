"""The anemoi engine's runner against a stand-in ``anemoi-training`` (the real one: make test-anemoi): the command
it is given, a rerun continuing anemoi's own run, the checkpoint and loss points handed on, and failures."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wxpipe.anemoi.runner import Hardware, checkpoint_facts, dataset_attrs, hardware, train
from wxpipe.config import TrainingConfig
from wxpipe.errors import WxpipeError
from wxpipe.model import read_metadata

# Writes what anemoi-training 0.17 writes where the overrides say: checkpoints under <root>/checkpoint/<run id>/
# (inference ones with their metadata, META, and the grid), the offline MLflow file store under <root>/logs/mlflow;
# a rerun given ++training.run_id continues that run. Its arguments go to calls.jsonl; FAKE_EXIT makes it fail.
FAKE = """
import numpy as np
args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("++"))
root = Path(args["system.output.root"].strip("'"))
with open(root / "calls.jsonl", "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "seed": os.environ.get("ANEMOI_BASE_SEED")}) + "\\n")
if os.environ.get("FAKE_EXIT"):
    sys.exit(int(os.environ["FAKE_EXIT"]))
run = args.get("training.run_id", "'run1'").strip("'")
folder = root / "checkpoint" / run
folder.mkdir(parents=True, exist_ok=True)
AXES = ("latitudes", "longitudes")
meta = {**META, "uuid": "uuid-" + str(len(list(folder.iterdir()))), "run_id": run}
meta["provenance_training"]["module_versions"]["numpy"] = {"version": "2"}
for name in ("inference-last.ckpt", "last.ckpt"):
    top = name.split(".")[0] + "/anemoi-metadata/"
    grid = {n: {"path": top + "data/" + n + ".numpy", "shape": [4], "dtype": "float64"} for n in AXES}
    with zipfile.ZipFile(folder / name, "w") as z:
        z.writestr(top + "anemoi.json", json.dumps({**meta, "supporting_arrays_paths": {"data": grid}}))
        for n, values in zip(AXES, ([60, 20, -20, -60], [0, 90, 180, 270])):
            z.writestr(grid[n]["path"], np.array(values, dtype="float64").tobytes())
metrics = root / "logs" / "mlflow" / "123" / run / "metrics"
if "training.run_id" in args:  # continued: anemoi logs to a child run, from the step it resumed at
    child = root / "logs" / "mlflow" / "123" / "child"
    (child / "tags").mkdir(parents=True, exist_ok=True)
    (child / "tags" / "mlflow.parentRunId").write_text(run)
    metrics = child / "metrics"
    metrics.mkdir()
    (metrics / "train_multi_dataset_loss_step").write_text("5 0.3 2\\n6 0.2 3\\n")
else:
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "train_multi_dataset_loss_step").write_text("1 0.5 1\\n2 0.25 2\\n")
    (metrics / "val_multi_dataset_loss_epoch").write_text("3 0.4 2\\n")
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anemoi_meta: Callable[..., dict[str, Any]]) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "anemoi-training"
    meta = anemoi_meta(["2t", "tp", "lsm"], forcings=["lsm"], diagnostics=["tp"])
    head = f"import json, os, sys, zipfile\nfrom pathlib import Path\nMETA = json.loads({json.dumps(meta)!r})"
    exe.write_text(f"#!{sys.executable}\n{head}{FAKE}")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dataset = tmp_path / "demo.zarr"
    dataset.mkdir()
    attrs = {"variables": ["2t", "tp", "lsm"], "frequency": "6h", "constant_fields": ["lsm"]}
    (dataset / ".zattrs").write_text(json.dumps(attrs))
    return dataset


def _cfg(**extra: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "engine": "anemoi",
            "dataset": "demo",
            "train": {"start": "2020-01-01", "end": "2020-01-05"},
            "validation": {"start": "2020-01-06", "end": "2020-01-07"},
            "variables": {"diagnostic": ["tp"]},
            "seed": 3,
            **extra,
        }
    )


def _calls(checkpoint: Path) -> list[dict[str, Any]]:
    lines = (checkpoint.parent / "anemoi" / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_run_hands_on_its_checkpoint_loss_points_and_facts(fake: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "models/gnn/checkpoint.pt"
    res = train(fake, _cfg(), checkpoint, "gnn")
    [call] = _calls(checkpoint)
    assert call["argv"][:2] == ["train", "--config-name=config"] and call["seed"] == "3"
    assert call["cwd"] == str(checkpoint.parent / "anemoi")  # never the project folder, whose config/ Hydra would read
    assert f"++system.input.dataset='{fake.resolve()}'" in call["argv"]
    assert "++data.datasets.data.forcing=['lsm']" in call["argv"]
    assert not any(a.startswith("++training.run_id") for a in call["argv"])
    assert (res.run_id, res.resumed) == ("run1", False)
    with zipfile.ZipFile(checkpoint) as ours, zipfile.ZipFile(res.inference) as theirs:
        assert {n: ours.read(n) for n in theirs.namelist()} == {n: theirs.read(n) for n in theirs.namelist()}
    model = read_metadata(checkpoint)  # embedded for predict: the roles and grid as anemoi trained them
    assert (model.engine, model.inputs, model.outputs, model.forcings) == (
        "anemoi",
        ["2t", "lsm"],
        ["2t", "tp"],
        ["lsm"],
    )
    assert (model.points, model.input_steps, model.training_step, model.run_id) == (4, 2, 3, "run1")
    assert [v.normaliser for v in model.variables] == ["mean-std", "std", "none"]
    assert model.tracking_uri == f"file:{checkpoint.parent.resolve() / 'anemoi/logs/mlflow'}"
    history = json.loads(checkpoint.with_name("loss.json").read_text())
    assert (history["train"], history["validation"]) == ([[1, 0.5], [2, 0.25]], [[2, 0.4]])
    facts = checkpoint_facts(checkpoint)
    assert facts["run_id"] == "run1" and facts["versions"] == {"anemoi.training": "0.17.1"}
    assert facts["config"]["training"] == {"precision": "32", "max_steps": 3}


def test_a_rerun_continues_anemois_own_run(fake: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "models/gnn/checkpoint.pt"
    train(fake, _cfg(), checkpoint, "gnn")
    checkpoint.unlink()  # Snakemake deletes a failed job's outputs; anemoi's folder stays
    res = train(fake, _cfg(steps=600), checkpoint, "gnn", tags={"wxpipe.stage": "train"})
    _, second = _calls(checkpoint)
    assert "++training.run_id='run1'" in second["argv"] and res.resumed
    assert "++training.max_steps=600" in second["argv"]
    history = json.loads(checkpoint.with_name("loss.json").read_text())  # the run's points and its child's
    assert history["train"] == [[1, 0.5], [2, 0.3], [3, 0.2]] and history["validation"] == [[2, 0.4]]
    assert (res.store / "123/child/tags/wxpipe.stage").read_text() == "train"  # the child syncs with the tags too


def test_a_failed_run_leaves_no_checkpoint(fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EXIT", "3")
    checkpoint = tmp_path / "models/gnn/checkpoint.pt"
    with pytest.raises(WxpipeError, match="anemoi-training exited with status 3"):
        train(fake, _cfg(), checkpoint, "gnn")
    assert not checkpoint.exists()


def test_the_dataset_attributes_come_from_its_metadata_file(fake: Path, tmp_path: Path) -> None:
    assert dataset_attrs(fake)["variables"] == ["2t", "tp", "lsm"]
    with pytest.raises(WxpipeError, match="not a dataset"):
        dataset_attrs(tmp_path)
    with pytest.raises(WxpipeError, match="not an anemoi checkpoint"):
        with zipfile.ZipFile(tmp_path / "x.ckpt", "w") as z:
            z.writestr("a.json", "{}")
        checkpoint_facts(tmp_path / "x.ckpt")


# srun as the runner calls it: its options are recorded, then the command runs (as one task here)
SRUN = """
import json, os, sys
at = next(i for i, a in enumerate(sys.argv) if i and not a.startswith("--"))
options, command = sys.argv[1:at], sys.argv[at:]
with open(os.environ["SRUN_CALLS"], "a") as f:
    f.write(json.dumps(options) + "\\n")
os.execvp(command[0], command)
"""


def test_in_a_slurm_job_srun_starts_one_task_per_rank(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning then reads SLURM's variables, and needs devices x nodes = tasks."""
    srun = tmp_path / "bin" / "srun"
    srun.write_text(f"#!{sys.executable}\n{SRUN}")
    srun.chmod(0o755)
    slurm = {"SLURM_JOB_ID": "42", "SLURM_JOB_NUM_NODES": "2"}
    where = hardware(4, 3, slurm)
    srun = ["srun", "--ntasks=4", "--ntasks-per-node=2", "--cpus-per-task=3", "--kill-on-bad-exit=1"]
    assert where == Hardware("cpu", 2, 2, srun)
    assert hardware(4, 3, {}) == Hardware("cpu", 1, 1, None)  # no GPU here: one CPU process
    assert hardware(1, 2, {**slurm, "SLURM_JOB_NUM_NODES": "1", "SLURM_STEP_ID": "0"}).launcher is None
    with pytest.raises(WxpipeError, match="3 ranks do not split evenly over the job's 2 nodes"):
        hardware(3, 1, slurm)
    monkeypatch.setenv("SRUN_CALLS", str(tmp_path / "srun.jsonl"))
    checkpoint = tmp_path / "models/gnn/checkpoint.pt"
    train(fake, _cfg(), checkpoint, "gnn", hardware=where)
    assert json.loads((tmp_path / "srun.jsonl").read_text()) == where.launcher[1:]
    [call] = _calls(checkpoint)
    assert "++system.hardware.num_gpus_per_node=2" in call["argv"] and "++system.hardware.num_nodes=2" in call["argv"]
    assert "++system.hardware.accelerator='cpu'" in call["argv"]
