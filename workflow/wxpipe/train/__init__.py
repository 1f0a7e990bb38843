"""The built-in training engine: a small neighbour-stencil MLP forecaster, tracked in MLflow.

``train`` fits it and writes a checkpoint, continuing the training state a killed run left beside it
(:mod:`.state`, :mod:`.resume`); :mod:`.forecaster` is its :class:`wxpipe.model.Forecaster`, which the
predict stage loads through :func:`wxpipe.model.load`.
"""

from __future__ import annotations

from . import continuation
from .checkpoint import Checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from .loop import TrainResult, train
from .model import Hyper, Network
from .state import state_folder
from .stop import EXIT_STOPPED, TrainingStopped

__all__ = [
    "EXIT_STOPPED",
    "Checkpoint",
    "Hyper",
    "Network",
    "TrainResult",
    "TrainingStopped",
    "continuation",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "state_folder",
    "train",
]
