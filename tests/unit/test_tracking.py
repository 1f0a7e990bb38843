"""MLflow as users expect it: where a run is logged (online, offline, fallback), a server that does not answer,
what each run holds, and which stores ``wxpipe mlflow-sync`` reads.

Runs against a real ``mlflow server`` are in tests/integration/test_mlflow.py (credentials in the environment)
and tests/integration/test_mlflow_offline.py (offline, then synced).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from wxpipe import mlflow_sync, paths, smk, tracking
from wxpipe.config import Config, TrainingConfig
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError, validation_error
from wxpipe.provenance import git_commit
from wxpipe.train import load_checkpoint, train
from wxpipe.train.state import RunInfo

SECRET = "hunter2-3f9c"


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def test_the_uri_comes_from_config_then_the_environment_then_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_uri(None) == tracking.DEFAULT_URI == "sqlite:///results/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.org:5000")
    assert tracking.resolve_uri(None) == "http://mlflow.example.org:5000"
    assert tracking.resolve_uri("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"https://bob:{SECRET}@mlflow.example.org")
    with pytest.raises(WxpipeError, match="MLFLOW_TRACKING_PASSWORD") as caught:
        tracking.resolve_uri(None)
    assert SECRET not in str(caught.value) and "https://mlflow.example.org" in str(caught.value)


def test_a_password_in_the_config_is_refused_naming_the_key_and_the_fix(training_config: Any) -> None:
    cfg = training_config(Path("/unused"))
    data = {**cfg.model_dump(mode="json"), "mlflow": {"tracking_uri": f"https://bob:{SECRET}@mlflow.example.org"}}
    with pytest.raises(pydantic.ValidationError) as caught:
        TrainingConfig.model_validate(data)
    text = str(validation_error(caught.value, "config.yaml", prefix=("training", "demo")))
    assert "training.demo.mlflow.tracking_uri" in text
    assert "MLFLOW_TRACKING_USERNAME" in text and "MLFLOW_TRACKING_PASSWORD" in text
    assert SECRET not in text
    assert TrainingConfig.model_validate({**data, "mlflow": {}}).mlflow.tracking_uri is None


def _refused(uri: str) -> tuple[str, float]:
    began = time.monotonic()
    with pytest.raises(WxpipeError) as caught:
        tracking.client(uri)
    return str(caught.value), time.monotonic() - began


def test_a_closed_port_fails_at_once_in_one_line(closed_port: int) -> None:
    message, seconds = _refused(f"http://bob:{SECRET}@127.0.0.1:{closed_port}")
    assert seconds < 15
    assert message.startswith(f"MLflow tracking server http://127.0.0.1:{closed_port}: cannot connect")
    assert "\n" not in message and SECRET not in message


def test_a_server_that_never_answers_fails_within_seconds(silent_port: int) -> None:
    from mlflow.tracking import MlflowClient

    assert tracking.ANSWER_SECONDS <= 10
    uri = f"http://127.0.0.1:{silent_port}"
    began = time.monotonic()
    with pytest.raises(WxpipeError, match=f"^MLflow tracking server {uri}: no answer within 1 s$"):
        tracking.check_server(MlflowClient(uri), uri, seconds=1)
    assert time.monotonic() - began < 5


def test_training_against_an_unreachable_server_fails_before_it_trains(
    tiny_dataset: Dataset, training_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port}")
    cfg = training_config(tmp_path, steps=5, mlflow={})
    began = time.monotonic()
    with pytest.raises(WxpipeError, match=f"MLflow tracking server http://127.0.0.1:{closed_port}: cannot connect"):
        train(tiny_dataset, cfg, tmp_path / "x.ckpt", "unreachable", {})
    assert time.monotonic() - began < 15
    assert not (tmp_path / "x.ckpt").exists()


def test_a_run_holds_its_source_dataset_and_checkpoint(trained: Any) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(trained.cfg.mlflow.tracking_uri)
    run = client.get_run(trained.result.run_id)
    tags = run.data.tags
    commit = git_commit()  # None where wxpipe runs from outside a git checkout: then neither tag
    assert tags.get("mlflow.source.git.commit") == commit
    assert tags.get("wxpipe.git.dirty") in (("true", "false") if commit else (None,))
    assert run.inputs is not None
    [used] = run.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == ("tiny", trained.dataset.uuid)
    assert str(trained.dataset.path.resolve()) in used.dataset.source
    assert {(t.key, t.value) for t in used.tags} == {("mlflow.data.context", "training")}
    name = trained.result.checkpoint.name
    assert name in [a.path for a in client.list_artifacts(run.info.run_id)]
    logged = Path(client.download_artifacts(run.info.run_id, name, str(trained.tmp / "download")))
    assert logged.read_bytes() == trained.result.checkpoint.read_bytes()


def test_the_default_store_keeps_everything_under_results(
    tiny_dataset: Dataset, training_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = training_config(tmp_path, steps=5, mlflow={"experiment": "default-store"})
    result = train(tiny_dataset, cfg, Path("results/models/r/checkpoint.pt"), "r", {})
    _, meta = load_checkpoint(result.checkpoint)
    assert meta.tracking_uri == "sqlite:///results/mlflow.db"
    client = MlflowClient("sqlite:///results/mlflow.db")
    run = client.get_run(result.run_id)
    assert run.data.params["mlflow.tracking_uri"] == "sqlite:///results/mlflow.db"
    artifacts = tmp_path / "results" / "mlflow-artifacts"
    assert run.info.artifact_uri.startswith(artifacts.as_uri())
    assert (Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoint.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no ./mlruns, no ./mlartifacts


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URIs :func:`tracking.client` is asked for; a sqlite store is not created (seconds of MLflow set-up),
    a server is asked for real."""
    asked: list[str] = []
    real = tracking.client

    def client(uri: str) -> Any:
        asked.append(uri)
        return f"client of {uri}" if uri.startswith("sqlite:") else real(uri)

    monkeypatch.setattr(tracking, "client", client)
    return asked


def test_the_mode_picks_the_store(clients: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    server = "http://mlflow.example.org:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    folder = Path("results/models/r")
    offline = tracking.offline_uri(folder)
    assert offline == f"sqlite:///{paths.offline_store('r')}" == "sqlite:///results/models/r/mlflow/mlflow.db"
    assert tracking.open_store("offline", None, folder)[0] == offline
    assert tracking.open_store("offline", None, folder, recorded=server)[0] == offline  # no server from a node
    assert tracking.open_store("online", "sqlite:///x.db", folder)[0] == "sqlite:///x.db"
    # a resumed run continues in the store its state was logged to, whatever the mode now
    assert tracking.open_store("online", None, folder, recorded=offline)[0] == offline
    assert tracking.open_store("fallback", None, folder, recorded=offline)[0] == offline
    assert clients == [offline, offline, "sqlite:///x.db", offline, offline]  # the server was never asked


def test_fallback_goes_offline_at_once_with_one_line(
    clients: list[str], closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Path("results/models/r")
    began = time.monotonic()
    uri, _ = tracking.open_store("fallback", f"http://bob:{SECRET}@127.0.0.1:{closed_port}", folder)
    assert time.monotonic() - began < 15
    assert uri == tracking.offline_uri(folder) and clients[-1] == uri
    [line] = [r.getMessage() for r in caplog.records if r.name == "wxpipe.tracking"]
    assert line.startswith(f"MLflow tracking server http://127.0.0.1:{closed_port}: cannot connect")
    assert line.endswith(f"logging offline to {uri}") and SECRET not in line and "\n" not in line


def test_fallback_stays_online_when_the_server_answers_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refusing(uri: str) -> Any:
        raise WxpipeError(f"MLflow tracking server {uri}: answered with an error: 403")

    monkeypatch.setattr(tracking, "client", refusing)
    with pytest.raises(WxpipeError, match="403"):  # a refusal is no reason to hide the run in an offline store
        tracking.open_store("fallback", "http://mlflow.example.org", Path("m"))


def test_an_old_state_without_a_store_resumes_where_the_uri_resolves() -> None:
    old = {"name": "r", "run_id": "id", "experiment_id": "0"}
    assert RunInfo.from_dict(old) == RunInfo("r", "id", "0", None)
    info = RunInfo("r", "id", "0", "sqlite:///results/models/r/mlflow/mlflow.db")
    assert RunInfo.from_dict(info.to_dict()) == info


def test_artefacts_live_in_the_store_folder() -> None:
    offline = Path(paths.offline_store("r"))
    assert tracking.artifact_root(offline) == offline.resolve().parent / "artifacts"
    default = tracking.sqlite_path(tracking.DEFAULT_URI)
    assert default is not None and tracking.artifact_root(default) == Path("results/mlflow-artifacts").resolve()


def test_sqlite_stores_and_file_stores_are_told_apart(tmp_path: Path) -> None:
    db = tmp_path / "run" / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    sqlite3.connect(db).execute("create table t (x)").connection.close()
    for given in (db, db.parent):  # the database, or training's store folder holding it
        store = mlflow_sync.find_store(given)
        assert (store.path, store.uri, store.file_store) == (db, f"sqlite:///{db}", False)
    assert store.record == db.parent / "synced.json"
    mlruns = tmp_path / "anemoi" / "mlruns"
    (mlruns / "0").mkdir(parents=True)
    (mlruns / "0" / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n")
    for given in (mlruns, mlruns.parent):  # the file store, or the folder anemoi-training writes it in
        store = mlflow_sync.find_store(given)
        assert (store.path, store.uri, store.file_store) == (mlruns, mlruns.as_uri(), True)
    assert store.record == tmp_path / "anemoi" / "synced.json"
    (tmp_path / "notes.txt").write_text("not a store")
    (tmp_path / "empty").mkdir()
    for wrong in (tmp_path / "notes.txt", tmp_path / "empty"):
        with pytest.raises(WxpipeError, match="not an MLflow store"):
            mlflow_sync.find_store(wrong)


def test_a_synced_run_is_followed_to_its_copy(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking.synced(uri, "a") == (uri, "a")
    copy = {"run_id": "b", "tracking_uri": "http://mlflow.example.org"}
    (tmp_path / tracking.SYNCED).write_text(json.dumps({"runs": {"a": copy}}))
    assert tracking.synced(uri, "a") == ("http://mlflow.example.org", "b")
    assert tracking.synced(uri, "other") == (uri, "other")
    assert tracking.synced("http://mlflow.example.org", "a") == ("http://mlflow.example.org", "a")


def test_the_train_target_waits_for_the_syncs_of_offline_runs() -> None:
    run = {"dataset": "d", "train": {"start": "2020-01-01", "end": "2020-01-02"}}
    run |= {"validation": {"start": "2020-01-03", "end": "2020-01-04"}}
    modes = {"on": {}, "off": {"mode": "offline"}, "fb": {"mode": "fallback"}}
    training = {k: {**run, "mlflow": m} for k, m in modes.items()}
    period = {"start": "2020-01-05", "end": "2020-01-06"}
    cfg = Config.model_validate(
        {"datasets": {"d": {"recipe": "r.yaml"}}, "training": training, "evaluation": {"period": period}}
    )
    curves = [paths.loss(r, "png") for r in training]
    assert smk.stage_waits(cfg, "train") == [*curves, *(paths.marker("mlflow-sync", r) for r in ("off", "fb"))]
    assert smk.stage_waits(cfg, "predict") == []
    assert paths.marker("mlflow-sync", "off") == "results/lineage/.pending/mlflow-sync/off.done"


def test_an_unreachable_destination_fails_in_one_line_and_marks_nothing(tmp_path: Path, closed_port: int) -> None:
    db = tmp_path / "mlflow.db"
    sqlite3.connect(db).execute("create table t (x)").connection.close()
    with pytest.raises(WxpipeError, match=f"^MLflow tracking server http://127.0.0.1:{closed_port}: cannot connect"):
        mlflow_sync.sync(mlflow_sync.find_store(db), f"http://127.0.0.1:{closed_port}")
    with pytest.raises(WxpipeError, match="MLFLOW_TRACKING_PASSWORD") as caught:
        mlflow_sync.sync(mlflow_sync.find_store(db), f"https://bob:{SECRET}@mlflow.example.org")
    assert SECRET not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
