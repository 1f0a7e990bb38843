"""What training fits and how it is scored: the samples, the model built on the data, the loss, validation."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..config import TrainingConfig
from ..dataset import Dataset
from ..errors import WxpipeError
from ..samples import Batch, read_batch, sample_starts
from .data import evenly_spaced, tendency_stdev
from .features import forcings, neighbour_indices, neighbour_offsets
from .model import Hyper, Network, safe_scale

log = logging.getLogger(__name__)

VALIDATION_SAMPLES = 64  # evenly spaced over the validation period: bounded time and memory


def samples(dataset: Dataset, cfg: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The (t, t+1) sample starts of the training and validation periods; none is an error."""
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
    return train_starts, val_starts


def validation_batches(dataset: Dataset, starts: np.ndarray, size: int) -> list[Batch]:
    """The validation samples, read once for the whole run."""
    return [read_batch(dataset, starts[i : i + size], (0, 1)) for i in range(0, len(starts), size)]


def build_model(dataset: Dataset, cfg: TrainingConfig, train_starts: np.ndarray) -> Network:
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


def loss(
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
    return weighted(pred - x1, model, weights, reduce)


def weighted(err: torch.Tensor, model: Network, weights: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    squares = ((err / model.tendency) ** 2) * weights[None, :, None]
    if reduce == "sum":
        return squares.sum() / (squares.shape[1] * squares.shape[2])
    return squares.mean()


@torch.no_grad()
def validate(
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
        total += float(weighted(pred - x1, model, weights)) * len(batch.starts)
        count += len(batch.starts)
    return total / count if count else float("nan")
