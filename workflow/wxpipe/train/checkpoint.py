"""The built-in engine's checkpoint: weights and grid in a ``torch.save`` archive, the model metadata beside them.

The payload is loaded with ``weights_only`` (no pickled code runs); the :class:`~wxpipe.model.ModelMetadata`
is a JSON member of the same archive, so :func:`wxpipe.model.read_metadata` reads it without torch.
The file is written under a temporary name and renamed, so a killed job never leaves a loadable half-file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import WxpipeError
from ..fsutil import atomic_path
from ..grid import grid_fingerprint
from ..model import ModelMetadata, embed_metadata, read_metadata
from .model import Hyper, Network

CHECKPOINT_FORMAT = 3  # 3: roles, k and per-variable normalisers (format 2 is not read: retrain)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model in eval mode, what it is, and the grid it runs on."""

    model: Network
    metadata: ModelMetadata
    latitudes: np.ndarray
    longitudes: np.ndarray


def save_checkpoint(
    path: Path, model: Network, metadata: ModelMetadata, latitudes: np.ndarray, longitudes: np.ndarray
) -> Path:
    """Write the model, its grid coordinates (forcings need them) and ``metadata`` to ``path``."""
    path = Path(path)
    if metadata.grid != grid_fingerprint(latitudes, longitudes):
        raise ValueError("the metadata's grid is not the grid given")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "hyper": model.hyper.to_dict(),
        "latitudes": torch.as_tensor(np.asarray(latitudes, dtype=np.float64)),
        "longitudes": torch.as_tensor(np.asarray(longitudes, dtype=np.float64)),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
        embed_metadata(tmp, metadata)
    return path


def read_checkpoint(path: Path) -> Checkpoint:
    """Everything a checkpoint holds, loaded without pickle code."""
    metadata = read_metadata(path)
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise WxpipeError(f"{path}: cannot read checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise WxpipeError(
            f"{path}: not a checkpoint of this wxpipe engine (format {found}, this one reads {CHECKPOINT_FORMAT}): "
            "retrain it (`snakemake -R train`)"
        )
    model = Network(Hyper.from_dict(payload["hyper"]))
    model.load_state_dict(payload["model"])
    model.eval()
    lat, lon = payload["latitudes"].numpy(), payload["longitudes"].numpy()
    return Checkpoint(model, metadata, lat, lon)


def load_checkpoint(path: Path) -> tuple[Network, ModelMetadata]:
    """The model (in eval mode) and its metadata."""
    checkpoint = read_checkpoint(path)
    return checkpoint.model, checkpoint.metadata
