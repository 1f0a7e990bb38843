"""Training with anemoi-training: its ``train`` command run with wxpipe's overrides, continued from its own run
after a kill or a time limit, and its inference checkpoint copied to where the rules expect the model.

The command comes from the rule's environment (conda or container: on PATH) or from ``make anemoi-env``
(``.venv-anemoi/bin``). anemoi-training logs to MLflow offline, to a file store in the run's folder (its
mlflow-skinny has no sqlite), which the ``sync_mlflow`` rule copies to the tracking server like any offline
run. The dataset's attributes are read as JSON, so this module runs in either environment.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainingConfig
from ..errors import WxpipeError
from ..fsutil import atomic_path, atomic_write_text
from ..model.checkpoint import embed_metadata
from .layout import model_metadata, read_meta
from .overrides import Run, hydra_value, overrides

log = logging.getLogger(__name__)

FOLDER = "anemoi"  # beside the checkpoint: anemoi's own checkpoints, logs, graph and offline MLflow store
VENV_BIN = Path(__file__).resolve().parents[3] / ".venv-anemoi" / "bin"


@dataclass(frozen=True)
class Trained:
    run_id: str  # anemoi's, also its MLflow run's
    inference: Path  # anemoi's inference checkpoint, copied to the rule's output
    store: Path  # the offline MLflow file store
    resumed: bool


def executable() -> str:
    """anemoi-training's command: on PATH, else beside this Python (its venv), else ``make anemoi-env``'s."""
    beside = [Path(sys.executable).with_name("anemoi-training"), VENV_BIN / "anemoi-training"]
    found = shutil.which("anemoi-training") or next((str(p) for p in beside if p.exists()), None)
    if found is None:
        raise WxpipeError("anemoi-training is not installed: run `make anemoi-env` (or use envs/train-anemoi.yaml)")
    return found


def gpus_here(ranks: int) -> int:
    """GPUs for anemoi on this node: SLURM's count in a job, else torch's, else none (the CPU); at most ``ranks``
    when the rule asked for more than one."""
    given = os.environ.get("SLURM_GPUS_ON_NODE")
    if given is not None:
        count = int(given)
    else:
        try:
            import torch

            count = torch.cuda.device_count()
        except ImportError:
            count = 0
    return min(count, ranks) if ranks > 1 else min(count, 1)


def dataset_attrs(path: Path) -> dict[str, Any]:
    """A dataset's root attributes from its metadata file (Zarr v2 ``.zattrs`` or v3 ``zarr.json``)."""
    v2, v3 = path / ".zattrs", path / "zarr.json"
    if v2.is_file():
        attrs: dict[str, Any] = json.loads(v2.read_text())
    elif v3.is_file():
        attrs = json.loads(v3.read_text()).get("attributes", {})
    else:
        raise WxpipeError(f"{path}: not a dataset (no .zattrs or zarr.json)")
    if "variables" not in attrs or "frequency" not in attrs:
        raise WxpipeError(f"{path}: its attributes lack variables or frequency")
    return attrs


def last_run(out: Path) -> str | None:
    """The anemoi run whose ``last.ckpt`` a rerun continues from: the newest under ``checkpoint/``."""
    found = sorted((out / "checkpoint").glob("*/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent.name if found else None


def train(
    dataset: Path,
    cfg: TrainingConfig,
    checkpoint: Path,
    name: str,
    *,
    gpus_per_node: int = 0,
    nodes: int = 1,
    tags: dict[str, str] | None = None,
) -> Trained:
    """Train (or continue) the run; copy its inference checkpoint to ``checkpoint`` with wxpipe's model metadata
    embedded; give its MLflow run ``tags``
    (the dataset uuid, git, lineage: what built-in runs carry), which the sync copies with it."""
    out = (checkpoint.parent / FOLDER).resolve()
    out.mkdir(parents=True, exist_ok=True)
    attrs = dataset_attrs(dataset)
    run = Run(
        name=name,
        dataset=str(dataset.resolve()),
        variables=list(attrs["variables"]),
        attrs=attrs,
        output=str(out),
        tracking_uri=str(out / "logs" / "mlflow"),
        offline=True,
        gpus_per_node=gpus_per_node,
        nodes=nodes,
    )
    args = overrides(cfg, run, f"training.{name}")
    previous = last_run(out)
    if previous is not None:
        log.info("continuing anemoi run %s from %s", previous, out / "checkpoint" / previous / "last.ckpt")
        args.append(f"++training.run_id={hydra_value(previous)}")
    command = [executable(), "train", "--config-name=config", *args]
    log.info("%s (in %s)", " ".join(command), out)
    code = subprocess.call(command, cwd=out, env={**os.environ, **run.environment(cfg)})
    if code:
        raise WxpipeError(f"anemoi-training exited with status {code}; its messages are above")
    run_id = last_run(out)
    if run_id is None:
        raise WxpipeError(f"anemoi-training ended without a checkpoint in {out / 'checkpoint'}")
    inference = out / "checkpoint" / run_id / "inference-last.ckpt"
    store = out / "logs" / "mlflow"
    with atomic_path(checkpoint) as tmp:  # with wxpipe's model metadata, for predict (:mod:`.forecaster`)
        shutil.copyfile(inference, tmp)
        embed_metadata(tmp, model_metadata(tmp, str(attrs.get("uuid", "")), f"file:{store}"))
    tag(store, run_id, tags or {})
    atomic_write_text(checkpoint.with_name("loss.json"), json.dumps(loss_history(store, run_id, name), indent=1))
    return Trained(run_id=run_id, inference=inference, store=store, resumed=previous is not None)


def tag(store: Path, run_id: str, tags: dict[str, str]) -> None:
    """Set tags on a run of an MLflow file store: one file per tag under the run's ``tags/``, as MLflow writes them."""
    for folder in store.glob(f"*/{run_id}/tags"):
        for key, value in tags.items():
            atomic_write_text(folder / key, value)


def loss_history(store: Path, run_id: str, name: str) -> dict[str, Any]:
    """The run's loss points from its file store, as the built-in engine writes ``loss.json``: the training loss
    per logged step (per epoch when anemoi logged no step), the validation loss."""
    folders = list(store.glob(f"*/{run_id}/metrics"))
    names = sorted(p.name for p in folders[0].iterdir()) if folders else []
    train = [n for n in names if n.startswith("train_") and n.endswith("loss_step")] or [
        n for n in names if n.startswith("train_") and n.endswith("loss_epoch")
    ]
    validation = [n for n in names if n.startswith("val_") and "loss" in n]
    history: dict[str, Any] = {"run": name, "engine": "anemoi", "persistence": float("nan")}
    for kind, chosen in (("train", train), ("validation", validation)):
        lines = (folders[0] / chosen[0]).read_text().splitlines() if chosen else []
        history[kind] = [[int(step), float(value)] for _, value, step in (line.split() for line in lines)]
    return history


def checkpoint_facts(checkpoint: Path) -> dict[str, Any]:
    """What an anemoi checkpoint says of itself (its ``anemoi-metadata/anemoi.json``): uuid, run id, the resolved
    Hydra config and the versions of the packages that trained it."""
    meta = read_meta(checkpoint)
    modules = (meta.get("provenance_training") or {}).get("module_versions") or {}
    versions = {k: v.get("version") for k, v in modules.items() if k.startswith("anemoi") or k in PACKAGES}
    return {"uuid": meta.get("uuid"), "run_id": meta.get("run_id"), "versions": versions, "config": meta.get("config")}


PACKAGES = ("torch", "pytorch_lightning", "torch_geometric", "hydra")  # recorded beside anemoi's own
