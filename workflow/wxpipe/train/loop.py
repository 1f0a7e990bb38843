"""Training: sample windows of k input states and R rollout targets, fit the forecaster, track it in MLflow
and write a checkpoint.

What is fitted (:mod:`.objective`): the loss of a rollout of R steps, R scheduled from ``rollout.start``
to ``rollout.max``, with AdamW under a warmup-then-cosine learning rate, optional gradient clipping,
``accumulate`` micro-batches per optimiser step and an optional bfloat16 forward pass.

The run is deterministic for a given seed and thread count, and it survives being killed: every
``checkpoint_every`` steps (and at the first and last) it saves its training state (:mod:`.state`) beside
the checkpoint, and the same command run again continues from there (:mod:`.resume` says when it may)
in the same MLflow run, ending with the weights an uninterrupted run would have. SIGTERM and SIGUSR1
stop it at the next step with its state saved (:mod:`.stop`). The checkpoint (:mod:`.checkpoint`) holds
the model, its grid and its :class:`~wxpipe.model.ModelMetadata`: everything the predict stage needs.

Under SLURM with several tasks (see :mod:`.distributed`) every rank trains a DDP replica on its share
of each global batch of ``batch_size`` x ``accumulate`` x ranks samples; rank 0 alone validates, talks to MLflow and
writes the state and the checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainingConfig
from ..dataset import Dataset
from ..errors import WxpipeError
from ..grid import area_weights
from ..progress import progress
from ..samples import Batch
from . import distributed, order
from .loader import WaitClock, prefetched
from .objective import backward, samples, validate, validation_batches
from .objective import build_model as _build_model
from .objective import loss as _loss  # noqa: F401 (the loss the loop's steps take, for tests)
from .resume import Settings, plan_start, seed_weights
from .session import Data, Session, close_run, finish, last, open_run, restore, save
from .state import TrainingState, learning_rate, load_state, state_folder
from .stop import Stopped, StopSignals, TrainingStopped
from .variables import roles_of

__all__ = ["TrainResult", "train"]

log = logging.getLogger(__name__)

LOG_EVERY = 10  # steps between train_loss points
VALIDATIONS = 5  # validation passes per run, the last at the final step


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    metrics: dict[str, float]
    checkpoint: Path
    rank: int = 0
    world_size: int = 1
    parameters_sha256: str = ""
    tracking_uri: str = ""  # the store the run was logged to (redacted): an offline run's own


def train(
    dataset: Dataset,
    cfg: TrainingConfig,
    checkpoint: Path,
    run_name: str,
    tags: dict[str, str],
    ctx: distributed.Context | None = None,
    threads: int = 1,
) -> TrainResult:
    """Train on ``cfg.train``, validate on ``cfg.validation``, log to MLflow, write ``checkpoint``.

    ``ctx`` places this process among the ranks of a distributed run (default: the only one);
    ``threads`` is the job's CPU count per rank, torch's intra-op threads while training. A training
    state beside ``checkpoint`` (:func:`.state.state_folder`) is continued; :class:`.stop.TrainingStopped`
    is raised when a signal stopped the run.
    """
    if threads < 1:
        raise WxpipeError(f"threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with StopSignals() as stop:
            try:
                return _train(dataset, cfg, Path(checkpoint), run_name, tags, ctx or distributed.Context(), stop)
            except Stopped as stopped:
                raise TrainingStopped(stopped.signum, None, cfg.steps, state_folder(Path(checkpoint))) from None
    finally:
        torch.set_num_threads(before)


def _train(
    dataset: Dataset,
    cfg: TrainingConfig,
    checkpoint: Path,
    run_name: str,
    tags: dict[str, str],
    ctx: distributed.Context,
    stop: StopSignals,
) -> TrainResult:
    run = _prepare(dataset, cfg, checkpoint, run_name, ctx)
    start = plan_start(load_state(run.folder), run.folder, dataset.source_uuid, run.settings, cfg.fork)
    if ctx.distributed:
        torch.distributed.barrier()  # every rank has read the state before rank 0 moves or rewrites it
    if start.state is not None:
        restore(run, start.state)
    elif start.fork and start.replaced is not None:
        tags = {**tags, **_fork(run, start.replaced)}
    if ctx.leader:
        open_run(run, start, tags)
    try:
        if start.state is None:
            _baseline(run)
            save(run)
        signum = _fit(run, stop)
        if signum:
            raise TrainingStopped(signum, run.step, cfg.steps, run.folder)
        metrics = finish(run, checkpoint) if ctx.leader else {"train_loss": last(run.history.train)}
    except BaseException as exc:
        close_run(run, exc)
        raise
    close_run(run, None)
    sha = distributed.parameters_sha256(run.model)
    log.info("rank %d/%d: parameters sha256 %s", ctx.rank, ctx.world_size, sha)
    info = run.info
    run_id, experiment, store = (info.run_id, info.experiment_id, info.store or "") if info else ("", "", "")
    return TrainResult(run_id, experiment, metrics, checkpoint, ctx.rank, ctx.world_size, sha, store)


def _fork(run: Session, parent: TrainingState) -> dict[str, str]:
    """Start the new run from ``parent``'s weights where they fit; the tags that link it to its parent."""
    left = seed_weights(run.model, parent)
    log.info(
        "forking %s from step %d of MLflow run %s: %s",
        *(run.name, parent.step, parent.run.run_id, f"not carried over: {', '.join(left)}" if left else "every weight"),
    )
    return {"wxpipe.forked_from": parent.run.run_id, "wxpipe.forked_at_step": str(parent.step)}


def _prepare(dataset: Dataset, cfg: TrainingConfig, checkpoint: Path, name: str, ctx: distributed.Context) -> Session:
    """The model (seeded), its optimiser and the samples, as a fresh run starts them."""
    train_starts, val_starts = samples(dataset, cfg)
    roles = roles_of(dataset, cfg)
    torch.manual_seed(cfg.seed)
    model = _build_model(dataset, cfg, train_starts, roles).to(ctx.device)
    net = distributed.wrap(model, ctx)
    area = torch.as_tensor(area_weights(dataset.latitudes), dtype=torch.float32, device=ctx.device)
    weights = area[:, None] * torch.as_tensor(roles.loss_weights, dtype=torch.float32, device=ctx.device)
    val_batches = validation_batches(dataset, val_starts, cfg.batch_size, cfg.offsets) if ctx.leader else []
    data = Data(dataset, train_starts, val_batches, len(val_starts), weights, roles, cfg.offsets)
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    settings = Settings.of(cfg, dataset, model)
    return Session(name, cfg, ctx, data, model, net, optimiser, state_folder(checkpoint), settings)


def _baseline(run: Session) -> None:
    """Rank 0 of a fresh run: persistence, and the untrained model (persistence but for any diagnostics)."""
    if not run.ctx.leader:
        return
    p = _validate(run, persistence=True)
    v = _validate(run) if run.model.hyper.diagnostic else p
    run.history.persistence = p
    run.history.validation.append((0, v))
    run.pending += [("val_loss_persistence", p, 0), ("val_loss", v, 0)]


def _fit(run: Session, stop: StopSignals) -> int:
    """Train from ``run.step`` to ``steps``; the signal that stopped it early, else 0.

    Distributed, each rank reads its share of every global batch (all ranks draw the same sequence
    of batches from the same seed) and DDP averages the gradients; rank 0 alone validates.
    """
    cfg, ctx = run.cfg, run.ctx
    after: deque[order.Position] = deque()  # the position after each batch, in the order they are read
    size = cfg.batch_size * cfg.accumulate * ctx.world_size
    plan = order.batches(run.data.train_starts, size, cfg.seed, run.position)

    def shares() -> Iterator[np.ndarray]:
        for starts, position in plan:
            after.append(position)
            yield distributed.shard(starts, ctx)

    count = cfg.steps - run.step
    batches = prefetched(run.data.dataset, shares(), run.data.offsets, count, cfg.loader, ctx.device, drop_nan=False)
    bar = progress(iterable=batches, total=cfg.steps, initial=run.step, desc=f"train {run.name}", unit="step")
    waits = WaitClock(LOG_EVERY)  # the data wait of the last steps, against their wall time
    clock = time.perf_counter()
    signum = 0
    with stop.deferred(), closing(batches):
        for batch in bar:
            waits.got()
            run.step, run.position = run.step + 1, after.popleft()
            _train_step(run, batch)
            _record(run, bar)
            waits.stepped()
            if run.step % LOG_EVERY == 0 or run.step == cfg.steps:
                run.pending += waits.metrics(run.step)
                waits.show(bar)
            signum = stop.agreed(ctx)
            if signum or run.step % cfg.checkpoint_every == 0 or run.step == cfg.steps:
                now = time.perf_counter()
                run.history.seconds += now - clock
                clock = now
                save(run)
            if signum:
                break
            waits.ask()
    return signum


def _train_step(run: Session, batch: Batch) -> None:
    """One optimiser step on the global batch this rank holds a share of.

    Each rank's loss is its share of the global mean (summed over its samples, divided by the global
    count, times the ranks): DDP's average of the gradients is then the gradient of the mean over the
    whole global batch, however unevenly it was split.
    """
    ctx, cfg, data = run.ctx, run.cfg, run.data
    samples = distributed.total(len(batch.starts), ctx)
    if not samples:
        return
    run.net.train()
    for group in run.optimiser.param_groups:
        group["lr"] = learning_rate(run.step, cfg.steps, cfg.learning_rate, cfg.warmup, cfg.min_learning_rate)
    run.optimiser.zero_grad(set_to_none=True)
    value = backward(
        *(run.model, batch, data.weights, data.dataset.latitudes, data.dataset.longitudes),
        net=run.net,
        parts=cfg.accumulate,
        scale=ctx.world_size / samples,
        steps=cfg.rollout.at(run.step),
        frequency=data.dataset.frequency,
        precision=cfg.precision,
    )
    if cfg.gradient_clip is not None:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.gradient_clip)
    run.optimiser.step()
    run.history.recent.append(distributed.total(value, ctx) / ctx.world_size)
    del run.history.recent[:-LOG_EVERY]


def _record(run: Session, bar: Any) -> None:
    """The train loss, learning rate and rollout every LOG_EVERY steps; rank 0 validates VALIDATIONS times
    and logs to MLflow."""
    cfg, h, step = run.cfg, run.history, run.step
    if h.recent and (step % LOG_EVERY == 0 or step == cfg.steps):
        value = float(np.mean(h.recent))
        h.train.append((step, value))
        lr = float(run.optimiser.param_groups[0]["lr"])
        rollout = float(cfg.rollout.at(step))
        run.pending += [("train_loss", value, step), ("learning_rate", lr, step), ("rollout", rollout, step)]
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
    if run.ctx.leader and (step % max(1, cfg.steps // VALIDATIONS) == 0 or step == cfg.steps):
        val = _validate(run)
        h.validation.append((step, val))
        run.pending.append(("val_loss", val, step))
        run.flush()
        log.info("step %d/%d: val_loss %.4f (persistence %.4f)", step, cfg.steps, val, h.persistence)


def _validate(run: Session, persistence: bool = False) -> float:
    """The loss over the validation samples at every rollout step up to ``rollout.max``."""
    data, ds = run.data, run.data.dataset
    args = (run.model, data.val_batches, data.weights, ds.latitudes, ds.longitudes, persistence)
    return validate(*args, frequency=ds.frequency)
