"""Evaluation against a real ``mlflow server`` on 127.0.0.1: a run trained there is evaluated in a run of
its own, nested under the training run, which it leaves as it was; an
offline evaluation reaches the server by ``wxpipe mlflow-sync`` and nests there too; and with the server
unreachable, online evaluation fails in seconds, in one line, leaving no scores and no record.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from wxpipe import tracking
from wxpipe.cli import main
from wxpipe.config import EvaluationConfig, params_of
from wxpipe.evaluate import OUTPUTS
from wxpipe.predict import predict
from wxpipe.train import train

pytestmark = pytest.mark.integration

CHECKPOINT = Path("results/models/evaluated/checkpoint.pt")  # a name of its own: MLflow caches stores by URI


def _snapshot(client: Any, run_id: str) -> tuple[Any, ...]:
    run = client.get_run(run_id)
    history = {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in run.data.metrics}
    return run.data.tags, run.data.params, history, run.info.status, run.info.end_time


def _evaluate(dataset: Any, forecasts: Path, cfg: Any, run: str, **mlflow: Any) -> int:
    settings = {**params_of(cfg), "mlflow": {"experiment": "evaluated", **mlflow}}
    out, record = Path(f"results/evaluation/{run}"), Path(f"results/lineage/.pending/evaluate/{run}.json")
    command = ["evaluate", str(dataset.path), str(forecasts), str(out), "--settings", json.dumps(settings)]
    return main([*command, "--lineage", str(record)])


def test_evaluation_runs_are_linked_to_the_training_run_and_never_change_it(
    unit_helpers: ModuleType,
    mlflow_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    dataset = unit_helpers._make_dataset(Path("results/datasets/tiny.zarr"))
    url = mlflow_server.ready()
    mlflow = {"tracking_uri": url, "experiment": "evaluated"}
    trained = train(dataset, unit_helpers._training_config(tmp_path, steps=10, mlflow=mlflow), CHECKPOINT, "ev", {})
    server = MlflowClient(url)
    experiment = server.get_experiment_by_name("evaluated")
    assert experiment is not None
    training = server.get_run(trained.run_id)
    before = _snapshot(server, training.info.run_id)
    period = {
        "start": (unit_helpers.START + 40 * unit_helpers.STEP).isoformat(),
        "end": (unit_helpers.START + 59 * unit_helpers.STEP).isoformat(),
    }
    cfg = EvaluationConfig.model_validate({"period": period, "leads": [1, 2, 4]})
    forecasts = Path("results/forecasts/ev.zarr")
    predict(dataset, CHECKPOINT, cfg, forecasts)

    assert _evaluate(dataset, forecasts, cfg, "online", tracking_uri=url) == 0
    scores = json.loads(Path("results/evaluation/online/scores.json").read_text())
    online = server.get_run(scores["mlflow"]["run_id"])
    assert online.info.run_name == "online-evaluation" and online.info.status == "FINISHED"
    link = {tracking.TRAINING_RUN: training.info.run_id, tracking.TRAINING_URI: url}
    assert link.items() <= online.data.tags.items() and online.data.tags[tracking.PARENT] == training.info.run_id
    assert online.data.metrics["n_forecasts"] == scores["n_forecasts"]
    record = json.loads(Path("results/lineage/.pending/evaluate/online.json").read_text())
    assert record["mlflow"] == scores["mlflow"]

    assert _evaluate(dataset, forecasts, cfg, "offline", tracking_uri=url, mode="offline") == 0
    store = Path(tracking.offline_uri(Path("results/evaluation/offline")).removeprefix("sqlite:///"))
    offline = json.loads(Path("results/evaluation/offline/scores.json").read_text())["mlflow"]
    assert offline["tracking_uri"] == f"sqlite:///{store}" and store.is_file()
    assert tracking.PARENT not in MlflowClient(offline["tracking_uri"]).get_run(offline["run_id"]).data.tags
    assert main(["mlflow-sync", str(store.parent), "--to", url]) == 0
    [copy] = server.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'offline-evaluation'")
    assert copy.data.tags[tracking.PARENT] == training.info.run_id
    assert link.items() <= copy.data.tags.items()
    assert sorted(a.path for a in server.list_artifacts(copy.info.run_id)) == sorted(OUTPUTS)

    assert _snapshot(server, training.info.run_id) == before

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    capsys.readouterr()
    began = time.monotonic()
    assert _evaluate(dataset, forecasts, cfg, "closed", tracking_uri=closed) == 1
    assert time.monotonic() - began < 15
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"wxpipe evaluate: error: MLflow tracking server {closed}: cannot connect")
    assert not Path("results/evaluation/closed/scores.json").exists()
    assert not Path("results/lineage/.pending/evaluate/closed.json").exists()
