"""The predict stage: roll a model out from every initial date of the evaluation period into a forecasts file.

This is the one place a model is loaded (:func:`wxpipe.model.load`), so it runs in the environment of
the engine that trained it; what it writes (:mod:`wxpipe.forecasts`) is all the evaluation needs.
The initial dates are those the evaluation scores: in the period, with the input window and every
verifying date present in the dataset (for a model with forcings, every date up to the last lead).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import budget, forecasts
from .config import EvaluationConfig
from .dataset import Dataset
from .errors import WxpipeError
from .guards import check_trained_on
from .model import Forecaster, ModelMetadata, load
from .progress import progress
from .samples import read_members

log = logging.getLogger(__name__)

WORKING_COPIES = 8  # a rough bound on a model's own copies of its states (the built-in model's stencil gathers)


def predict(
    dataset: Dataset,
    checkpoint: str | Path,
    cfg: EvaluationConfig,
    out: str | Path,
    *,
    lineage: str | None = None,
    run: str | None = None,
    memory_mb: int = 4000,
) -> forecasts.Forecasts:
    """Forecast ``cfg.leads`` from each initial date in ``cfg.period``; write the forecasts file ``out``.

    ``lineage`` is the checkpoint's lineage id, recorded in the file's model metadata. A model with
    forcings is given them from the dataset at every valid time, so those dates must be present too.
    A dataset with ensemble members gives an initial-condition ensemble: each member is rolled out.
    ``run`` is the training run's name, for ``cfg.other_datasets`` (:func:`wxpipe.guards.check_trained_on`).
    ``memory_mb`` (the job's) bounds the forecasts rolled out at once (:func:`wxpipe.budget.batch_size`), and
    so does the free memory of the engine's GPU when its forecaster says it (``memory_mb`` attribute).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    model = load(checkpoint)
    meta = model.metadata if lineage is None else dataclasses.replace(model.metadata, lineage=lineage)
    forecasts.check_dataset(checkpoint, dataset.variables, meta.grid, meta.frequency, dataset)
    check_variables(checkpoint, meta, dataset.variables)
    check_trained_on(meta.dataset_uuid, checkpoint, dataset, cfg.other_datasets, run)
    leads = forecasts.lead_steps(cfg.leads)
    ahead = list(range(1, leads[-1] + 1)) if meta.forcings else leads
    starts = forecasts.initial_dates(dataset, cfg.period, ahead, meta.input_steps)
    header = forecasts.Header.of(dataset, meta, leads, checkpoint)
    members = header.members
    offsets = [*range(1 - meta.input_steps, 1), *(ahead if meta.forcings else [])]
    states = members * (len(offsets) + 2 * len(leads)) * len(dataset.variables) * len(dataset.latitudes) * 4
    item = states * WORKING_COPIES
    device_mb = getattr(model, "memory_mb", None)  # an engine on a GPU: its free device memory
    batch = budget.batch_size(item, min(memory_mb, device_mb or memory_mb), what="forecasts")
    log.info(
        "%s: %d forecasts of %d member(s) to +%d steps with %s, %d at a time, on %s",
        dataset.path,
        len(starts),
        members,
        leads[-1],
        checkpoint,
        batch,
        getattr(model, "device", "its engine's device"),
    )
    bar = progress(total=len(starts), desc="predict", unit="forecast")
    with forecasts.create(out, header, len(starts)) as writer:
        for lo in range(0, len(starts), batch):
            chunk = read_members(dataset, starts[lo : lo + batch], offsets)
            writer.append(chunk.dates, rollout(model, chunk.fields, chunk.dates, leads, dataset))
            bar.update(len(chunk.starts))
    bar.close()
    log.info("wrote %s: %d forecasts", out, writer.count)
    return forecasts.open_forecasts(out)


def check_variables(source: str | Path, meta: ModelMetadata, variables: Sequence[str]) -> None:
    """Refuse a dataset that lacks a variable the model reads, or has one it neither predicts nor reads
    as a forcing (the forecasts file holds every dataset variable)."""
    lacking = [v for v in (*meta.inputs, *meta.outputs) if v not in variables]
    unknown = [v for v in variables if v not in meta.outputs and v not in meta.forcings]
    if lacking or unknown:
        raise WxpipeError(
            f"{source}: made for inputs {meta.inputs} and outputs {meta.outputs}; the dataset's variables are "
            f"{list(variables)}"
        )


def rollout(
    model: Forecaster, fields: np.ndarray, init_dates: np.ndarray, leads: Sequence[int], dataset: Dataset
) -> np.ndarray:
    """One batch through the model: ``fields`` (batch, dates, members, values, variables) as :func:`read_members`
    gives it (the k input dates, then, for a model with forcings, every step to the last lead), forecasts
    (batch, leads, members, variables, values) of every dataset variable as the forecasts file holds them:
    the model's outputs, and its forcings as it was given them (member 0's: forcings are not perturbed)."""
    meta, names = model.metadata, list(dataset.variables)
    k, (b, _, m, n, _) = meta.input_steps, fields.shape
    step = np.timedelta64(int(dataset.frequency.total_seconds()), "s")
    dates = np.asarray(init_dates, dtype="datetime64[s]")[:, None] + np.arange(1 - k, 1) * step
    inputs, outputs, given = ([names.index(v) for v in vs] for vs in (meta.inputs, meta.outputs, meta.forcings))
    states = fields[:, :k][..., inputs].transpose(0, 2, 1, 4, 3)  # (batch, members, k, inputs, values)
    extra = {"forcings": fields[:, k:, :1][..., given].transpose(0, 2, 1, 4, 3)} if given else {}
    out = model.predict(states, dates, leads, **extra)
    expected = (b, m, len(leads), len(outputs), n)
    if out.shape != expected:
        raise WxpipeError(f"engine {meta.engine!r} returned forecasts of shape {out.shape}, not {expected}")
    full = np.empty((b, len(leads), m, len(names), n), dtype=np.float32)
    full[:, :, :, outputs] = out.transpose(0, 2, 1, 3, 4)
    if given:
        at_leads = fields[:, [k - 1 + lead for lead in leads], :1][..., given]  # (batch, leads, 1, values, forcings)
        full[:, :, :, given] = at_leads.transpose(0, 1, 2, 4, 3)
    return full
