"""The model interface: what a trained model is (:class:`ModelMetadata`) and what it does (:class:`Forecaster`).

Training engines implement it (the built-in one in :mod:`wxpipe.train.forecaster`); the predict
stage alone calls :func:`load`, in the engine's environment, and writes a forecasts file; the
evaluation reads that file and never loads a model. Importing this package imports no engine.
"""

from __future__ import annotations

from .checkpoint import embed_metadata, read_metadata
from .engines import ENGINES, load
from .metadata import ModelMetadata, Role, Variable
from .protocol import Forecaster

__all__ = ["ENGINES", "Forecaster", "ModelMetadata", "Role", "Variable", "embed_metadata", "load", "read_metadata"]
