"""The anemoi GNN run that make test-anemoi adds to the demo config, and how its tests call Snakemake."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANEMOI = REPO / ".venv-anemoi"
STEPS, EVERY = 400, 100  # ~80 s on this machine's 2 cores: enough to beat persistence on z_500 and msl

GNN: dict[str, Any] = {
    "engine": "anemoi",
    "dataset": "demo",
    "site": "scratch",
    "train": {"start": "2020-01-01T00:00", "end": "2020-02-29T18:00"},
    "validation": {"start": "2020-03-01T00:00", "end": "2020-03-10T18:00"},
    "variables": {"diagnostic": ["tp"]},
    "normaliser": {"default": "mean-std", "std": ["tp"]},
    "multistep_input": 2,
    "steps": STEPS,
    "checkpoint_every": EVERY,
    "batch_size": 2,
    "mlflow": {"experiment": "wxpipe-demo"},
    "anemoi": {
        "diagnostics.log.interval": 10,  # loss points for the curve (anemoi's default: every 100 steps)
        "model.num_channels": 32,
        "model.processor.num_layers": 2,
        "graph.nodes.hidden.node_builder.resolution": 2,
        "diagnostics.plot.callbacks": [],
        "dataloader.num_workers": {"training": 2, "validation": 1},
        "dataloader.limit_batches.validation": 2,
        "training.num_sanity_val_steps": 0,
    },
}


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
