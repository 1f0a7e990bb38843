"""Evaluation: a forecasts file scored, WeatherBench2 style, beside persistence, climatology and a reference.

For each forecast in the period whose verifying dates are all present, each forecast kind (the run's model,
the ensemble mean when there are members; persistence, x(t) as the forecast of x(t + lead); the climatology
of the valid time; another model's forecast from a reference dataset, by valid time) is scored against the
dataset per region, lead and variable (:func:`wxpipe.scores.metrics.per_date`), then averaged over initial
dates (:func:`wxpipe.scores.metrics.aggregate`: the root of the mean squared error, and so on). Every kind is
scored on the same initial dates, so they compare; NaN points (masked fields) drop out of that date's means.

No model is loaded here (the predict stage made the forecasts, in the engine's environment), so
this module imports neither torch nor any engine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import tracking
from .compare import significance
from .config import EvaluationConfig
from .dataset import Dataset
from .errors import WxpipeError
from .forecasts import Forecasts, check_dataset, initial_dates, lead_hours, lead_steps, open_forecasts
from .grid import grid_fingerprint
from .guards import check_trained_on
from .plots import error_maps, lead_curves, scorecard
from .scores.regions import regions
from .scores.table import Axes, summary, table, write_json, write_netcdf
from .scoring import Baselines, accumulate
from .timeutil import iso

log = logging.getLogger(__name__)

#: moved into place in this order: scores.json, last, says "complete"
OUTPUTS = ("scores.nc", "scorecard.png", "leads.png", "maps.png", "scores.json")
STAGING = ".incoming"  # in the evaluation folder: the outputs until MLflow holds them


def evaluate(
    dataset: Dataset,
    forecasts: str | Path,
    cfg: EvaluationConfig,
    out_dir: str | Path,
    tags: Mapping[str, str],
    run: str | None = None,
    *,
    baselines: Baselines | None = None,
    memory_mb: int = 4000,
) -> dict[str, Any]:
    """Score the forecasts file on ``cfg.period``; log the scores to an MLflow run of their own, ``<run>-evaluation``
    (:func:`_log_to_mlflow`), and only then write scores.nc, scores.json and the pictures. ``run`` is the training
    run's name (for ``cfg.other_datasets``: :func:`wxpipe.guards.check_trained_on`); ``memory_mb`` the job's,
    which bounds the forecasts read at once."""
    fc, out_dir, baselines = open_forecasts(forecasts), Path(out_dir), baselines or Baselines()
    header = fc.header
    grid = grid_fingerprint(header.latitudes, header.longitudes)
    check_dataset(fc.path, header.variables, grid, header.frequency, dataset)
    other = check_trained_on(header.model.dataset_uuid, fc.path, dataset, cfg.other_datasets, run)
    if header.dataset_uuid != dataset.uuid:
        log.warning("%s: made from dataset %s, scored against %s", fc.path, header.dataset_uuid, dataset.uuid)
    _check_baselines(dataset, baselines)
    leads = lead_steps(cfg.leads)
    missing = sorted(set(leads) - set(header.leads))
    if missing:
        raise WxpipeError(f"{fc.path}: no forecasts at leads {missing} (it has {header.leads})")
    starts = _scored_starts(dataset, fc, cfg, leads)
    store = tracking.open_store(cfg.mlflow.mode, cfg.mlflow.tracking_uri, out_dir)  # an unreachable server: now
    name = run or out_dir.resolve().name
    axes = _axes(dataset, fc, baselines, starts, leads, cfg, name)
    log.info(
        "%s: scoring %d forecasts at leads %s steps, in regions %s",
        fc.path,
        len(starts),
        leads,
        ", ".join(r.name for r in axes.regions),
    )
    stats, maps = accumulate(dataset, fc, axes, baselines, _map_axes(cfg, axes), memory_mb)
    attrs = {
        "run": name,
        "dataset_uuid": dataset.uuid,
        "checkpoint": header.checkpoint,
        "run_id": header.model.run_id or "",
        "period_start": iso(cfg.period.start),
        "period_end": iso(cfg.period.end),
        "overlap": json.dumps(list(cfg.overlap)),
        "other_dataset": json.dumps([other] if other else []),
        "baseline": cfg.baseline,
    }
    scores = table(axes, stats, maps, attrs)
    if not int(scores.n_dates.sel(forecast=name).max()):
        raise WxpipeError(f"{dataset.path}: every forecast scored NaN (no finite point in any region)")
    record = record_of(scores, cfg, fc, other)
    _publish(
        out_dir, lambda staging: _log_to_mlflow(store, fc, cfg, (scores, record), staging, f"{name}-evaluation", tags)
    )
    return record


def record_of(
    scores: xr.Dataset, cfg: EvaluationConfig, fc: Forecasts, other: Mapping[str, str] | None
) -> dict[str, Any]:
    """scores.json: the aggregates (:func:`wxpipe.scores.table.summary`) and what was scored, on which dates."""
    dates = scores.init_date.values.astype("datetime64[s]")
    record = summary(scores)
    record.update(
        {
            "n_forecasts": len(dates),
            "period": {
                "start": iso(cfg.period.start),
                "end": iso(cfg.period.end),
                "first_init": iso(dates[0]),
                "last_init": iso(dates[-1]),
            },
            "dataset_uuid": scores.attrs["dataset_uuid"],
            "overlap": list(cfg.overlap),
            "baseline": cfg.baseline,
            "checkpoint": fc.header.checkpoint,
            "run_id": fc.header.model.run_id,
        }
    )
    if other is not None:
        record["other_dataset"] = dict(other)
    return record


def _check_baselines(dataset: Dataset, baselines: Baselines) -> None:
    """Refuse a climatology or reference dataset that is not on the dataset's grid (a reference may lack variables:
    those are not scored for it)."""
    if baselines.climatology is not None:
        baselines.climatology.check(dataset)
    grid = grid_fingerprint(dataset.latitudes, dataset.longitudes)
    for lead, ref in baselines.references.items():
        if grid_fingerprint(ref.latitudes, ref.longitudes) != grid:
            raise WxpipeError(f"{ref.path}: the reference at lead {lead} is on another grid than {dataset.path}")
        if not set(ref.variables) & set(dataset.variables):
            raise WxpipeError(f"{ref.path}: the reference at lead {lead} has none of the variables {dataset.variables}")


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


def _axes(
    dataset: Dataset,
    fc: Forecasts,
    baselines: Baselines,
    starts: np.ndarray,
    leads: list[int],
    cfg: EvaluationConfig,
    name: str,
) -> Axes:
    forecasts, kinds = [name, "persistence"], ["model", "persistence"]
    if baselines.climatology is not None:
        forecasts.append("climatology")
        kinds.append("climatology")
    if baselines.reference is not None:
        forecasts.append(baselines.reference)
        kinds.append("reference")
    meta = dataset.attrs.get("variables_metadata") or {}
    scored = [v for v in dataset.variables if v not in fc.header.model.forcings]
    return Axes(
        forecasts=forecasts,
        kinds=kinds,
        regions=regions(cfg.regions),
        init_dates=dataset.dates[starts],
        leads_hours=lead_hours(leads, dataset.frequency),
        leads_steps=leads,
        variables=scored,
        units=[str((meta.get(v) or {}).get("units", "")) for v in scored],
        members=fc.header.members,
        columns=[dataset.variables.index(v) for v in scored],
    )


def _map_axes(cfg: EvaluationConfig, axes: Axes) -> tuple[list[int], list[int]]:
    """Indices into the leads and the scored variables of the error maps drawn: by default, the first variable
    at the longest lead."""
    names = cfg.maps.variables or axes.variables[:1]
    unknown = [v for v in names if v not in axes.variables]
    if unknown:
        raise WxpipeError(f"evaluation.maps.variables: {unknown} are not among the scored variables {axes.variables}")
    leads = cfg.maps.leads or axes.leads_steps[-1:]
    return [axes.leads_steps.index(x) for x in leads], [axes.variables.index(v) for v in names]


def metric_name(metric: str, forecast: str, variable: str, hours: float, region: str = "global") -> str:
    """``rmse_2t_6h`` for the model in the global region; ``persistence_rmse_2t_6h``, ``acc_2t_6h_europe``: one
    MLflow metric per metric, forecast kind, variable, lead and region (the region named when not global)."""
    prefix = metric if forecast == "model" else f"{forecast}_{metric}"
    suffix = "" if region == "global" else f"_{region}"
    return f"{prefix}_{variable}_{hours:g}h{suffix}"


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
    log.info("wrote %s", ", ".join(str(out_dir / name) for name in OUTPUTS))


def _log_to_mlflow(
    store: tuple[str, Any],
    fc: Forecasts,
    cfg: EvaluationConfig,
    outputs: tuple[xr.Dataset, dict[str, Any]],
    folder: Path,
    name: str,
    tags: Mapping[str, str],
) -> None:
    """Log the scores as an evaluation run of their own, linked to the model's training run but never writing
    to it (:func:`wxpipe.tracking.training_link`); the outputs go with it as artefacts, scores.json (the record,
    which gains the run's name) with them."""
    scores, record = outputs
    uri, client = store
    model = fc.header.model
    link = tracking.training_link(client, uri, model.run_id, model.tracking_uri)
    if not link:
        log.warning("%s: the model names no MLflow run: the evaluation run is linked to none", fc.path)
    experiment = tracking.experiment_id(client, cfg.mlflow.experiment, uri)
    source = tracking.source_tags("wxpipe evaluate")
    uuid = scores.attrs["dataset_uuid"]
    run_tags = {"wxpipe.stage": "evaluate", "wxpipe.dataset_uuid": uuid, **source, **link, **tags}
    with tracking.new_run(client, experiment, name, run_tags) as run_id:
        log.info("MLflow run %s (%s) in experiment %s at %s", name, run_id, experiment, tracking.redact(uri))
        record["mlflow"] = {"run_id": run_id, "experiment_id": experiment, "tracking_uri": tracking.redact(uri)}
        _write_outputs(scores, record, cfg, folder)
        tracking.log_params(client, run_id, _params(fc, record))
        tracking.log_metrics(client, run_id, _metrics(scores))
        for output in OUTPUTS:
            client.log_artifact(run_id, str(folder / output))


def _write_outputs(scores: xr.Dataset, record: dict[str, Any], cfg: EvaluationConfig, folder: Path) -> None:
    """scores.nc, the pictures (the scorecard's skill against ``cfg.baseline`` when this evaluation scores it, else
    persistence) and scores.json, last."""
    write_netcdf(scores, folder / "scores.nc")
    baseline = cfg.baseline if cfg.baseline in scores.forecast.values else "persistence"
    sig = significance(scores, baseline, resamples=cfg.bootstrap)
    scorecard(scores, sig, folder / "scorecard.png", title=f"{scores.attrs['run']}: RMSE and skill vs {baseline}")
    lead_curves(scores, folder / "leads.png")
    error_maps(scores, folder / "maps.png")
    write_json(record, folder / "scores.json")


def _params(fc: Forecasts, record: Mapping[str, Any]) -> dict[str, str]:
    return {
        "forecasts": str(fc.path),
        "checkpoint": str(record["checkpoint"]),
        "leads_steps": ",".join(str(x) for x in record["leads_steps"]),
        "leads_hours": ",".join(f"{x:g}" for x in record["leads_hours"]),
        "period.start": record["period"]["start"],
        "period.end": record["period"]["end"],
        "dataset_uuid": record["dataset_uuid"],
        "baselines": ",".join(record["forecasts"]),
        "regions": ",".join(record["regions"]),
    }


MLFLOW_METRICS = ("rmse", "bias", "acc", "crps", "spread_skill")


def _metrics(scores: xr.Dataset) -> list[tuple[str, float, int]]:
    """Every finite aggregate as one metric (:func:`metric_name`), and the number of forecasts scored."""
    metrics = []
    for metric in MLFLOW_METRICS:
        values = scores[metric]
        for f, kind in zip(scores.forecast.values, scores.kind.values, strict=True):
            for r in scores.region.values:
                for v in scores.variable.values:
                    row = values.sel(forecast=f, region=r, variable=v).values
                    for hours, x in zip(scores.lead.values, row, strict=True):
                        label = "model" if kind == "model" else str(f)
                        if np.isfinite(x):
                            metrics.append((metric_name(metric, label, str(v), float(hours), str(r)), float(x), 0))
    metrics.append(("n_forecasts", float(scores.sizes["init_date"]), 0))
    return metrics
