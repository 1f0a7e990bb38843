"""Training: sample (t, t+1) pairs, fit the forecaster, track it in MLflow and write a checkpoint.

The run is deterministic for a given seed and thread count. The checkpoint (:mod:`.checkpoint`)
holds the model, its grid and its :class:`~wxpipe.model.ModelMetadata` (variables, normalisation,
the MLflow run): everything the predict stage needs.

Under SLURM with several tasks (see :mod:`.distributed`) every rank trains a DDP replica on its share
of each global batch of ``batch_size`` x ranks samples; rank 0 alone validates, talks to MLflow and
writes the checkpoint.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import tracking
from ..config import TrainingConfig, params_of
from ..dataset import Dataset
from ..errors import WxpipeError
from ..grid import area_weights
from ..plots import loss_curve
from ..progress import progress
from ..samples import Batch, read_batch, sample_starts
from . import distributed
from .checkpoint import save_checkpoint
from .data import evenly_spaced, prefetched, shuffled_batches, tendency_stdev
from .features import forcings, neighbour_indices, neighbour_offsets
from .forecaster import metadata
from .model import Hyper, Network, safe_scale

log = logging.getLogger(__name__)

LOG_EVERY = 10  # steps between train_loss points
VALIDATIONS = 5  # validation passes per run, the last at the final step
VALIDATION_SAMPLES = 64  # evenly spaced over the validation period: bounded time and memory


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    metrics: dict[str, float]
    checkpoint: Path
    rank: int = 0
    world_size: int = 1
    parameters_sha256: str = ""


@dataclass
class _History:
    """Loss points as they are logged, kept for the loss curve and the final metrics."""

    train: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    persistence: float = float("nan")
    seconds: float = 0.0


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
    ``threads`` is the job's CPU count per rank, torch's intra-op threads while training.
    """
    if threads < 1:
        raise WxpipeError(f"threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train(dataset, cfg, Path(checkpoint), run_name, tags, ctx or distributed.Context())
    finally:
        torch.set_num_threads(before)


def _train(
    dataset: Dataset,
    cfg: TrainingConfig,
    checkpoint: Path,
    run_name: str,
    tags: dict[str, str],
    ctx: distributed.Context,
) -> TrainResult:
    train_starts = sample_starts(dataset, cfg.train, (0, 1))
    val_starts = evenly_spaced(sample_starts(dataset, cfg.validation, (0, 1)), VALIDATION_SAMPLES)
    for name, starts, period in [("train", train_starts, cfg.train), ("validation", val_starts, cfg.validation)]:
        if len(starts) == 0:
            raise WxpipeError(
                f"{dataset.path}: no (t, t+1) pairs with both dates present in {name} period "
                f"{period.start} .. {period.end}"
            )
    log.info(
        "%s: %d training pairs, %d validation pairs, %d variables x %d points",
        *(dataset.path, len(train_starts), len(val_starts), len(dataset.variables), len(dataset.latitudes)),
    )
    torch.manual_seed(cfg.seed)
    model = _build_model(dataset, cfg, train_starts).to(ctx.device)
    if not ctx.leader:
        history = _fit(model, dataset, cfg, train_starts, val_starts, lambda items: None, run_name, ctx)
        last = history.train[-1][1] if history.train else float("nan")
        return _result("", "", {"train_loss": last}, checkpoint, model, ctx)

    uri = cfg.mlflow.tracking_uri
    client = tracking.client(uri)
    experiment = tracking.experiment_id(client, cfg.mlflow.experiment, uri)
    run_tags = {"wxpipe.stage": "train", "wxpipe.dataset_uuid": dataset.uuid, **tags}
    run_id: str = client.create_run(experiment, run_name=run_name, tags=run_tags).info.run_id
    log.info("MLflow run %s (%s) in experiment %s at %s", run_name, run_id, experiment, tracking.redact(uri))
    try:
        tracking.log_params(client, run_id, _params(cfg, dataset, model, len(train_starts), len(val_starts)))
        history = _fit(
            model,
            dataset,
            cfg,
            train_starts,
            val_starts,
            log_metrics=lambda items: tracking.log_metrics(client, run_id, items),
            name=run_name,
            ctx=ctx,
        )
        val_loss = history.validation[-1][1]
        metrics = {
            "train_loss": history.train[-1][1] if history.train else float("nan"),
            "val_loss": val_loss,
            "val_loss_persistence": history.persistence,
            "val_skill": 1.0 - val_loss / history.persistence if history.persistence > 0 else float("nan"),
            "train_seconds": history.seconds,
            "world_size": float(ctx.world_size),
        }
        tracking.log_metrics(client, run_id, [(k, metrics[k], cfg.steps) for k in ("val_skill", "train_seconds")])
        with tempfile.TemporaryDirectory() as tmp:
            png = loss_curve(
                history.train,
                history.validation,
                Path(tmp) / "loss_curve.png",
                persistence=history.persistence,
                title=f"{run_name}: loss",
            )
            client.log_artifact(run_id, str(png))
        meta = metadata(dataset, cfg.steps, run_id, tracking.redact(uri))
        save_checkpoint(checkpoint, model, meta, dataset.latitudes, dataset.longitudes)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.info(
        "trained in %.1f s: val_loss %.4f, persistence %.4f; wrote %s",
        *(history.seconds, val_loss, history.persistence, checkpoint),
    )
    return _result(run_id, experiment, metrics, checkpoint, model, ctx)


def _result(
    run_id: str,
    experiment: str,
    metrics: dict[str, float],
    checkpoint: Path,
    model: Network,
    ctx: distributed.Context,
) -> TrainResult:
    """The result of one rank; every rank logs its weights' fingerprint, which must agree across ranks."""
    sha = distributed.parameters_sha256(model)
    log.info("rank %d/%d: parameters sha256 %s", ctx.rank, ctx.world_size, sha)
    return TrainResult(run_id, experiment, metrics, checkpoint, ctx.rank, ctx.world_size, sha)


def _build_model(dataset: Dataset, cfg: TrainingConfig, train_starts: np.ndarray) -> Network:
    """A persistence-equivalent model on the dataset's grid, normalised by its statistics."""
    stats = dataset.statistics()
    mean = np.asarray(stats["mean"], dtype=np.float64)
    stdev = safe_scale(stats["stdev"])
    lat, lon = dataset.latitudes, dataset.longitudes
    neighbours = neighbour_indices(lat, lon, cfg.neighbours)
    return Network.build(
        Hyper(len(dataset.variables), len(lat), cfg.neighbours, cfg.hidden),
        neighbours,
        neighbour_offsets(lat, lon, neighbours),
        mean,
        stdev,
        tendency_stdev(dataset, train_starts, mean, stdev),
    )


def _params(cfg: TrainingConfig, dataset: Dataset, model: Network, n_train: int, n_val: int) -> dict[str, str]:
    """The config, flattened, plus what the data turned out to be; the tracking URI without credentials."""
    params = tracking.flatten(params_of(cfg))
    params["mlflow.tracking_uri"] = tracking.redact(cfg.mlflow.tracking_uri)
    params.update(
        {
            "data.path": str(dataset.path),
            "data.variables": ",".join(dataset.variables),
            "data.points": str(len(dataset.latitudes)),
            "data.train_pairs": str(n_train),
            "data.validation_pairs": str(n_val),
            "model.parameters": str(sum(p.numel() for p in model.parameters())),
        }
    )
    return params


def _fit(
    model: Network,
    dataset: Dataset,
    cfg: TrainingConfig,
    train_starts: np.ndarray,
    val_starts: np.ndarray,
    log_metrics: Callable[[list[tuple[str, float, int]]], None],
    name: str,
    ctx: distributed.Context | None = None,
) -> _History:
    """The optimisation loop; metrics are handed to ``log_metrics`` in batches, at each validation.

    Distributed, each rank reads its share of every global batch (all ranks draw the same sequence
    of batches from the same seed) and DDP averages the gradients; rank 0 alone validates.
    """
    ctx = ctx or distributed.Context()
    net = distributed.wrap(model, ctx)
    lat, lon = dataset.latitudes, dataset.longitudes
    weights = torch.as_tensor(area_weights(lat), dtype=torch.float32, device=ctx.device)
    rng = np.random.default_rng(cfg.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.steps, eta_min=cfg.learning_rate / 10)
    size = cfg.batch_size
    val_batches = (
        [read_batch(dataset, val_starts[i : i + size], (0, 1)) for i in range(0, len(val_starts), size)]
        if ctx.leader
        else []
    )

    history = _History(persistence=_validate(model, val_batches, weights, lat, lon, persistence=True))
    pending: list[tuple[str, float, int]] = [
        ("val_loss_persistence", history.persistence, 0),
        ("val_loss", history.persistence, 0),
    ]
    every = max(1, cfg.steps // VALIDATIONS)
    recent: list[float] = []
    history.validation.append((0, history.persistence))  # the untrained model is persistence
    shares = (distributed.shard(b, ctx) for b in shuffled_batches(train_starts, size * ctx.world_size, rng))
    batches = prefetched(dataset, shares, (0, 1), cfg.steps)
    started = time.perf_counter()
    bar = progress(iterable=batches, total=cfg.steps, desc=f"train {name}", unit="step")
    for step, batch in enumerate(bar, start=1):
        samples = distributed.total(len(batch.starts), ctx)
        if samples:
            net.train()
            if ctx.distributed:
                # each rank's share of the global mean: DDP's average of the gradients is then the
                # gradient of the mean over the whole global batch, however unevenly it was split
                share = _loss(model, batch.fields, batch.dates, weights, lat, lon, net, reduce="sum")
                loss = share * (ctx.world_size / samples)
            else:
                loss = _loss(model, batch.fields, batch.dates, weights, lat, lon)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            recent.append(distributed.total(loss.detach().item(), ctx) / ctx.world_size)
        schedule.step()
        if recent and (step % LOG_EVERY == 0 or step == cfg.steps):
            value = float(np.mean(recent[-LOG_EVERY:]))
            history.train.append((step, value))
            pending.append(("train_loss", value, step))
            bar.set_postfix(loss=f"{value:.4f}")
        if ctx.leader and (step % every == 0 or step == cfg.steps):
            val = _validate(model, val_batches, weights, lat, lon)
            history.validation.append((step, val))
            pending.append(("val_loss", val, step))
            log_metrics(pending)
            pending = []
            log.info("step %d/%d: val_loss %.4f (persistence %.4f)", step, cfg.steps, val, history.persistence)
    history.seconds = time.perf_counter() - started
    return history


def _loss(
    model: Network,
    fields: np.ndarray,
    dates: np.ndarray,
    weights: torch.Tensor,
    lat: np.ndarray,
    lon: np.ndarray,
    net: torch.nn.Module | None = None,
    reduce: str = "mean",
) -> torch.Tensor:
    """Area-weighted MSE of the next state, in units of each variable's typical one-step change.

    ``net`` is the module that runs the forward pass (the DDP wrapper when distributed); ``reduce="sum"``
    sums the per-sample means, so an empty share still gives a (zero) loss to take part in the all-reduce.
    """
    x = torch.from_numpy(fields).to(weights.device)
    x0, x1 = model.normalise(x[:, 0]), model.normalise(x[:, 1])
    pred = (net or model)(x0, torch.from_numpy(forcings(dates, lat, lon)).to(weights.device))
    return _weighted(pred - x1, model, weights, reduce)


def _weighted(err: torch.Tensor, model: Network, weights: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    squares = ((err / model.tendency) ** 2) * weights[None, :, None]
    if reduce == "sum":
        return squares.sum() / (squares.shape[1] * squares.shape[2])
    return squares.mean()


@torch.no_grad()
def _validate(
    model: Network,
    batches: list[Batch],
    weights: torch.Tensor,
    lat: np.ndarray,
    lon: np.ndarray,
    persistence: bool = False,
) -> float:
    """Mean loss over the validation samples (or that of persistence, x(t+1) = x(t))."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        if len(batch.starts) == 0:
            continue
        x = torch.from_numpy(batch.fields).to(weights.device)
        x0, x1 = model.normalise(x[:, 0]), model.normalise(x[:, 1])
        pred = x0 if persistence else model(x0, torch.from_numpy(forcings(batch.dates, lat, lon)).to(weights.device))
        total += float(_weighted(pred - x1, model, weights)) * len(batch.starts)
        count += len(batch.starts)
    return total / count if count else float("nan")
