"""The predict stage: roll a model out from every initial date of the evaluation period into a forecasts file.

This is the one place a model is loaded (:func:`wxpipe.model.load`), so it runs in the environment of
the engine that trained it; what it writes (:mod:`wxpipe.forecasts`) is all the evaluation needs.
The initial dates are those the evaluation scores: in the period, with the input window and every
verifying date present in the dataset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import forecasts
from .config import EvaluationConfig
from .dataset import Dataset
from .errors import WxpipeError
from .model import Forecaster, load
from .progress import progress
from .samples import read_batch

log = logging.getLogger(__name__)

BATCH = 8  # initial dates rolled out together


def predict(
    dataset: Dataset, checkpoint: str | Path, cfg: EvaluationConfig, out: str | Path, *, lineage: str | None = None
) -> forecasts.Forecasts:
    """Forecast ``cfg.leads`` from each initial date in ``cfg.period``; write the forecasts file ``out``.

    ``lineage`` is the checkpoint's lineage id, recorded in the file's model metadata.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    model = load(checkpoint)
    meta = model.metadata if lineage is None else dataclasses.replace(model.metadata, lineage=lineage)
    forecasts.check_dataset(checkpoint, meta.inputs, meta.grid, meta.frequency, dataset)
    leads = forecasts.lead_steps(cfg.leads)
    starts = forecasts.initial_dates(dataset, cfg.period, leads, meta.input_steps)
    log.info("%s: %d forecasts to +%d steps with %s", dataset.path, len(starts), leads[-1], checkpoint)
    header = forecasts.Header(
        variables=meta.outputs,
        leads=leads,
        members=1,
        latitudes=dataset.latitudes,
        longitudes=dataset.longitudes,
        frequency=dataset.frequency,
        model=meta,
        dataset_uuid=dataset.uuid,
        dataset_path=str(dataset.path),
        checkpoint=str(checkpoint),
    )
    window = list(range(1 - meta.input_steps, 1))
    bar = progress(total=len(starts), desc="predict", unit="forecast")
    with forecasts.create(out, header, len(starts)) as writer:
        for lo in range(0, len(starts), BATCH):
            batch = read_batch(dataset, starts[lo : lo + BATCH], window)
            bar.update(len(starts[lo : lo + BATCH]))
            if len(batch.starts) > 0:
                writer.append(batch.dates, rollout(model, batch.fields, batch.dates, window, leads, dataset))
    bar.close()
    log.info("wrote %s: %d forecasts", out, writer.count)
    return forecasts.open_forecasts(out)


def rollout(
    model: Forecaster,
    fields: np.ndarray,
    init_dates: np.ndarray,
    window: Sequence[int],
    leads: Sequence[int],
    dataset: Dataset,
) -> np.ndarray:
    """One batch through the model: ``fields`` (batch, window, values, variables) as :func:`read_batch` gives it,
    forecasts (batch, leads, members, variables, values) as the forecasts file holds them."""
    step = np.timedelta64(int(dataset.frequency.total_seconds()), "s")
    states = fields.transpose(0, 1, 3, 2)[:, None]  # one member
    dates = np.asarray(init_dates, dtype="datetime64[s]")[:, None] + np.asarray(window) * step
    out = model.predict(states, dates, leads)
    expected = (len(fields), 1, len(leads), len(model.metadata.outputs), fields.shape[2])
    if out.shape != expected:
        raise WxpipeError(f"engine {model.metadata.engine!r} returned forecasts of shape {out.shape}, not {expected}")
    return out.transpose(0, 2, 1, 3, 4)
