"""``wxpipe train`` against a real ``mlflow server`` on 127.0.0.1, credentials in MLflow's own variables.

The run is found FINISHED on the server with its git tag, its dataset input and its checkpoint, and a
unique password given through ``MLFLOW_TRACKING_PASSWORD`` reaches no file, log, param or tag (the
server does not check it: what matters is where the client lets it go).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from wxpipe.config import params_of
from wxpipe.provenance import git_commit

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def test_training_on_a_server_logs_everything_and_no_credential(
    unit_helpers: ModuleType, mlflow_server: Any, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    project = tmp_path / "project"
    project.mkdir()
    dataset = unit_helpers._make_dataset(project / "results" / "datasets" / "tiny.zarr")
    settings = params_of(unit_helpers._training_config(project, steps=20, mlflow={"experiment": "server"}))
    assert settings["mlflow"]["tracking_uri"] is None  # from the environment
    secret = f"pw-{secrets.token_hex(16)}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.ready(), "MLFLOW_TRACKING_USERNAME": "bob"}
    env["MLFLOW_TRACKING_PASSWORD"] = secret
    checkpoint = Path("results/models/r/checkpoint.pt")
    command = [str(BIN / "wxpipe"), "train", str(dataset.path), str(checkpoint), "--name", "r"]
    command += ["--settings", json.dumps(settings), "--lineage", "results/lineage/train/r.json"]
    res = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert secret not in res.stdout + res.stderr

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("server")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("mlflow.source.git.commit") == git_commit()
    assert run.data.params["mlflow.tracking_uri"] == mlflow_server.url
    assert run.inputs is not None
    [used] = run.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == ("tiny", dataset.uuid)
    assert {"checkpoint.pt", "loss_curve.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    logged = [*run.data.params.values(), *run.data.tags.values(), used.dataset.source, used.dataset.profile]
    assert not [value for value in logged if secret in str(value)]
    for folder in (tmp_path, mlflow_server.home):  # the project, and the server's store and artefacts
        assert not [f for f in folder.rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]
