"""MLflow as users expect it: where a run is logged, a server that does not answer, and what each run holds.

The run against a real ``mlflow server`` with credentials in the environment is tests/integration/test_mlflow.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from wxpipe import tracking
from wxpipe.config import TrainingConfig
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError, validation_error
from wxpipe.provenance import git_commit
from wxpipe.train import load_checkpoint, train

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
