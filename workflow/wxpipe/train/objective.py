"""What training fits and how it is scored: the samples, the model built on the data, the loss, validation.

A sample is k input states (``multistep_input``) and the ``rollout.max`` states after them. The loss
of R rollout steps feeds the model its own prediction R times (the forcings replaced by their true
values at each new time) and averages the R steps' errors; nothing is detached, so the gradient of
step R reaches every earlier step. Errors are area-weighted, weighted per variable and level, in units
of each variable's typical one-step change, and masked where the truth is NaN (a field such as
``sst`` over land): masked points add nothing, and NaN inputs enter as the normalised 0.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

import numpy as np
import torch

from ..config import TrainingConfig
from ..dataset import Dataset
from ..errors import WxpipeError
from ..samples import Batch, read_batch, sample_starts
from .data import evenly_spaced
from .features import forcings, neighbour_indices, neighbour_offsets
from .loader import to_device
from .model import Hyper, Network, filled
from .variables import Roles, roles_of, tendency_scale

log = logging.getLogger(__name__)

VALIDATION_SAMPLES = 64  # evenly spaced over the validation period: bounded time and memory


def samples(dataset: Dataset, cfg: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The sample starts of the training and validation periods (every date of ``cfg.offsets`` in the
    period and present); none is an error."""
    train_starts = sample_starts(dataset, cfg.train, cfg.offsets)
    val_starts = evenly_spaced(sample_starts(dataset, cfg.validation, cfg.offsets), VALIDATION_SAMPLES)
    for name, starts, period in [("train", train_starts, cfg.train), ("validation", val_starts, cfg.validation)]:
        if len(starts) == 0:
            raise WxpipeError(
                f"{dataset.path}: no samples (dates t{cfg.offsets[0]:+d} .. t+{cfg.offsets[-1]} all present) in "
                f"{name} period {period.start} .. {period.end}"
            )
    log.info(
        "%s: %d training samples, %d validation samples, %d variables x %d points",
        *(dataset.path, len(train_starts), len(val_starts), len(dataset.variables), len(dataset.latitudes)),
    )
    return train_starts, val_starts


def validation_batches(dataset: Dataset, starts: np.ndarray, size: int, offsets: tuple[int, ...]) -> list[Batch]:
    """The validation samples, read once for the whole run (NaN kept: the loss masks it)."""
    return [read_batch(dataset, starts[i : i + size], offsets, drop_nan=False) for i in range(0, len(starts), size)]


def build_model(dataset: Dataset, cfg: TrainingConfig, train_starts: np.ndarray, roles: Roles | None = None) -> Network:
    """A model on the dataset's grid that starts as persistence, normalised by the dataset's statistics."""
    roles = roles or roles_of(dataset, cfg)
    lat, lon = dataset.latitudes, dataset.longitudes
    neighbours = neighbour_indices(lat, lon, cfg.neighbours)
    hyper = Hyper(
        *(len(roles.names), len(lat), cfg.neighbours, cfg.hidden),
        layers=cfg.layers,
        input_steps=cfg.multistep_input,
        forcing=roles.indices("forcing"),
        diagnostic=roles.indices("diagnostic"),
    )
    tendency = tendency_scale(dataset, train_starts, roles)
    return Network.build(hyper, neighbours, neighbour_offsets(lat, lon, neighbours), roles.shift, roles.scale, tendency)


def loss(
    model: Network,
    fields: np.ndarray | torch.Tensor,
    dates: np.ndarray,
    weights: torch.Tensor,
    lat: np.ndarray,
    lon: np.ndarray,
    net: torch.nn.Module | None = None,
    reduce: str = "mean",
    *,
    steps: int | None = None,
    frequency: dt.timedelta | None = None,
    persistence: bool = False,
) -> torch.Tensor:
    """The loss of ``steps`` rollout steps (default: all that ``fields`` holds after the k inputs).

    ``fields`` (batch, k + R, values, variables) in physical units, ``dates`` those of the last input;
    ``weights`` (values,) area weights or (values, variables) area x variable weights; ``frequency``
    one model step (needed beyond one step). ``net`` is the module that runs the forward pass (the
    DDP wrapper when distributed); ``reduce="sum"`` sums the per-sample losses, so an empty share
    still gives a (zero) loss to take part in the all-reduce. ``persistence`` scores x(t) instead.
    """
    k = model.hyper.input_steps
    x = model.normalise(to_device(fields, weights.device) if isinstance(fields, np.ndarray) else fields)
    steps = x.shape[1] - k if steps is None else steps
    if not 1 <= steps <= x.shape[1] - k or (steps > 1 and frequency is None):
        raise ValueError(f"{steps} rollout steps from fields of {x.shape[1]} dates (k={k}, frequency {frequency})")
    w = (weights[:, None] if weights.dim() == 1 else weights) * ~model.forcing  # forcings are never scored
    norm = w.shape[0] * len(model.hyper.outputs)
    step = np.timedelta64(frequency or dt.timedelta(0))
    window, per_sample = filled(x[:, :k]), x.new_zeros(len(x))
    for s in range(1, steps + 1):
        truth = x[:, k - 1 + s]
        target = filled(truth)
        if persistence:
            pred = window[:, -1]
        else:
            when = np.asarray(dates, dtype="datetime64[s]") + (s - 1) * step
            pred = (net or model)(window, torch.from_numpy(forcings(when, lat, lon)).to(x.device))
        err = torch.where(torch.isfinite(truth), (pred - target) / model.tendency, 0.0)
        per_sample = per_sample + (err**2 * w).sum(dim=(1, 2)) / norm
        window = torch.cat([window[:, 1:], model.with_forcings(pred, target)[:, None]], dim=1)
    per_sample = per_sample / steps
    return per_sample.sum() if reduce == "sum" else per_sample.mean()


@torch.no_grad()
def validate(
    model: Network,
    batches: list[Batch],
    weights: torch.Tensor,
    lat: np.ndarray,
    lon: np.ndarray,
    persistence: bool = False,
    *,
    frequency: dt.timedelta | None = None,
) -> float:
    """Mean loss over the validation samples and every rollout step they hold (or that of persistence)."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        if len(batch.starts):
            args = (batch.fields, batch.dates, weights, lat, lon)
            total += float(loss(model, *args, reduce="sum", frequency=frequency, persistence=persistence))
            count += len(batch.starts)
    return total / count if count else float("nan")


def backward(
    model: Network,
    batch: Batch,
    weights: torch.Tensor,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    net: torch.nn.Module | None = None,
    parts: int = 1,
    scale: float = 1.0,
    steps: int | None = None,
    frequency: dt.timedelta | None = None,
    precision: str = "fp32",
) -> float:
    """Accumulate the gradient of ``scale`` x the summed loss of ``batch``, in ``parts`` micro-batches; its value.

    Every part runs (an empty one too), so that each rank of a DDP run takes part in every all-reduce;
    gradients are synchronised on the last part only. ``precision="bf16"`` runs the forward pass under
    bfloat16 autocast on the device the weights are on.
    """
    runner = net or model
    sync = getattr(runner, "no_sync", None)
    fields = to_device(batch.fields, weights.device)
    total = 0.0
    pieces = zip(torch.tensor_split(fields, parts), np.array_split(batch.dates, parts), strict=True)
    for i, (part_fields, part_dates) in enumerate(pieces):
        quiet = sync() if sync is not None and i < parts - 1 else contextlib.nullcontext()
        with quiet:
            with torch.autocast(weights.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                args = (part_fields, part_dates, weights, lat, lon, runner)
                part = loss(model, *args, reduce="sum", steps=steps, frequency=frequency) * scale
            part.backward()  # type: ignore[no-untyped-call]
        total += float(part.detach())
    return total
