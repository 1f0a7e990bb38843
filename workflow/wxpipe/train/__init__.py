"""Training stage: a small neighbour-stencil MLP forecaster, tracked in MLflow.

``train`` fits it and writes a checkpoint; ``load_checkpoint`` gives it back to the evaluation.
"""

from __future__ import annotations

from .loop import TrainResult, load_checkpoint, save_checkpoint, train
from .model import Forecaster, Hyper

__all__ = ["Forecaster", "Hyper", "TrainResult", "load_checkpoint", "save_checkpoint", "train"]
