"""Evaluation: area weights, weighted RMSE against an independent computation, and the scored run."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import zarr

from wxpipe.config import EvaluationConfig
from wxpipe.dataset import open_dataset
from wxpipe.errors import WxpipeError
from wxpipe.evaluate import OUTPUTS, evaluate
from wxpipe.grid import area_weights
from wxpipe.guards import check_trained_on
from wxpipe.predict import predict
from wxpipe.scores import aggregate, per_date


def test_area_weights_mean_one_and_equator_heavier(octahedral_grid: Callable[[int], Any]) -> None:
    lat, _ = octahedral_grid(8)
    w = area_weights(lat)
    assert w.shape == lat.shape
    np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-12)
    equator = np.abs(lat) == np.abs(lat).min()
    polar = np.abs(lat) == np.abs(lat).max()
    assert w[equator].min() > w[polar].max()  # per point, despite the equator's longer rows
    assert w[equator].sum() > w[polar].sum()  # and per row
    # one row's points share its weight equally
    assert np.ptp(w[equator]) == 0


def test_area_weights_on_a_regular_grid_are_cos_latitude() -> None:
    lats = np.array([60.0, 30.0, 0.0, -30.0, -60.0])
    lat = np.repeat(lats, 8)
    w = area_weights(lat)
    c = np.cos(np.deg2rad(lat))
    np.testing.assert_allclose(w, c / c.mean())


def _rmse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(dates, values, variables) -> (variables,): the global RMSE the evaluation computes."""
    stats = per_date(forecast[:, None], truth, weights, np.ones((1, len(weights)), dtype=bool))
    return aggregate(stats, 1)["rmse"][0]


def test_perfect_forecast_scores_zero() -> None:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((4, 30, 3))
    w = area_weights(np.linspace(-80, 80, 30))
    np.testing.assert_array_equal(_rmse(truth, truth, w), np.zeros(3))


def test_rmse_matches_a_hand_computation() -> None:
    # a reduced grid: 2 points at 60N, 4 on the equator, 2 at 60S
    lat = np.array([60.0, 60.0, 0.0, 0.0, 0.0, 0.0, -60.0, -60.0])
    rng = np.random.default_rng(3)
    forecast = rng.standard_normal((3, 8, 2))
    truth = rng.standard_normal((3, 8, 2))

    raw = [np.cos(np.radians(x)) / list(lat).count(x) for x in lat]  # cos(lat) / points in the row
    mean_raw = sum(raw) / len(raw)
    weight = [r / mean_raw for r in raw]
    expected = []
    for v in range(2):
        per_date = []
        for t in range(3):
            per_date.append(sum(weight[n] * (forecast[t, n, v] - truth[t, n, v]) ** 2 for n in range(8)) / 8)
        expected.append((sum(per_date) / 3) ** 0.5)  # root after the mean over dates

    np.testing.assert_allclose(area_weights(lat), weight, rtol=1e-12)
    np.testing.assert_allclose(_rmse(forecast, truth, area_weights(lat)), expected, rtol=1e-12)


def test_evaluation_loads_no_model_code() -> None:
    """Scoring runs where no engine is installed: importing it imports neither torch nor the training engine."""
    code = (
        "import sys, wxpipe.evaluate\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'wxpipe.train')))\n"
        "assert not bad, bad"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def forecasts(trained: Any, evaluation_config: EvaluationConfig) -> Path:
    out = trained.tmp / "forecasts.zarr"
    predict(trained.dataset, trained.result.checkpoint, evaluation_config, out)
    return out


@pytest.fixture(scope="module")
def scored(trained: Any, forecasts: Path, evaluation_config: EvaluationConfig) -> dict[str, Any]:
    out = trained.tmp / "evaluation"
    cfg = evaluation_config.model_copy(update={"mlflow": trained.cfg.mlflow})  # training's store
    scores = evaluate(trained.dataset, forecasts, cfg, out, {"wxpipe.eval_lineage": "e1"})
    return {"scores": scores, "out": out}


def test_scores_cover_every_variable_and_lead(scored: dict[str, Any], trained: Any) -> None:
    scores = scored["scores"]
    on_disk = json.loads((scored["out"] / "scores.json").read_text())
    assert on_disk == scores
    variables = trained.dataset.variables
    assert scores["variables"] == variables
    assert scores["leads_steps"] == [1, 2, 4]
    assert scores["leads_hours"] == [6, 12, 24]
    assert scores["forecasts"] == {"evaluation": "model", "persistence": "persistence"}
    assert list(scores["regions"]) == ["global", "n-extratropics", "s-extratropics", "tropics", "europe"]
    for kind in ("evaluation", "persistence"):
        for region in scores["regions"]:
            assert set(scores["scores"]["rmse"][kind][region]) == set(variables)
            for v in variables:
                values = scores["scores"]["rmse"][kind][region][v]
                assert len(values) == 3 and all(x is not None and x > 0 for x in values)
    assert scores["dataset_uuid"] == trained.dataset.uuid
    assert scores["checkpoint"] == str(trained.result.checkpoint)


def test_counts_only_forecasts_with_every_date_present(
    scored: dict[str, Any], trained: Any, evaluation_config: EvaluationConfig
) -> None:
    ds = trained.dataset
    missing = {ds.index_of(m) for m in ds.missing_dates}
    first = ds.index_of(evaluation_config.period.start)
    last = ds.index_of(evaluation_config.period.end)
    expected = [t for t in range(first, last + 1) if t + 4 < len(ds.dates) and not {t, t + 1, t + 2, t + 4} & missing]
    assert scored["scores"]["n_forecasts"] == len(expected)


def test_model_beats_persistence_on_travelling_waves(scored: dict[str, Any]) -> None:
    rmse = scored["scores"]["scores"]["rmse"]
    model = np.array(list(rmse["evaluation"]["global"].values()))
    persistence = np.array(list(rmse["persistence"]["global"].values()))
    skill = 1 - model / persistence
    assert (skill[:, 0] > 0.3).all(), rmse  # lead 1 step: clearly better than persistence


def test_scorecard_and_mlflow_record(scored: dict[str, Any], trained: Any) -> None:
    png = scored["out"] / "scorecard.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in scored["out"].iterdir()) == sorted(OUTPUTS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(trained.cfg.mlflow.tracking_uri)
    scores = scored["scores"]
    run = client.get_run(scores["mlflow"]["run_id"])  # the evaluation's own run (tests/unit/test_evaluate_mlflow.py)
    assert run.info.run_id != trained.result.run_id and run.info.status == "FINISHED"
    rmse = scores["scores"]["rmse"]
    for v in scores["variables"]:
        assert run.data.metrics[f"rmse_{v}_6h"] == pytest.approx(rmse["evaluation"]["global"][v][0])
        assert run.data.metrics[f"persistence_rmse_{v}_24h"] == pytest.approx(rmse["persistence"]["global"][v][2])
        assert run.data.metrics[f"rmse_{v}_6h_europe"] == pytest.approx(rmse["evaluation"]["europe"][v][0])
    assert run.data.tags["wxpipe.eval_lineage"] == "e1"
    assert run.data.tags["mlflow.parentRunId"] == trained.result.run_id
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == sorted(OUTPUTS)


def test_refuses_a_period_without_complete_forecasts(trained: Any, forecasts: Path, tmp_path: Path) -> None:
    last = str(trained.dataset.dates[-1])
    cfg = EvaluationConfig.model_validate({"period": {"start": last, "end": last}, "leads": [1]})
    with pytest.raises(WxpipeError, match="no initial date"):
        predict(trained.dataset, trained.result.checkpoint, cfg, tmp_path / "f.zarr")
    with pytest.raises(WxpipeError, match="no initial date"):
        evaluate(trained.dataset, forecasts, cfg, tmp_path, {})
    assert sorted(tmp_path.iterdir()) == []


def test_refuses_a_dataset_on_another_grid(
    trained: Any, forecasts: Path, make_dataset: Callable[..., Any], tmp_path: Path
) -> None:
    other = make_dataset(tmp_path / "other.zarr", grid=6, n_dates=12, missing=())
    cfg = EvaluationConfig.model_validate({"period": {"start": str(other.dates[0]), "end": str(other.dates[4])}})
    with pytest.raises(WxpipeError, match="another grid"):
        predict(other, trained.result.checkpoint, cfg, tmp_path / "f.zarr")
    with pytest.raises(WxpipeError, match="another grid"):
        evaluate(other, forecasts, cfg, tmp_path / "out", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.zarr"]


def test_refuses_leads_the_forecasts_lack(trained: Any, forecasts: Path, evaluation_config: EvaluationConfig) -> None:
    cfg = evaluation_config.model_copy(update={"leads": [1, 3]})
    with pytest.raises(WxpipeError, match=r"no forecasts at leads \[3\]"):
        evaluate(trained.dataset, forecasts, cfg, trained.tmp / "never", {})


def _relabelled(dataset: Any, dst: Path, uuid: str | None = None) -> Any:
    """A copy of the dataset's store; with ``uuid``, one that holds another dataset (same grid and variables)."""
    shutil.copytree(dataset.path, dst)
    if uuid is not None:
        zarr.open_group(str(dst), mode="r+").attrs["uuid"] = uuid
    return open_dataset(dst)


def test_a_checkpoint_is_scored_only_on_its_own_dataset(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    other = _relabelled(trained.dataset, tmp_path / "other.zarr", "other-uuid")
    own = trained.dataset.uuid
    checkpoint = trained.result.checkpoint
    with pytest.raises(WxpipeError) as err:
        predict(other, checkpoint, evaluation_config, tmp_path / "f.zarr", run="unit-run")
    assert f"{checkpoint}: trained on dataset {own}, but {other.path} holds dataset other-uuid" in str(err.value)
    assert "evaluation.other_datasets: {unit-run: other-uuid}" in str(err.value)
    with pytest.raises(WxpipeError, match=f"{forecasts}: trained on dataset {own}, but {other.path} holds dataset"):
        evaluate(other, forecasts, evaluation_config, tmp_path / "out", {})
    named = evaluation_config.model_copy(update={"other_datasets": {"another-run": "other-uuid"}})
    with pytest.raises(WxpipeError, match="holds dataset other-uuid"):
        evaluate(other, forecasts, named, tmp_path / "out", {}, run="unit-run")  # named for another run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.zarr"]


def test_a_copy_or_a_layout_is_the_models_dataset(trained: Any, tmp_path: Path) -> None:
    copy = _relabelled(trained.dataset, tmp_path / "copy.zarr")
    assert check_trained_on(trained.dataset.uuid, "m.ckpt", copy, {}, "unit-run") is None
    layout = SimpleNamespace(uuid="layout-uuid", source_uuid=trained.dataset.uuid, path=tmp_path / "l.zarr")
    assert check_trained_on(trained.dataset.uuid, "m.ckpt", layout, {}, None) is None  # type: ignore[arg-type]


def test_other_datasets_and_overlaps_are_recorded_with_the_scores(
    trained: Any, forecasts: Path, evaluation_config: EvaluationConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = _relabelled(trained.dataset, tmp_path / "other.zarr", "other-uuid")
    overlap = "evaluation.period 2020-01-11 .. 2020-01-15 overlaps training.unit-run.train 2020-01-01 .. 2020-01-12"
    cfg = evaluation_config.model_copy(update={"other_datasets": {"unit-run": "other-uuid"}, "overlap": [overlap]})
    with caplog.at_level(logging.WARNING):
        scores = evaluate(other, forecasts, cfg, tmp_path / "out", {}, run="unit-run")
    assert scores["other_dataset"] == {
        "run": "unit-run",
        "trained_on": trained.dataset.uuid,
        "scored_on": "other-uuid",
        "path": str(other.path),
        "allowed_by": "evaluation.other_datasets.unit-run",
    }
    assert scores["overlap"] == [overlap]
    assert json.loads((tmp_path / "out/scores.json").read_text()) == scores
    assert "as evaluation.other_datasets.unit-run says" in caplog.text
