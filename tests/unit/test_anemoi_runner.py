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

from wxpipe.anemoi.runner import checkpoint_facts, dataset_attrs, train
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
    res = train(fake, _cfg(steps=600), checkpoint, "gnn")
    _, second = _calls(checkpoint)
    assert "++training.run_id='run1'" in second["argv"] and res.resumed
    assert "++training.max_steps=600" in second["argv"]


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
