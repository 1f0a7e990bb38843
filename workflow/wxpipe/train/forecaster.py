"""The built-in engine behind :class:`wxpipe.model.Forecaster`: the stencil MLP stepped forward, numpy in and out.

:func:`load` is what :func:`wxpipe.model.load` calls for checkpoints whose engine is ``"wxpipe"``;
:func:`metadata` is what training records about the model it saves.

The forecaster keeps the interface's shapes: ``states`` hold the model's inputs (its prognostic and
forcing variables), the result its outputs (prognostic and diagnostic). Inside, a state holds every
dataset variable the model knows: a diagnostic slot of an input is unused (the normalised 0), and a
forcing slot of a predicted state is filled from ``forcings``, the values the caller gives at each
valid time (the predict stage reads them from the dataset). Computed forcings (local time, season)
the model makes itself from the dates and the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..dataset import Dataset
from ..grid import grid_fingerprint
from ..model import ModelMetadata, Variable
from . import features
from .checkpoint import read_checkpoint
from .model import Hyper, Network, filled
from .variables import Roles

ENGINE = "wxpipe"


class WxpipeForecaster:
    """The :class:`Network` on its grid, rolled forward one model step at a time, on the GPU when there is one."""

    def __init__(
        self, network: Network, metadata: ModelMetadata, latitudes: np.ndarray, longitudes: np.ndarray
    ) -> None:
        if metadata.grid != grid_fingerprint(latitudes, longitudes) or network.hyper.n_points != metadata.points:
            raise ValueError("the network, its grid and its metadata disagree")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.network = network.eval().to(self.device)
        self.latitudes, self.longitudes = latitudes, longitudes
        self._metadata = metadata
        h = network.hyper
        self._inputs, self._outputs, self._forcing = list(h.inputs), list(h.outputs), list(h.forcing)

    @property
    def metadata(self) -> ModelMetadata:
        return self._metadata

    @property
    def memory_mb(self) -> int | None:
        """The GPU's free memory (None on the CPU: the job's memory bounds the batch)."""
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.mem_get_info(self.device)[0] // 2**20)

    @torch.inference_mode()
    def predict(
        self, states: np.ndarray, dates: np.ndarray, steps: Sequence[int], forcings: np.ndarray | None = None
    ) -> np.ndarray:
        """(batch, members, k, inputs, values) at ``dates`` (batch, k) -> (batch, members, len(steps), outputs, values).

        ``forcings`` (batch, members or 1, max(steps), forcings, values): the model's dataset forcings
        (:attr:`ModelMetadata.forcings`) at valid steps 1 .. max(steps), needed when it has any.
        """
        b, m, k, v, n = states.shape
        meta, net = self._metadata, self.network
        if (k, v, n) != (meta.input_steps, len(meta.inputs), meta.points) or dates.shape != (b, k):
            raise ValueError(f"states {states.shape} and dates {dates.shape} do not fit the model")
        if not steps or min(steps) < 1:
            raise ValueError(f"steps must be at least 1, got {list(steps)}")
        given = self._forcings(forcings, b, m, max(steps), n)
        window = torch.zeros((b * m, k, n, net.hyper.n_variables), device=self.device)
        window[..., self._inputs] = self._tensor(states.reshape(b * m, k, v, n).transpose(0, 1, 3, 2))
        window = filled(net.normalise(window))
        step = np.timedelta64(meta.frequency_seconds, "s")
        valid = np.repeat(np.asarray(dates[:, -1], dtype="datetime64[s]"), m)
        out = np.empty((b, m, len(steps), len(meta.outputs), n), dtype=np.float32)
        wanted = {s: j for j, s in enumerate(steps)}
        for s in range(1, max(steps) + 1):
            x = net(window, self._tensor(features.forcings(valid + (s - 1) * step, self.latitudes, self.longitudes)))
            if given is not None:
                f = self._tensor(given[:, s - 1].transpose(0, 2, 1))
                x[..., self._forcing] = filled((f - net.shift[self._forcing]) / net.scale[self._forcing])
            if s in wanted:
                y = net.denormalise(x)[..., self._outputs]
                out[:, :, wanted[s]] = y.cpu().numpy().reshape(b, m, n, -1).transpose(0, 1, 3, 2)
            window = torch.cat([window[:, 1:], x[:, None]], dim=1)
        return out

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(self.device)

    def _forcings(self, given: np.ndarray | None, b: int, m: int, steps: int, n: int) -> np.ndarray | None:
        """The forcings as (batch x members, steps, forcings, values), or None when the model has none."""
        names = self._metadata.forcings
        if not names:
            return None
        if given is None:
            raise ValueError(f"this model needs its forcings {names} at every valid time: pass forcings=")
        want = (b, steps, len(names), n)
        if given.ndim != 5 or given.shape[0] != b or given.shape[1] not in (1, m) or given.shape[2:] != want[1:]:
            raise ValueError(f"forcings {given.shape} do not fit (batch, members, {steps}, {len(names)}, {n})")
        full = np.broadcast_to(given, (b, m, *given.shape[2:])).reshape(b * m, *given.shape[2:])
        return np.asarray(full, dtype=np.float32)


def load(checkpoint: Path) -> WxpipeForecaster:
    c = read_checkpoint(checkpoint)
    return WxpipeForecaster(c.model, c.metadata, c.latitudes, c.longitudes)


def metadata(
    dataset: Dataset,
    roles: Roles,
    hyper: Hyper,
    training_step: int,
    run_id: str | None = None,
    tracking_uri: str | None = None,
) -> ModelMetadata:
    """What a model trained on ``dataset`` is: each dataset variable with its role, its normaliser and the
    dataset's mean and stdev, then the forcings the model computes for itself from the dates and the grid
    (those the dataset also has are listed once, as the dataset's: they are the same fields)."""
    stats = dataset.statistics()
    own = [
        Variable(name, role, mean=float(stats["mean"][i]), stdev=float(stats["stdev"][i]), normaliser=kind)
        for i, (name, role, kind) in enumerate(zip(roles.names, roles.roles, roles.normalisers, strict=True))
    ]
    computed = [Variable(name, "forcing", computed=True) for name in features.FORCING_NAMES if name not in roles.names]
    return ModelMetadata(
        engine=ENGINE,
        variables=(*own, *computed),
        grid=grid_fingerprint(dataset.latitudes, dataset.longitudes),
        points=len(dataset.latitudes),
        frequency_seconds=int(dataset.frequency.total_seconds()),
        dataset_uuid=dataset.source_uuid,
        input_steps=hyper.input_steps,
        training_step=training_step,
        run_id=run_id,
        tracking_uri=tracking_uri,
    )
