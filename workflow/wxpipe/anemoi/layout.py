"""What an anemoi inference checkpoint says of itself, read from its zip archive without torch or anemoi.

anemoi-utils keeps a JSON member ``anemoi-metadata/anemoi.json`` and the grid's ``supporting arrays`` beside the
pickled model. From them come the :class:`Layout` (which variable sits in which column of the model's input and
output tensors, which the worker needs to roll the model out) and the :class:`ModelMetadata` wxpipe embeds in
the checkpoint after training, so that predict and evaluate read an anemoi model like a built-in one.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WxpipeError
from ..grid import grid_fingerprint
from ..model.metadata import ModelMetadata, Role, Variable
from ..timeutil import parse_frequency

ENGINE = "anemoi"
META = "anemoi-metadata/anemoi.json"


def read_meta(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's ``anemoi.json``; an error naming the file when it has none."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            member = next((n for n in archive.namelist() if n.endswith(META)), None)
            if member is None:
                raise WxpipeError(f"{checkpoint}: not an anemoi checkpoint (no {META})")
            meta: dict[str, Any] = json.loads(archive.read(member))
    except (OSError, zipfile.BadZipFile) as exc:
        raise WxpipeError(f"{checkpoint}: cannot read checkpoint ({exc})") from None
    return meta


def supporting_array(checkpoint: Path, meta: dict[str, Any], name: str) -> np.ndarray:
    """One of the arrays anemoi stores beside the model (``latitudes``, ``longitudes``), as raw bytes."""
    entry = ((meta.get("supporting_arrays_paths") or {}).get("data") or {}).get(name)
    if entry is None:
        raise WxpipeError(f"{checkpoint}: the checkpoint keeps no {name!r} array")
    with zipfile.ZipFile(checkpoint) as archive:
        raw = archive.read(entry["path"])
    return np.frombuffer(raw, dtype=entry["dtype"]).reshape(entry["shape"])


@dataclass(frozen=True)
class Layout:
    """The columns of the model's tensors by variable name, and its time window.

    ``inputs`` are the input tensor's columns (anemoi's ``data.input.full``), ``outputs`` the output tensor's
    (``data.output.full``); ``prognostic`` variables are in both and carried from one call's output to the next
    call's input, ``forcings`` are inputs only, given at every step. One call reads ``input_steps`` states and
    predicts ``output_steps`` (each one model step after the previous).
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    prognostic: tuple[str, ...]
    forcings: tuple[str, ...]
    input_steps: int
    output_steps: int = 1

    @classmethod
    def of(cls, meta: dict[str, Any], source: Path | str = "checkpoint") -> Layout:
        try:
            data = meta["data_indices"]["data"]["data"]
            timesteps = meta["metadata_inference"]["data"]["timesteps"]
        except (KeyError, TypeError):
            raise WxpipeError(f"{source}: its anemoi metadata has no data indices (too old an anemoi-models)") from None
        names = {i: name for name, i in data["input"]["name_to_index"].items()}
        if data["input"].get("target") or data["output"].get("target"):
            raise WxpipeError(f"{source}: target-only variables are not supported")

        def pick(indices: list[int]) -> tuple[str, ...]:
            return tuple(names[i] for i in indices)

        return cls(
            inputs=pick(data["input"]["full"]),
            outputs=pick(data["output"]["full"]),
            prognostic=pick(data["input"]["prognostic"]),
            forcings=pick(data["input"]["forcing"]),
            input_steps=len(timesteps["input_relative_date_indices"]),
            output_steps=len(timesteps["output_relative_date_indices"]),
        )

    def positions(self, names: tuple[str, ...], columns: tuple[str, ...]) -> list[int]:
        return [columns.index(n) for n in names]


def model_metadata(checkpoint: Path, dataset_uuid: str, tracking_uri: str | None = None) -> ModelMetadata:
    """The :class:`ModelMetadata` of an anemoi inference checkpoint: every dataset variable with its role and
    normaliser (its statistics live in the model's normaliser), the grid from its supporting arrays."""
    meta = read_meta(checkpoint)
    layout = Layout.of(meta, checkpoint)
    order = meta["data_indices"]["data"]["data"]["input"]["name_to_index"]
    normaliser = meta["config"]["data"]["datasets"]["data"]["processors"].get("normalizer", {}).get("config", {})

    def role(name: str) -> Role:
        if name in layout.forcings:
            return "forcing"
        return "prognostic" if name in layout.prognostic else "diagnostic"

    def kind(name: str) -> str:
        chosen = [k for k, names in normaliser.items() if k != "default" and name in (names or [])]
        return str(chosen[0] if chosen else normaliser.get("default", "mean-std"))

    latitudes, longitudes = (supporting_array(checkpoint, meta, n) for n in ("latitudes", "longitudes"))
    timestep = meta["metadata_inference"]["data"]["timesteps"]["timestep"]
    return ModelMetadata(
        engine=ENGINE,
        variables=tuple(Variable(n, role(n), normaliser=kind(n)) for n in sorted(order, key=order.__getitem__)),
        grid=grid_fingerprint(latitudes, longitudes),
        points=len(latitudes),
        frequency_seconds=int(parse_frequency(timestep).total_seconds()),
        dataset_uuid=dataset_uuid,
        input_steps=layout.input_steps,
        training_step=int((meta.get("training") or {}).get("global_step", 0)),
        run_id=meta.get("run_id"),
        tracking_uri=tracking_uri,
    )
