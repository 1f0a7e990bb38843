"""Offline MLflow against a real ``mlflow server`` on 127.0.0.1: a run logs beside its model without a
request to the server, ``wxpipe mlflow-sync`` copies it there whole and only once (a resumed run adds only
its new points), a file store as anemoi-training writes one syncs too, and ``fallback`` with a server that
does not answer logs offline within seconds.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from wxpipe import mlflow_sync, tracking
from wxpipe.cli import main
from wxpipe.provenance import git_commit
from wxpipe.train import train

pytestmark = pytest.mark.integration

CHECKPOINT = Path("results/models/offline/checkpoint.pt")  # a name of its own: MLflow caches stores by URI


def _histories(client: Any, run: Any) -> dict[str, list[tuple[int, int, float]]]:
    return {
        key: sorted((m.timestamp, m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def _only_run(client: Any, experiment: str) -> Any:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    [run] = client.search_runs([found.experiment_id])
    return run


def test_an_offline_run_reaches_the_server_by_sync_whole_and_once(
    unit_helpers: ModuleType, mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    url = mlflow_server.url  # training asks it nothing, so it need not be up yet (it starts meanwhile)
    dataset = unit_helpers._make_dataset(Path("results/datasets/tiny.zarr"))
    mlflow = {"tracking_uri": url, "experiment": "offline", "mode": "offline"}
    result = train(dataset, unit_helpers._training_config(tmp_path, steps=20, mlflow=mlflow), CHECKPOINT, "off", {})

    store = Path(tracking.offline_uri(CHECKPOINT.parent).removeprefix("sqlite:///"))
    assert store == Path("results/models/offline/mlflow/mlflow.db") and store.is_file()
    assert (store.parent / "artifacts").is_dir()
    server = MlflowClient(mlflow_server.ready())
    assert server.get_experiment_by_name("offline") is None  # training asked the server nothing
    local = MlflowClient(f"sqlite:///{store}")
    source = local.get_run(result.run_id)

    marker = Path("results/lineage/.pending/mlflow-sync/off.done")
    assert main(["mlflow-sync", str(store.parent), "--to", url, "--marker", str(marker)]) == 0
    copy = _only_run(server, "offline")
    assert json.loads(marker.read_text())["runs"] == {result.run_id: copy.info.run_id}
    synced = json.loads((store.parent / tracking.SYNCED).read_text())["runs"]
    assert synced == {result.run_id: {"run_id": copy.info.run_id, "tracking_uri": url}}
    assert tracking.synced(f"sqlite:///{store}", result.run_id) == (url, copy.info.run_id)
    assert copy.data.params == source.data.params
    assert copy.data.tags.get("mlflow.source.git.commit") == git_commit()  # None outside a git checkout
    assert {k: v for k, v in copy.data.tags.items() if not k.startswith("wxpipe.synced_")} == source.data.tags
    assert copy.data.tags[mlflow_sync.SYNCED_FROM] == result.run_id
    assert (copy.info.run_name, copy.info.status, copy.info.start_time, copy.info.end_time) == (
        *("off", "FINISHED"),
        *(source.info.start_time, source.info.end_time),
    )
    assert _histories(server, copy) == _histories(local, source)
    assert len(_histories(server, copy)["val_loss"]) == 6  # persistence, then 5 validations
    logged = Path(server.download_artifacts(copy.info.run_id, "checkpoint.pt", str(tmp_path / "download")))
    assert logged.read_bytes() == CHECKPOINT.read_bytes()

    assert main(["mlflow-sync", str(store), "--to", url]) == 0  # again: nothing new
    assert _histories(server, _only_run(server, "offline")) == _histories(local, source)

    longer = unit_helpers._training_config(tmp_path, steps=30, mlflow=mlflow)  # resumed after the first sync
    assert train(dataset, longer, CHECKPOINT, "off", {}).run_id == result.run_id
    assert main(["mlflow-sync", str(store), "--to", url]) == 0
    again = _only_run(server, "offline")
    assert again.info.run_id == copy.info.run_id
    assert _histories(server, again) == _histories(local, local.get_run(result.run_id))
    assert again.data.tags["wxpipe.schedule.steps"] == "30"


def test_a_file_store_as_anemoi_writes_it_syncs_too(
    mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    mlruns = tmp_path / "anemoi" / "mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    local = MlflowClient(mlruns.as_uri())
    experiment = local.create_experiment("anemoi-offline")
    run_id = local.create_run(experiment, run_name="aifs").info.run_id
    for step in range(5):
        local.log_metric(run_id, "train_loss", 1.0 / (step + 1), step=step)
    local.log_param(run_id, "model", "graphtransformer")
    note = tmp_path / "config.yaml"
    note.write_text("model: graphtransformer\n")
    local.log_artifact(run_id, str(note))
    local.set_terminated(run_id)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")

    store = mlflow_sync.find_store(mlruns.parent)  # the folder holding mlruns/
    assert store.file_store and store.path == mlruns
    copies = mlflow_sync.sync(store, mlflow_server.ready())
    server = MlflowClient(mlflow_server.url)
    copy = _only_run(server, "anemoi-offline")
    assert copies == {run_id: copy.info.run_id}
    assert (copy.info.run_name, copy.info.status, copy.data.params) == (
        "aifs",
        "FINISHED",
        {"model": "graphtransformer"},
    )
    assert [m.step for m in server.get_metric_history(copy.info.run_id, "train_loss")] == [0, 1, 2, 3, 4]
    assert [a.path for a in server.list_artifacts(copy.info.run_id)] == ["config.yaml"]
    assert (tmp_path / "anemoi" / tracking.SYNCED).is_file()


def test_fallback_logs_offline_at_once_when_the_server_does_not_answer(
    unit_helpers: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    dataset = unit_helpers._make_dataset(tmp_path / "tiny.zarr")
    cfg = unit_helpers._training_config(tmp_path, steps=5, mlflow={"tracking_uri": closed, "mode": "fallback"})
    began = time.time()
    result = train(dataset, cfg, tmp_path / "fallback" / "checkpoint.pt", "fallback", {})
    [warning] = [r for r in caplog.records if r.name == "wxpipe.tracking"]
    assert warning.created - began < 15  # the server given up on, training's set-up included
    assert warning.getMessage().startswith(f"MLflow tracking server {closed}: cannot connect")
    assert "logging offline" in warning.getMessage()
    store = tmp_path / "fallback" / "mlflow"
    assert MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_run(result.run_id).info.status == "FINISHED"

    capsys.readouterr()
    marker = tmp_path / "sync.done"
    assert main(["mlflow-sync", str(store), "--to", closed, "--marker", str(marker)]) == 1  # still unreachable
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"wxpipe mlflow-sync: error: MLflow tracking server {closed}: cannot connect")
    assert not marker.exists() and not (store / tracking.SYNCED).exists()
