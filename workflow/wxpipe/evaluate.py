"""Evaluation: autoregressive rollouts scored against persistence, WeatherBench2 style.

For each initial date in the period whose verifying dates are all present, the model is rolled
forward to the longest lead; at each lead the area-weighted mean squared error (physical units) is
averaged over the grid, then over initial dates, and only then square-rooted. Persistence, x(t) as
the forecast of x(t + lead), is scored on exactly the same dates so the two are comparable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import EvaluationConfig
from .dataset import Dataset
from .errors import WxpipeError
from .fsutil import atomic_write_text
from .plots import scorecard
from .progress import progress
from .timeutil import iso
from .train import tracking
from .train.data import read_batch, sample_starts
from .train.grid import area_weights, forcings, grid_fingerprint
from .train.loop import load_checkpoint
from .train.model import Forecaster

log = logging.getLogger(__name__)

BATCH = 8  # initial dates rolled out together


def weighted_mse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., values, variables) -> (..., variables): squared error averaged over the grid with ``weights``."""
    err = (np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)) ** 2
    w = np.asarray(weights, dtype=np.float64)
    return np.einsum("...nv,n->...v", err, w) / w.sum()


def weighted_rmse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(dates, values, variables) -> (variables,): the root of the date-mean of :func:`weighted_mse`."""
    return np.sqrt(weighted_mse(forecast, truth, weights).mean(axis=0))


def evaluate(
    dataset: Dataset, checkpoint: Path, cfg: EvaluationConfig, out_dir: Path, tags: dict[str, str]
) -> dict[str, Any]:
    """Score the checkpoint on ``cfg.period``; write scores.json and scorecard.png; log to its MLflow run."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    model, meta = load_checkpoint(checkpoint)
    _check_compatible(dataset, meta, checkpoint)
    leads = sorted(set(cfg.leads))
    if leads[0] < 1:
        raise WxpipeError(f"evaluation leads must be at least 1 step, got {cfg.leads}")
    starts = sample_starts(dataset, cfg.period, (0, *leads), whole=False)
    if len(starts) == 0:
        raise WxpipeError(
            f"{dataset.path}: no initial date in {cfg.period.start} .. {cfg.period.end} with all of "
            f"its verifying dates (+{leads[-1]} steps) present"
        )
    log.info("%s: scoring %d forecasts at leads %s steps", dataset.path, len(starts), leads)

    weights = area_weights(dataset.latitudes)
    sums = {
        "model": np.zeros((len(leads), len(dataset.variables))),
        "persistence": np.zeros((len(leads), len(dataset.variables))),
    }
    used: list[int] = []
    bar = progress(total=len(starts), desc="evaluate", unit="forecast")
    for lo in range(0, len(starts), BATCH):
        batch = read_batch(dataset, starts[lo : lo + BATCH], (0, *leads))
        bar.update(len(starts[lo : lo + BATCH]))
        if len(batch.starts) == 0:
            continue
        forecasts = rollout(model, batch.fields[:, 0], batch.dates, dataset, leads)
        for j in range(len(leads)):
            truth = batch.fields[:, j + 1]
            sums["model"][j] += weighted_mse(forecasts[:, j], truth, weights).sum(axis=0)
            sums["persistence"][j] += weighted_mse(batch.fields[:, 0], truth, weights).sum(axis=0)
        used.extend(int(s) for s in batch.starts)
    bar.close()
    if not used:
        raise WxpipeError(f"{dataset.path}: every candidate forecast had NaN values")

    step_hours = dataset.frequency.total_seconds() / 3600
    rmse = {k: np.sqrt(v / len(used)) for k, v in sums.items()}
    scores: dict[str, Any] = {
        "variables": list(dataset.variables),
        "leads_hours": [_number(lead * step_hours) for lead in leads],
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
        "checkpoint": str(checkpoint),
        "run_id": meta["run_id"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "scores.json", json.dumps(scores, indent=2) + "\n")
    card = scorecard(scores, out_dir / "scorecard.png")
    _log_to_mlflow(meta, scores, out_dir / "scores.json", card, tags)
    log.info("wrote %s and %s", out_dir / "scores.json", card)
    return scores


@torch.inference_mode()
def rollout(
    model: Forecaster, initial: np.ndarray, dates: np.ndarray, dataset: Dataset, leads: list[int]
) -> np.ndarray:
    """(batch, values, variables) at ``dates`` -> (batch, len(leads), values, variables) forecasts, physical units."""
    lat, lon = dataset.latitudes, dataset.longitudes
    step = np.timedelta64(int(dataset.frequency.total_seconds()), "s")
    x = model.normalise(torch.from_numpy(np.ascontiguousarray(initial, dtype=np.float32)))
    out = np.empty((len(initial), len(leads), *initial.shape[1:]), dtype=np.float32)
    wanted = {lead: j for j, lead in enumerate(leads)}
    for s in range(1, max(leads) + 1):
        valid = np.asarray(dates, dtype="datetime64[s]") + (s - 1) * step
        x = model(x, torch.from_numpy(forcings(valid, lat, lon)))
        if s in wanted:
            out[:, wanted[s]] = model.denormalise(x).numpy()
    return out


def _check_compatible(dataset: Dataset, meta: Mapping[str, Any], checkpoint: Path) -> None:
    """Refuse a dataset the model cannot read: other variables, grid or time step."""
    if list(meta["variables"]) != list(dataset.variables):
        raise WxpipeError(f"{checkpoint}: trained on variables {meta['variables']}, dataset has {dataset.variables}")
    if meta["grid"] != grid_fingerprint(dataset.latitudes, dataset.longitudes):
        raise WxpipeError(f"{checkpoint}: trained on another grid than {dataset.path}'s")
    if meta["frequency_seconds"] != int(dataset.frequency.total_seconds()):
        step = dt.timedelta(seconds=int(meta["frequency_seconds"]))
        raise WxpipeError(f"{checkpoint}: trained for steps of {step}, dataset has {dataset.frequency}")


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def metric_name(kind: str, variable: str, hours: float) -> str:
    """``rmse_2t_6h`` / ``persistence_rmse_2t_6h``: one MLflow metric per variable and lead."""
    prefix = "rmse" if kind == "model" else f"{kind}_rmse"
    return f"{prefix}_{variable}_{hours:g}h"


def _log_to_mlflow(
    meta: Mapping[str, Any], scores: Mapping[str, Any], scores_path: Path, card: Path, tags: Mapping[str, str]
) -> None:
    """Add the scores to the training run, so one MLflow run holds a model and how good it is."""
    from mlflow.exceptions import MlflowException

    client = tracking.client(str(meta["tracking_uri"]))
    run_id = str(meta["run_id"])
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        raise WxpipeError(f"MLflow run {run_id} of the checkpoint not found at {meta['tracking_uri']}: {exc}") from None
    metrics = [
        (metric_name(kind, var, hours), values[j], 0)
        for kind, per_var in scores["rmse"].items()
        for var, values in per_var.items()
        for j, hours in enumerate(scores["leads_hours"])
    ]
    metrics.append(("n_forecasts", float(scores["n_forecasts"]), 0))
    tracking.log_metrics(client, run_id, metrics)
    tracking.set_tags(client, run_id, {"wxpipe.evaluated": "true", **tags})
    client.log_artifact(run_id, str(scores_path), artifact_path="evaluation")
    client.log_artifact(run_id, str(card), artifact_path="evaluation")
