"""The one interface between an engine (what trained the model) and everything that uses its forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .metadata import ModelMetadata


@runtime_checkable
class Forecaster(Protocol):
    """A trained model, numpy in and numpy out, in physical units.

    ``states`` is (batch, members, k, variables, values): the k = ``metadata.input_steps`` past
    states of ``metadata.inputs`` at ``dates`` (batch, k) datetime64, oldest first; NaN marks points
    without data (a masked field), which the model fills as it was trained to. ``predict`` returns
    (batch, members, len(steps), variables, values): ``metadata.outputs`` at each of ``steps``
    (counted in model steps of ``metadata.frequency`` after the last input date). ``forcings``, for
    a model with ``metadata.forcings``, is (batch, members or 1, max(steps), forcings, values): those
    forcings at valid steps 1 .. max(steps); a model that has them and is given none raises ValueError.
    """

    @property
    def metadata(self) -> ModelMetadata: ...

    def predict(
        self, states: np.ndarray, dates: np.ndarray, steps: Sequence[int], forcings: np.ndarray | None = None
    ) -> np.ndarray: ...
