"""The forecaster: x(t + step) = x(t) + f(stencils of x(t-k+1) .. x(t), forcings), one MLP shared by all points.

States hold every dataset variable, in dataset order, normalised (x' = (x - shift) / scale, per
variable's normaliser). The MLP reads the prognostic and forcing variables of the k past states and
writes the prognostic ones as increments scaled by their typical one-step change (residual
prediction) and the diagnostic ones directly; a forcing slot of the next state is a copy of the last
one, which a rollout replaces with the true forcing at the new time (:meth:`Network.with_forcings`).
With its last layer zeroed at start, an untrained model is persistence for the prognostic variables
(and the normalised 0, the mean under mean-std, for diagnostics). The grid (neighbour indices,
offsets), the normalisation and the roles live in buffers, so a state dict and :class:`Hyper` are the
whole model.
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
    """What fixes the shapes of a :class:`Network`; saved in checkpoints to rebuild it.

    ``forcing`` and ``diagnostic`` are indices of dataset variables (the rest are prognostic);
    ``input_steps`` is k, the past states read; ``layers`` the MLP's hidden layers of ``hidden`` units.
    """

    n_variables: int
    n_points: int
    n_neighbours: int
    hidden: int
    n_forcings: int = N_FORCINGS
    layers: int = 2
    input_steps: int = 1
    forcing: tuple[int, ...] = ()
    diagnostic: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if set(self.forcing) & set(self.diagnostic) or not self.prognostic:
            raise ValueError(f"roles overlap or leave no prognostic variable: {self}")

    @property
    def prognostic(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_variables) if i not in self.forcing and i not in self.diagnostic)

    @property
    def inputs(self) -> tuple[int, ...]:
        """The variables the MLP reads: all but the diagnostic ones."""
        return tuple(i for i in range(self.n_variables) if i not in self.diagnostic)

    @property
    def outputs(self) -> tuple[int, ...]:
        """The variables the MLP writes: all but the forcings."""
        return tuple(i for i in range(self.n_variables) if i not in self.forcing)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {**d, "forcing": list(self.forcing), "diagnostic": list(self.diagnostic)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hyper:
        sizes = {k: int(v) for k, v in d.items() if k not in ("forcing", "diagnostic")}
        forcing, diagnostic = (tuple(int(i) for i in d.get(k, ())) for k in ("forcing", "diagnostic"))
        return cls(**sizes, forcing=forcing, diagnostic=diagnostic)


def mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` units with GELU, then a zeroed linear output."""
    blocks: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    last = nn.Linear(width, n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*blocks, last)


class Network(nn.Module):
    """One step forward in normalised space; :meth:`normalise`/:meth:`denormalise` map physical units."""

    neighbours: torch.Tensor
    offsets: torch.Tensor
    shift: torch.Tensor
    scale: torch.Tensor
    tendency: torch.Tensor
    inputs: torch.Tensor
    outputs: torch.Tensor
    keep: torch.Tensor
    forcing: torch.Tensor

    def __init__(self, hyper: Hyper) -> None:
        super().__init__()
        self.hyper = hyper
        v, n, k = hyper.n_variables, hyper.n_points, hyper.n_neighbours
        self.register_buffer("neighbours", torch.zeros((n, k), dtype=torch.long))
        self.register_buffer("offsets", torch.zeros((n, k - 1, 2)))
        self.register_buffer("shift", torch.zeros(v))
        self.register_buffer("scale", torch.ones(v))
        self.register_buffer("tendency", torch.ones(v))
        self.register_buffer("inputs", torch.tensor(hyper.inputs, dtype=torch.long), persistent=False)
        self.register_buffer("outputs", torch.tensor(hyper.outputs, dtype=torch.long), persistent=False)
        self.register_buffer("forcing", _mask(v, hyper.forcing), persistent=False)
        self.register_buffer("keep", ~_mask(v, hyper.diagnostic), persistent=False)  # what a step starts from
        n_in = hyper.input_steps * k * len(hyper.inputs) + 2 * (k - 1) + hyper.n_forcings
        self.net = mlp(n_in, hyper.hidden, hyper.layers, len(hyper.outputs))

    @classmethod
    def build(
        cls,
        hyper: Hyper,
        neighbours: np.ndarray,
        offsets: np.ndarray,
        shift: np.ndarray,
        scale: np.ndarray,
        tendency: np.ndarray,
    ) -> Network:
        """A fresh model on a grid; ``scale`` and ``tendency`` of 0 are taken as 1 (constant fields)."""
        model = cls(hyper)
        model.neighbours.copy_(torch.as_tensor(neighbours, dtype=torch.long))
        model.offsets.copy_(torch.as_tensor(offsets, dtype=torch.float32))
        model.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        model.scale.copy_(torch.as_tensor(safe_scale(scale), dtype=torch.float32))
        model.tendency.copy_(torch.as_tensor(safe_scale(tendency), dtype=torch.float32))
        return model

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Physical -> normalised; NaN stays NaN (:func:`filled` makes inputs of it)."""
        return (x - self.shift) / self.scale

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def with_forcings(self, state: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """``state`` with its forcing slots taken from ``truth`` (the forcings at the state's time)."""
        return torch.where(self.forcing, truth, state)

    def forward(self, x: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
        """The next state from ``x``, (batch, values, variables) at t or (batch, k, values, variables) at
        t-k+1 .. t, normalised and NaN-free; ``forcing`` (batch, values, n_forcings) is computed at t.

        Neighbour values enter as differences from the point, scaled by the typical one-step change,
        so that an advection-like update is a simple function of the inputs.
        """
        window = x if x.dim() == 4 else x.unsqueeze(1)
        b, _, n, _ = window.shape
        last = window[:, -1]
        inputs = window[..., self.inputs]
        stencil = inputs[:, :, self.neighbours]  # (batch, k, values, neighbours, inputs)
        diffs = (stencil[:, :, :, 1:] - inputs.unsqueeze(3)) / self.tendency[self.inputs]
        per_step = torch.cat([inputs, diffs.flatten(3)], dim=-1)  # not reshape(b, ...): a share may be empty
        features = torch.cat(
            [per_step.transpose(1, 2).flatten(2), self.offsets.reshape(1, n, -1).expand(b, -1, -1), forcing], dim=-1
        )
        delta = (self.net(features) * self.tendency[self.outputs]).to(last.dtype)
        return (last * self.keep).index_add(-1, self.outputs, delta)


def _mask(n: int, indices: tuple[int, ...]) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[list(indices)] = True
    return mask


def filled(x: torch.Tensor) -> torch.Tensor:
    """Normalised values with NaN (masked points, e.g. ``sst`` over land) set to 0, the normalised mean."""
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def safe_scale(scale: np.ndarray, tiny: float = 1e-12) -> np.ndarray:
    """A divisor that is never 0 or NaN: such entries (constant fields) become 1."""
    s = np.asarray(scale, dtype=np.float64)
    return np.where(np.isfinite(s) & (s > tiny), s, 1.0)
