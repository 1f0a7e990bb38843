"""Evaluation in MLflow: a run of its own, linked to the training run and never writing to it; offline beside
the scores; and no scores.json in place unless the scores reached MLflow."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wxpipe import paths, smk, tracking
from wxpipe.config import Config, EvaluationConfig
from wxpipe.errors import WxpipeError
from wxpipe.evaluate import OUTPUTS, evaluate
from wxpipe.predict import predict


@pytest.fixture(scope="module")
def forecasts(trained: Any, evaluation_config: EvaluationConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate-mlflow") / "forecasts.zarr"
    predict(trained.dataset, trained.result.checkpoint, evaluation_config, out)
    return out


def _config(base: EvaluationConfig, **mlflow: Any) -> EvaluationConfig:
    return EvaluationConfig.model_validate({**base.model_dump(mode="json"), "mlflow": mlflow})


def _snapshot(client: Any, run_id: str) -> tuple[Any, ...]:
    run = client.get_run(run_id)
    history = {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in run.data.metrics}
    return run.data.tags, run.data.params, history, run.info.status, run.info.end_time


def test_its_own_run_linked_to_the_training_run_which_is_untouched(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = trained.cfg.mlflow.tracking_uri
    client = MlflowClient(uri)
    before = _snapshot(client, trained.result.run_id)
    cfg = _config(evaluation_config, tracking_uri=uri, experiment="unit-evaluation")
    out = tmp_path / "r1"
    scores = evaluate(trained.dataset, forecasts, cfg, out, {"lineage.predict": "p1"})
    assert _snapshot(client, trained.result.run_id) == before

    run = client.get_run(scores["mlflow"]["run_id"])
    assert json.loads((out / "scores.json").read_text())["mlflow"] == scores["mlflow"]
    assert run.info.run_name == "r1-evaluation" and run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "unit-evaluation"
    tags = run.data.tags
    assert tags[tracking.TRAINING_RUN] == tags[tracking.PARENT] == trained.result.run_id
    assert tags[tracking.TRAINING_URI] == uri
    assert tags["wxpipe.dataset_uuid"] == trained.dataset.uuid and tags["lineage.predict"] == "p1"
    assert tags["mlflow.source.name"] == "wxpipe evaluate"
    params = run.data.params
    assert params["leads_steps"] == "1,2,4" and params["leads_hours"] == "6,12,24"
    assert params["forecasts"] == str(forecasts) and params["period.start"] == scores["period"]["start"]
    assert run.data.metrics["n_forecasts"] == scores["n_forecasts"]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == sorted(OUTPUTS)


def test_offline_logs_beside_the_scores_with_no_parent_in_another_store(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "r2"
    scores = evaluate(trained.dataset, forecasts, _config(evaluation_config, mode="offline"), out, {})
    store = out / "mlflow" / "mlflow.db"
    assert scores["mlflow"]["tracking_uri"] == tracking.offline_uri(out) == f"sqlite:///{store}"
    tags = MlflowClient(f"sqlite:///{store}").get_run(scores["mlflow"]["run_id"]).data.tags
    assert tags[tracking.TRAINING_RUN] == trained.result.run_id and tracking.PARENT not in tags
    assert sorted(p.name for p in out.iterdir()) == sorted(["mlflow", *OUTPUTS])


def test_an_unreachable_server_fails_before_scoring_and_leaves_no_scores(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "r3"
    out.mkdir()
    (out / "scores.json").write_text("{}")  # an older evaluation's
    with pytest.raises(WxpipeError, match=f"MLflow tracking server {closed}: cannot connect"):
        evaluate(trained.dataset, forecasts, _config(evaluation_config, tracking_uri=closed), out, {})
    assert (out / "scores.json").read_text() == "{}"  # failed before scoring: nothing touched


def test_a_failed_logging_leaves_no_scores_in_place(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the server went away")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "r4"
    out.mkdir()
    (out / "scores.json").write_text("{}")
    monkeypatch.setattr(MlflowClient, "log_artifact", fail)
    with pytest.raises(RuntimeError, match="went away"):
        evaluate(trained.dataset, forecasts, _config(evaluation_config, tracking_uri=uri), out, {})
    assert sorted(p.name for p in out.iterdir()) == [".incoming"]  # no scores.json, not even the older one
    [run] = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("wxpipe").experiment_id])
    assert run.info.status == "FAILED"


def test_the_evaluate_target_waits_for_the_sync_of_offline_evaluations() -> None:
    run = {"dataset": "d", "train": {"start": "2020-01-01", "end": "2020-01-02"}}
    run |= {"validation": {"start": "2020-01-03", "end": "2020-01-04"}}
    for mode, waits in (("offline", True), ("fallback", True), ("online", False)):
        evaluation = {"period": {"start": "2020-01-05", "end": "2020-01-06"}, "mlflow": {"mode": mode}}
        cfg = Config.model_validate(
            {"datasets": {"d": {"recipe": "r.yaml"}}, "training": {"a": run, "b": run}, "evaluation": evaluation}
        )
        expected = [paths.marker("mlflow-sync-evaluation", r) for r in ("a", "b")] if waits else []
        assert smk.stage_waits(cfg, "evaluate") == expected
        assert smk.stage_waits(cfg, "train") == [paths.loss(r, "png") for r in ("a", "b")]  # no training syncs
    assert paths.evaluation_store("r") == "results/evaluation/r/mlflow/mlflow.db"
    assert tracking.offline_uri(Path(paths.evaluation("r"))) == f"sqlite:///{paths.evaluation_store('r')}"


def test_same_store() -> None:
    assert tracking.same_store("sqlite:///results/mlflow.db", f"sqlite:///{Path.cwd()}/results/mlflow.db")
    assert not tracking.same_store("sqlite:///results/mlflow.db", "sqlite:///results/models/r/mlflow/mlflow.db")
    assert tracking.same_store("http://127.0.0.1:5000/", "http://127.0.0.1:5000")
    assert not tracking.same_store("http://127.0.0.1:5000", "sqlite:///results/mlflow.db")


def test_the_link_follows_a_synced_training_run_to_its_copy(tmp_path: Path) -> None:
    class Server:
        def get_run(self, run_id: str) -> Any:
            return SimpleNamespace(info=SimpleNamespace(lifecycle_stage="active"))

    store = tmp_path / "models" / "r" / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True)
    url = "http://127.0.0.1:5000"
    runs = {"local": {"run_id": "copy", "tracking_uri": url}}
    (store.parent / tracking.SYNCED).write_text(json.dumps({"runs": runs}))
    offline = f"sqlite:///{store}"
    link = tracking.training_link(Server(), url, "local", offline)
    assert link == {tracking.TRAINING_RUN: "copy", tracking.TRAINING_URI: url, tracking.PARENT: "copy"}
    elsewhere = tracking.training_link(Server(), "sqlite:///other.db", "local", offline)
    assert elsewhere == {tracking.TRAINING_RUN: "copy", tracking.TRAINING_URI: url}
    assert tracking.training_link(Server(), url, "unsynced", offline)[tracking.TRAINING_URI] == offline
    assert tracking.training_link(Server(), url, None, None) == {}
