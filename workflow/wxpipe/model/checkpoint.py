"""The model metadata inside a checkpoint file, readable without the engine that wrote it.

A checkpoint is a zip archive (``torch.save`` writes one); the metadata is one JSON member of it,
``<archive>/wxpipe-model.json``, beside the weights (anemoi-utils keeps its own the same way), so
reading it needs neither torch nor unpickling.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import WxpipeError
from .metadata import ModelMetadata

METADATA_NAME = "wxpipe-model.json"


def read_metadata(checkpoint: str | Path) -> ModelMetadata:
    """The :class:`ModelMetadata` a checkpoint carries; an error for any file that carries none."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == METADATA_NAME]
            if not names:
                raise WxpipeError(
                    f"{checkpoint}: no {METADATA_NAME} in it: not written by a wxpipe engine, or by a wxpipe older "
                    "than its model interface (retrain it: `snakemake -R train`)"
                )
            text = archive.read(names[0]).decode()
    except (OSError, zipfile.BadZipFile) as exc:
        raise WxpipeError(f"{checkpoint}: cannot read checkpoint ({exc})") from None
    try:
        return ModelMetadata.from_json(text)
    except (ValueError, TypeError) as exc:
        raise WxpipeError(f"{checkpoint}: unreadable model metadata ({exc})") from None


def embed_metadata(checkpoint: str | Path, metadata: ModelMetadata) -> None:
    """Add ``metadata`` to a zip checkpoint, inside the archive's top folder as torch lays it out."""
    with zipfile.ZipFile(checkpoint, "a") as archive:
        names = archive.namelist()
        top = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
        archive.writestr(top + METADATA_NAME, metadata.to_json())
