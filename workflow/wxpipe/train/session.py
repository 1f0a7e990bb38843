"""One process's share of training a run: its parts, the MLflow run rank 0 logs to, the training state
saved and restored, and the end (the metrics, the loss curve, the checkpoint).

:mod:`.loop` drives it; every function here that rank 0 alone runs says so.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import tracking
from ..config import TrainingConfig
from ..dataset import Dataset
from ..fsutil import atomic_write_text
from ..samples import Batch
from . import distributed, order
from .checkpoint import save_checkpoint
from .forecaster import metadata
from .model import Network
from .resume import Settings, Start, listed, move_aside
from .state import STATE_FILE, History, RunInfo, TrainingState, restore_rng, rng_states, save_state
from .stop import Stopped, TrainingStopped
from .variables import Roles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Data:
    """What stays fixed while the run trains: its samples, the grid they live on, what each variable is,
    and the dates of a sample (relative to its start: the k inputs, then the rollout targets)."""

    dataset: Dataset
    train_starts: np.ndarray
    val_batches: list[Batch]  # rank 0's only
    n_val: int
    weights: torch.Tensor  # (values, variables): area x loss weight, 0 for forcings
    roles: Roles
    offsets: tuple[int, ...]


@dataclass
class Session:
    """The run being trained: its fixed parts, and what the loop changes (what a state file holds)."""

    name: str
    cfg: TrainingConfig
    ctx: distributed.Context
    data: Data
    model: Network
    net: torch.nn.Module
    optimiser: torch.optim.Optimizer
    folder: Path
    settings: Settings
    client: Any = None  # rank 0's MLflow client
    info: RunInfo | None = None  # rank 0's MLflow run
    step: int = 0
    position: order.Position = field(default_factory=order.Position)
    history: History = field(default_factory=History)
    pending: list[tuple[str, float, int]] = field(default_factory=list)

    def flush(self) -> None:
        """Hand the metrics gathered so far to MLflow (rank 0)."""
        if self.client is not None and self.info is not None and self.pending:
            tracking.log_metrics(self.client, self.info.run_id, self.pending)
        self.pending = []


def restore(run: Session, state: TrainingState) -> None:
    """Put the run where ``state`` left it: weights, optimiser, step, data position, history, RNGs."""
    run.model.load_state_dict(state.model)
    run.optimiser.load_state_dict(state.optimiser)
    run.step, run.position, run.history = state.step, state.position, state.history
    if state.world_size != run.ctx.world_size:
        log.warning("the state was saved by %d ranks, this run has %d", state.world_size, run.ctx.world_size)
    if not restore_rng(state.rng, run.ctx):
        log.warning("rank %d: the state holds no RNG state for it; continuing from the seed's", run.ctx.rank)


def open_run(run: Session, start: Start, tags: dict[str, str]) -> None:
    """Rank 0: carry out the start plan (move an old state aside) and open or continue the MLflow run, in the
    store the state was logged to when it continues one (:func:`wxpipe.tracking.open_store`)."""
    state, replaced, changes = start.state, start.replaced, start.changes
    mlflow, recorded = run.cfg.mlflow, None if state is None else state.run.store
    uri, run.client = tracking.open_store(mlflow.mode, mlflow.tracking_uri, run.folder.parent, recorded)
    if replaced is not None:
        aside = move_aside(run.folder)
        if tracking.close_orphan(run.client, replaced.run.run_id):
            log.info("marked MLflow run %s of the old state KILLED", replaced.run.run_id)
        log.warning("%s: moved the state to %s; training %s afresh", start.reason, aside, run.name)
    if state is not None:
        log.info("resuming %s at step %d of %d from %s", run.name, state.step, run.cfg.steps, run.folder / STATE_FILE)
        if changes:
            log.info("schedule changed since the state: %s", listed(changes))
        if tracking.reopen(run.client, state.run.run_id):
            run.info = replace(state.run, store=tracking.redact(uri))
            log.info("continuing MLflow run %s at %s", state.run.run_id, tracking.redact(uri))
            tracking.set_tags(
                run.client, state.run.run_id, {f"wxpipe.schedule.{k}": b for k, (_, b) in changes.items()}
            )
            return
        log.warning(
            "MLflow run %s of the state is gone from %s: continuing in a new run",
            *(state.run.run_id, tracking.redact(uri)),
        )
    _new_run(run, tags, uri)


def _new_run(run: Session, tags: dict[str, str], uri: str) -> None:
    """Rank 0: a new MLflow run with the source tags, the config as params and the dataset as its input."""
    assert run.client is not None
    experiment = tracking.experiment_id(run.client, run.cfg.mlflow.experiment, uri)
    mine = {"mlflow.runName": run.name, "wxpipe.state": str(run.folder)}
    for orphan in tracking.close_orphans(run.client, experiment, mine):
        log.info("marked MLflow run %s KILLED: killed before it saved a state", orphan)
    ds = run.data.dataset
    uuid = ds.source_uuid
    run_tags = {"wxpipe.stage": "train", "wxpipe.dataset_uuid": uuid, **tracking.source_tags(), **mine, **tags}
    run_id: str = run.client.create_run(experiment, run_name=run.name, tags=run_tags).info.run_id
    run.info = RunInfo(run.name, run_id, experiment, tracking.redact(uri))
    log.info("MLflow run %s (%s) in experiment %s at %s", run.name, run_id, experiment, tracking.redact(uri))
    tracking.log_params(run.client, run_id, _params(run))
    shape = {"dates": len(ds.dates), "variables": len(ds.variables), "values": len(ds.latitudes)}
    tracking.log_dataset(run.client, run_id, run.cfg.dataset, uuid, ds.path.resolve(), shape)


def _params(run: Session) -> dict[str, str]:
    """The config as the state compares it (no credentials), plus what the data turned out to be."""
    dataset = run.data.dataset
    params = {**run.settings.identity, **run.settings.schedule}
    params.update(
        {
            "data.path": str(dataset.path),
            "data.train_samples": str(len(run.data.train_starts)),
            "data.validation_samples": str(run.data.n_val),
            "data.forcing": ",".join(run.data.roles.named("forcing")),
            "data.diagnostic": ",".join(run.data.roles.named("diagnostic")),
            "model.parameters": str(sum(p.numel() for p in run.model.parameters())),
        }
    )
    return params


def close_run(run: Session, exc: BaseException | None) -> None:
    """Rank 0: end the MLflow run FINISHED, KILLED (a signal, Ctrl-C) or FAILED; a rerun reopens it."""
    if run.client is None or run.info is None:
        return
    status = "FINISHED"
    if exc is not None:
        status = "KILLED" if isinstance(exc, TrainingStopped | Stopped | KeyboardInterrupt) else "FAILED"
    try:
        run.client.set_terminated(run.info.run_id, status=status)
    except Exception as err:
        if exc is None:
            raise
        log.warning("could not mark MLflow run %s %s: %s", run.info.run_id, status, err)


def save(run: Session) -> None:
    """Save the training state (a collective: every rank hands rank 0 its RNG states)."""
    rng = rng_states(run.ctx)
    if not run.ctx.leader or run.info is None:
        return
    run.flush()  # a resumed run must not lose the points logged before the state
    s = run.settings
    state = TrainingState(
        *(run.info, run.data.dataset.source_uuid, s.identity, s.schedule, run.step, run.position, run.ctx.world_size),
        *(run.model.state_dict(), run.optimiser.state_dict(), rng, run.history),
    )
    path = save_state(run.folder, state)
    log.debug("step %d/%d: state saved in %s", run.step, run.cfg.steps, path)


def finish(run: Session, checkpoint: Path) -> dict[str, float]:
    """Rank 0: the final metrics, the checkpoint, and the loss curve (:func:`_loss_curve`)."""
    h, cfg, info = run.history, run.cfg, run.info
    assert info is not None
    val_loss = h.validation[-1][1]
    metrics = {
        "train_loss": last(h.train),
        "val_loss": val_loss,
        "val_loss_persistence": h.persistence,
        "val_skill": 1.0 - val_loss / h.persistence if h.persistence > 0 else float("nan"),
        "train_seconds": h.seconds,
        "world_size": float(run.ctx.world_size),
    }
    tracking.log_metrics(run.client, info.run_id, [(k, metrics[k], cfg.steps) for k in ("val_skill", "train_seconds")])
    uri = info.store or tracking.recorded_uri(cfg.mlflow.tracking_uri)  # an offline run's own store
    ds = run.data.dataset
    meta = metadata(ds, run.data.roles, run.model.hyper, cfg.steps, info.run_id, uri)
    save_checkpoint(checkpoint, run.model, meta, ds.latitudes, ds.longitudes)
    run.client.log_artifact(info.run_id, str(checkpoint))
    atomic_write_text(loss_history(checkpoint), json.dumps({"run": run.name, **h.to_dict()}, indent=1) + "\n")
    _loss_curve(run)
    log.info(
        "trained in %.1f s: val_loss %.4f, persistence %.4f; wrote %s",
        *(h.seconds, val_loss, h.persistence, checkpoint),
    )
    return metrics


def loss_history(checkpoint: Path) -> Path:
    """Where the loss points go beside the checkpoint (``loss.json``): what the ``draw_loss_curve`` rule draws for
    ``snakemake --report`` in the data environment, whatever the training environment lacks."""
    return checkpoint.with_name("loss.json")


def _loss_curve(run: Session) -> None:
    """Rank 0: the loss curve as an MLflow artefact, after the checkpoint: a compute node's environment
    without matplotlib (a site's own torch image) loses the picture, never the trained model."""
    try:
        from ..plots import loss_curve
    except ImportError as exc:
        log.warning("no loss curve: %s (the metrics are in MLflow)", exc)
        return
    assert run.info is not None
    h = run.history
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "loss_curve.png"
        loss_curve(h.train, h.validation, png, persistence=h.persistence, title=f"{run.name}: loss")
        run.client.log_artifact(run.info.run_id, str(png))


def last(points: list[tuple[int, float]]) -> float:
    return points[-1][1] if points else float("nan")
