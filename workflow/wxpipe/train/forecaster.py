"""The built-in engine behind :class:`wxpipe.model.Forecaster`: the stencil MLP stepped forward, numpy in and out.

:func:`load` is what :func:`wxpipe.model.load` calls for checkpoints whose engine is ``"wxpipe"``;
:func:`metadata` is what training records about the model it saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..dataset import Dataset
from ..grid import grid_fingerprint
from ..model import ModelMetadata, Variable
from .checkpoint import read_checkpoint
from .features import FORCING_NAMES, forcings
from .model import Network, safe_scale

ENGINE = "wxpipe"


class WxpipeForecaster:
    """The :class:`Network` on its grid, rolled forward one model step at a time on the CPU."""

    def __init__(
        self, network: Network, metadata: ModelMetadata, latitudes: np.ndarray, longitudes: np.ndarray
    ) -> None:
        if metadata.grid != grid_fingerprint(latitudes, longitudes) or network.hyper.n_points != metadata.points:
            raise ValueError("the network, its grid and its metadata disagree")
        self.network = network.eval()
        self.latitudes, self.longitudes = latitudes, longitudes
        self._metadata = metadata

    @property
    def metadata(self) -> ModelMetadata:
        return self._metadata

    @torch.inference_mode()
    def predict(self, states: np.ndarray, dates: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        """(batch, members, 1, variables, values) at ``dates`` (batch, 1) -> (batch, members, len(steps), ...)."""
        b, m, k, v, n = states.shape
        meta, net = self._metadata, self.network
        if (k, v, n) != (meta.input_steps, len(meta.inputs), meta.points) or dates.shape != (b, k):
            raise ValueError(f"states {states.shape} and dates {dates.shape} do not fit the model")
        if not steps or min(steps) < 1:
            raise ValueError(f"steps must be at least 1, got {list(steps)}")
        step = np.timedelta64(meta.frequency_seconds, "s")
        valid = np.repeat(np.asarray(dates[:, -1], dtype="datetime64[s]"), m)
        current = states[:, :, -1].reshape(b * m, v, n).transpose(0, 2, 1)
        x = net.normalise(torch.from_numpy(np.ascontiguousarray(current, dtype=np.float32)))
        out = np.empty((b, m, len(steps), v, n), dtype=np.float32)
        wanted = {s: j for j, s in enumerate(steps)}
        for s in range(1, max(steps) + 1):
            x = net(x, torch.from_numpy(forcings(valid + (s - 1) * step, self.latitudes, self.longitudes)))
            if s in wanted:
                out[:, :, wanted[s]] = net.denormalise(x).numpy().reshape(b, m, n, v).transpose(0, 1, 3, 2)
        return out


def load(checkpoint: Path) -> WxpipeForecaster:
    c = read_checkpoint(checkpoint)
    return WxpipeForecaster(c.model, c.metadata, c.latitudes, c.longitudes)


def metadata(
    dataset: Dataset, training_step: int, run_id: str | None = None, tracking_uri: str | None = None
) -> ModelMetadata:
    """What a model trained on ``dataset`` is: every dataset variable prognostic, normalised by the
    dataset's statistics, plus the forcings the model computes for itself from dates and the grid."""
    stats = dataset.statistics()
    mean, stdev = np.asarray(stats["mean"], dtype=np.float64), safe_scale(stats["stdev"])
    prognostic = [
        Variable(name, "prognostic", mean=float(mean[i]), stdev=float(stdev[i]))
        for i, name in enumerate(dataset.variables)
    ]
    computed = [Variable(name, "forcing", computed=True) for name in FORCING_NAMES]
    return ModelMetadata(
        engine=ENGINE,
        variables=(*prognostic, *computed),
        grid=grid_fingerprint(dataset.latitudes, dataset.longitudes),
        points=len(dataset.latitudes),
        frequency_seconds=int(dataset.frequency.total_seconds()),
        dataset_uuid=dataset.uuid,
        input_steps=1,
        training_step=training_step,
        run_id=run_id,
        tracking_uri=tracking_uri,
    )
