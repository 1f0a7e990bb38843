"""The forecaster: x(t + step) = x(t) + f(stencil of x(t), forcings), one small MLP shared by all points.

Predicting the increment, with the last layer zeroed at start, means an untrained model is exactly
persistence and training can only move it away from there by learning something. The grid
(neighbour indices, offsets) and the normalisation live in buffers, so a state dict is the whole
model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .features import N_FORCINGS


@dataclass(frozen=True)
class Hyper:
    """What fixes the shapes of a :class:`Network`; saved in checkpoints to rebuild it."""

    n_variables: int
    n_points: int
    n_neighbours: int
    hidden: int
    n_forcings: int = N_FORCINGS

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hyper:
        return cls(**{k: int(v) for k, v in d.items()})


class Network(nn.Module):
    """One step forward in normalised space; :meth:`normalise`/:meth:`denormalise` map physical units."""

    neighbours: torch.Tensor
    offsets: torch.Tensor
    mean: torch.Tensor
    stdev: torch.Tensor
    tendency: torch.Tensor

    def __init__(self, hyper: Hyper) -> None:
        super().__init__()
        self.hyper = hyper
        v, n, k = hyper.n_variables, hyper.n_points, hyper.n_neighbours
        self.register_buffer("neighbours", torch.zeros((n, k), dtype=torch.long))
        self.register_buffer("offsets", torch.zeros((n, k - 1, 2)))
        self.register_buffer("mean", torch.zeros(v))
        self.register_buffer("stdev", torch.ones(v))
        self.register_buffer("tendency", torch.ones(v))
        n_in = k * v + 2 * (k - 1) + hyper.n_forcings
        self.net = nn.Sequential(
            nn.Linear(n_in, hyper.hidden),
            nn.GELU(),
            nn.Linear(hyper.hidden, hyper.hidden),
            nn.GELU(),
            nn.Linear(hyper.hidden, v),
        )
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    @classmethod
    def build(
        cls,
        hyper: Hyper,
        neighbours: np.ndarray,
        offsets: np.ndarray,
        mean: np.ndarray,
        stdev: np.ndarray,
        tendency: np.ndarray,
    ) -> Network:
        """A fresh model on a grid; ``stdev`` and ``tendency`` of 0 are taken as 1 (constant fields)."""
        model = cls(hyper)
        model.neighbours.copy_(torch.as_tensor(neighbours, dtype=torch.long))
        model.offsets.copy_(torch.as_tensor(offsets, dtype=torch.float32))
        model.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.stdev.copy_(torch.as_tensor(safe_scale(stdev), dtype=torch.float32))
        model.tendency.copy_(torch.as_tensor(safe_scale(tendency), dtype=torch.float32))
        return model

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.stdev

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.stdev + self.mean

    def forward(self, x: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, values, variables) normalised at t; ``forcing`` (batch, values, 6) at t.

        Neighbour values enter as differences from the point, scaled by the typical one-step change,
        so that an advection-like update is a simple function of the inputs.
        """
        b, n, _ = x.shape
        stencil = x[:, self.neighbours]  # (batch, values, k, variables)
        diffs = (stencil[:, :, 1:] - x.unsqueeze(2)) / self.tendency
        features = torch.cat(
            [
                x,
                diffs.flatten(2),  # not reshape(b, n, -1): a rank's share of a batch may be empty
                self.offsets.reshape(1, n, -1).expand(b, -1, -1),
                forcing,
            ],
            dim=-1,
        )
        step: torch.Tensor = self.net(features) * self.tendency
        return x + step


def safe_scale(scale: np.ndarray, tiny: float = 1e-12) -> np.ndarray:
    """A divisor that is never 0 or NaN: such entries (constant fields) become 1."""
    s = np.asarray(scale, dtype=np.float64)
    return np.where(np.isfinite(s) & (s > tiny), s, 1.0)
