"""Evaluation: a forecasts file scored against the dataset and against persistence, WeatherBench2 style.

For each forecast in the period whose verifying dates are all present, the area-weighted mean
squared error (physical units; of the ensemble mean when there are members) at each lead is
averaged over the grid, then over initial dates, and only then square-rooted. Persistence, x(t) as
the forecast of x(t + lead), is scored on exactly the same dates so the two are comparable.

No model is loaded here (the predict stage made the forecasts, in the engine's environment), so
this module imports neither torch nor any engine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import tracking
from .config import EvaluationConfig
from .dataset import Dataset
from .errors import WxpipeError
from .forecasts import Forecasts, check_dataset, initial_dates, lead_hours, lead_steps, open_forecasts
from .fsutil import atomic_write_text
from .grid import area_weights, grid_fingerprint
from .guards import check_trained_on
from .model import ModelMetadata
from .plots import scorecard
from .progress import progress
from .samples import read_batch
from .timeutil import iso

log = logging.getLogger(__name__)

BATCH = 8  # initial dates scored together
KINDS = ("model", "persistence")
OUTPUTS = ("scorecard.png", "scores.json")  # moved into place in this order: scores.json says "complete"
STAGING = ".incoming"  # in the evaluation folder: the outputs until MLflow holds them


def weighted_mse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., values, variables) -> (..., variables): squared error averaged over the grid with ``weights``."""
    err = (np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)) ** 2
    w = np.asarray(weights, dtype=np.float64)
    mse: np.ndarray = np.einsum("...nv,n->...v", err, w) / w.sum()
    return mse


def weighted_rmse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(dates, values, variables) -> (variables,): the root of the date-mean of :func:`weighted_mse`."""
    rmse: np.ndarray = np.sqrt(weighted_mse(forecast, truth, weights).mean(axis=0))
    return rmse


def evaluate(
    dataset: Dataset,
    forecasts: str | Path,
    cfg: EvaluationConfig,
    out_dir: str | Path,
    tags: Mapping[str, str],
    run: str | None = None,
) -> dict[str, Any]:
    """Score the forecasts file on ``cfg.period``; log the scores to an MLflow run of their own, ``<run>-evaluation``
    (:func:`_log_to_mlflow`), and only then write scores.json and scorecard.png. ``run`` is the training run's
    name, for ``cfg.other_datasets`` (:func:`wxpipe.guards.check_trained_on`)."""
    fc, out_dir = open_forecasts(forecasts), Path(out_dir)
    header = fc.header
    grid = grid_fingerprint(header.latitudes, header.longitudes)
    check_dataset(fc.path, header.variables, grid, header.frequency, dataset)
    other = check_trained_on(header.model.dataset_uuid, fc.path, dataset, cfg.other_datasets, run)
    if header.dataset_uuid != dataset.uuid:
        log.warning("%s: made from dataset %s, scored against %s", fc.path, header.dataset_uuid, dataset.uuid)
    leads = lead_steps(cfg.leads)
    missing = sorted(set(leads) - set(header.leads))
    if missing:
        raise WxpipeError(f"{fc.path}: no forecasts at leads {missing} (it has {header.leads})")
    starts = _scored_starts(dataset, fc, cfg, leads)
    store = tracking.open_store(cfg.mlflow.mode, cfg.mlflow.tracking_uri, out_dir)  # an unreachable server: now
    log.info("%s: scoring %d forecasts at leads %s steps", fc.path, len(starts), leads)
    sums, used = _accumulate(dataset, fc, starts, leads)
    if not used:
        raise WxpipeError(f"{dataset.path}: every candidate forecast had NaN values")
    scores = _scores(dataset, header.model, cfg, leads, sums, used)
    scores["checkpoint"] = header.checkpoint
    scores["run_id"] = header.model.run_id
    if other is not None:
        scores["other_dataset"] = other
    name = f"{run or out_dir.resolve().name}-evaluation"
    _publish(out_dir, lambda staging: _log_to_mlflow(store, fc, cfg, scores, staging, name, tags))
    return scores


def _scored_starts(dataset: Dataset, fc: Forecasts, cfg: EvaluationConfig, leads: list[int]) -> np.ndarray:
    """Dataset indices of the forecasts to score: in the period, with every verifying date present."""
    candidates = initial_dates(dataset, cfg.period, leads, fc.header.model.input_steps)
    starts = candidates[np.isin(dataset.dates[candidates], fc.init_dates)]
    if len(starts) == 0:
        raise WxpipeError(
            f"{fc.path}: no forecast from an initial date in {cfg.period.start} .. {cfg.period.end} "
            f"with all of its verifying dates (+{leads[-1]} steps) present in {dataset.path}"
        )
    return starts


def _accumulate(
    dataset: Dataset, fc: Forecasts, starts: np.ndarray, leads: list[int]
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Per kind, the sum over forecasts of the weighted MSE (leads, variables); and the starts that were scored."""
    weights = area_weights(dataset.latitudes)
    row_of = {date: i for i, date in enumerate(fc.init_dates.tolist())}
    lead_index = np.array([fc.header.leads.index(lead) for lead in leads], dtype=np.int64)
    sums = {kind: np.zeros((len(leads), len(dataset.variables))) for kind in KINDS}
    used: list[int] = []
    bar = progress(total=len(starts), desc="evaluate", unit="forecast")
    for lo in range(0, len(starts), BATCH):
        batch = read_batch(dataset, starts[lo : lo + BATCH], (0, *leads))
        bar.update(len(starts[lo : lo + BATCH]))
        if len(batch.starts) == 0:
            continue
        rows = np.array([row_of[d] for d in batch.dates.astype("datetime64[s]").tolist()], dtype=np.int64)
        forecast = _ensemble_mean(fc.forecast.get_orthogonal_selection((rows, lead_index)))
        for j in range(len(leads)):
            truth = batch.fields[:, j + 1]
            sums["model"][j] += weighted_mse(forecast[:, j], truth, weights).sum(axis=0)
            sums["persistence"][j] += weighted_mse(batch.fields[:, 0], truth, weights).sum(axis=0)
        used.extend(int(s) for s in batch.starts)
    bar.close()
    return sums, used


def _ensemble_mean(block: Any) -> np.ndarray:
    """(batch, leads, members, variables, values) -> (batch, leads, values, variables), as the truth is laid out."""
    values = np.asarray(block)
    mean = values[:, :, 0] if values.shape[2] == 1 else values.mean(axis=2, dtype=np.float64)
    return mean.transpose(0, 1, 3, 2)


def _scores(
    dataset: Dataset,
    model: ModelMetadata,
    cfg: EvaluationConfig,
    leads: list[int],
    sums: Mapping[str, np.ndarray],
    used: Sequence[int],
) -> dict[str, Any]:
    """The scores.json record (the checkpoint and run id are added by the caller)."""
    rmse = {k: np.sqrt(v / len(used)) for k, v in sums.items()}
    return {
        "variables": list(dataset.variables),
        "leads_hours": lead_hours(leads, dataset.frequency),
        "leads_steps": leads,
        "rmse": {
            k: {var: [float(x) for x in v[:, i]] for i, var in enumerate(dataset.variables)} for k, v in rmse.items()
        },
        "n_forecasts": len(used),
        "period": {
            "start": iso(cfg.period.start),
            "end": iso(cfg.period.end),
            "first_init": iso(dataset.dates[used[0]]),
            "last_init": iso(dataset.dates[used[-1]]),
        },
        "dataset_uuid": dataset.uuid,
        "overlap": list(cfg.overlap),
    }


def metric_name(kind: str, variable: str, hours: float) -> str:
    """``rmse_2t_6h`` / ``persistence_rmse_2t_6h``: one MLflow metric per variable and lead."""
    prefix = "rmse" if kind == "model" else f"{kind}_rmse"
    return f"{prefix}_{variable}_{hours:g}h"


def _publish(out_dir: Path, write: Callable[[Path], None]) -> None:
    """``write`` the outputs to a staging folder (and log them: :func:`_log_to_mlflow`), and only then move them
    into ``out_dir``: an evaluation that fails or is killed leaves no scores.json there, not even an older one."""
    staging = out_dir / STAGING
    for name in OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    for name in OUTPUTS:
        os.replace(staging / name, out_dir / name)
    staging.rmdir()
    log.info("wrote %s and %s", *(out_dir / name for name in reversed(OUTPUTS)))


def _log_to_mlflow(
    store: tuple[str, Any],
    fc: Forecasts,
    cfg: EvaluationConfig,
    scores: dict[str, Any],
    folder: Path,
    name: str,
    tags: Mapping[str, str],
) -> None:
    """Log the scores as an evaluation run of their own, linked to the model's training run but never writing
    to it (:func:`wxpipe.tracking.training_link`); scores.json names the run and goes with it as an artefact."""
    uri, client = store
    model = fc.header.model
    link = tracking.training_link(client, uri, model.run_id, model.tracking_uri)
    if not link:
        log.warning("%s: the model names no MLflow run: the evaluation run is linked to none", fc.path)
    experiment = tracking.experiment_id(client, cfg.mlflow.experiment, uri)
    source = tracking.source_tags("wxpipe evaluate")
    run_tags = {"wxpipe.stage": "evaluate", "wxpipe.dataset_uuid": scores["dataset_uuid"], **source, **link, **tags}
    with tracking.new_run(client, experiment, name, run_tags) as run_id:
        log.info("MLflow run %s (%s) in experiment %s at %s", name, run_id, experiment, tracking.redact(uri))
        scores["mlflow"] = {"run_id": run_id, "experiment_id": experiment, "tracking_uri": tracking.redact(uri)}
        atomic_write_text(folder / "scores.json", json.dumps(scores, indent=2) + "\n")
        scorecard(scores, folder / "scorecard.png")
        tracking.log_params(client, run_id, _params(fc, scores))
        tracking.log_metrics(client, run_id, _metrics(scores))
        for output in OUTPUTS:
            client.log_artifact(run_id, str(folder / output))


def _params(fc: Forecasts, scores: Mapping[str, Any]) -> dict[str, str]:
    return {
        "forecasts": str(fc.path),
        "checkpoint": str(scores["checkpoint"]),
        "leads_steps": ",".join(str(x) for x in scores["leads_steps"]),
        "leads_hours": ",".join(f"{x:g}" for x in scores["leads_hours"]),
        "period.start": scores["period"]["start"],
        "period.end": scores["period"]["end"],
        "dataset_uuid": scores["dataset_uuid"],
    }


def _metrics(scores: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """One metric per kind, variable and lead (:func:`metric_name`), and the number of forecasts scored."""
    metrics = [
        (metric_name(kind, var, hours), values[j], 0)
        for kind, per_var in scores["rmse"].items()
        for var, values in per_var.items()
        for j, hours in enumerate(scores["leads_hours"])
    ]
    metrics.append(("n_forecasts", float(scores["n_forecasts"]), 0))
    return metrics
