"""The built-in training engine: a small neighbour-stencil MLP forecaster, tracked in MLflow.

``train`` fits it and writes a checkpoint; :mod:`.forecaster` is its :class:`wxpipe.model.Forecaster`,
which the predict stage loads through :func:`wxpipe.model.load`.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from .loop import TrainResult, train
from .model import Hyper, Network

__all__ = [
    "Checkpoint",
    "Hyper",
    "Network",
    "TrainResult",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "train",
]
