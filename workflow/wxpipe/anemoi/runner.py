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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainingConfig
from ..errors import WxpipeError
from ..fsutil import atomic_path, atomic_write_text, store_attrs
from ..launch import srun_prefix
from ..model.checkpoint import embed_metadata
from .layout import model_metadata, read_meta
from .overrides import Run, hydra_value, overrides
from .pins import ROOT

log = logging.getLogger(__name__)

FOLDER = "anemoi"  # beside the checkpoint: anemoi's own checkpoints, logs, graph and offline MLflow store
VENV_BIN = ROOT / ".venv-anemoi" / "bin"


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


@dataclass(frozen=True)
class Hardware:
    """Where anemoi trains: ``devices`` per node (GPUs, else CPU processes), one rank each; ``launcher`` is the srun
    line that starts the ranks in a SLURM job (None: Lightning starts them itself, on this node)."""

    accelerator: str
    devices: int
    nodes: int
    launcher: list[str] | None


def hardware(ranks: int, cpus_per_rank: int = 1, environ: Mapping[str, str] | None = None) -> Hardware:
    """The job's hardware for ``ranks`` ranks (the rule's tasks). In a SLURM job srun starts one task per rank and
    Lightning reads SLURM's variables, which need devices x nodes = tasks; the job's warning signal reaches the
    tasks of a step, so even one rank is started by srun. Elsewhere, this node's GPUs, at most ``ranks``."""
    env = os.environ if environ is None else environ
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    nodes = int(env.get("SLURM_JOB_NUM_NODES") or 1)
    launcher = srun_prefix(ranks, cpus_per_rank, env, per_node=ranks // nodes)
    if launcher is None:
        return Hardware("cuda" if gpus else "cpu", max(1, min(gpus, ranks)), 1, None)
    if ranks % nodes:
        raise WxpipeError(f"{ranks} ranks do not split evenly over the job's {nodes} nodes")
    return Hardware("cuda" if gpus else "cpu", ranks // nodes, nodes, launcher)


def dataset_attrs(path: Path) -> dict[str, Any]:
    """A dataset's root attributes from its metadata file (Zarr v2 ``.zattrs`` or v3 ``zarr.json``)."""
    attrs = store_attrs(path)
    if attrs is None:
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
    hardware: Hardware | None = None,
    tags: dict[str, str] | None = None,
) -> Trained:
    """Train (or continue) the run; copy its inference checkpoint to ``checkpoint`` with wxpipe's model metadata
    embedded; give its MLflow run ``tags``
    (the dataset uuid, git, lineage: what built-in runs carry), which the sync copies with it."""
    out = (checkpoint.parent / FOLDER).resolve()
    out.mkdir(parents=True, exist_ok=True)
    where = hardware or Hardware("cpu", 1, 1, None)
    attrs = dataset_attrs(dataset)
    run = Run(
        name=name,
        dataset=str(dataset.resolve()),
        variables=list(attrs["variables"]),
        attrs=attrs,
        output=str(out),
        tracking_uri=str(out / "logs" / "mlflow"),
        offline=True,
        accelerator=where.accelerator,
        devices=where.devices,
        nodes=where.nodes,
    )
    args = overrides(cfg, run, f"training.{name}")
    previous = last_run(out)
    if previous is not None:
        log.info("continuing anemoi run %s from %s", previous, out / "checkpoint" / previous / "last.ckpt")
        args.append(f"++training.run_id={hydra_value(previous)}")
    command = [*(where.launcher or []), executable(), "train", "--config-name=config", *args]
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


def run_folders(store: Path, run_id: str) -> list[Path]:
    """The run's folders in an MLflow file store: its own, then those of its children (anemoi starts a child run
    each time it continues a run), oldest first."""
    own = list(store.glob(f"*/{run_id}"))
    children = [p.parents[1] for p in store.glob("*/*/tags/mlflow.parentRunId") if p.read_text().strip() == run_id]
    return own + sorted(children, key=lambda p: (p / "meta.yaml").stat().st_mtime if (p / "meta.yaml").exists() else 0)


def tag(store: Path, run_id: str, tags: dict[str, str]) -> None:
    """Set tags on a run of an MLflow file store and on its children: one file per tag under a run's ``tags/``, as
    MLflow writes them."""
    for folder in run_folders(store, run_id):
        for key, value in tags.items():
            atomic_write_text(folder / "tags" / key, value)


def loss_history(store: Path, run_id: str, name: str) -> dict[str, Any]:
    """The run's loss points from its file store (its child runs' too: a continued run's), as the built-in engine
    writes ``loss.json``: the training loss per logged step (per epoch when anemoi logged no step), the validation
    loss; a step logged twice (before a kill, again after) keeps its last value."""
    metrics = [f / "metrics" for f in run_folders(store, run_id) if (f / "metrics").is_dir()]
    names = sorted({p.name for folder in metrics for p in folder.iterdir()})
    train = [n for n in names if n.startswith("train_") and n.endswith("loss_step")] or [
        n for n in names if n.startswith("train_") and n.endswith("loss_epoch")
    ]
    validation = [n for n in names if n.startswith("val_") and "loss" in n]
    history: dict[str, Any] = {"run": name, "engine": "anemoi", "persistence": float("nan")}
    for kind, chosen in (("train", train), ("validation", validation)):
        points: dict[int, float] = {}
        for folder in metrics:
            lines = (folder / chosen[0]).read_text().splitlines() if chosen and (folder / chosen[0]).is_file() else []
            points.update({int(step): float(value) for _, value, step in (line.split() for line in lines)})
        history[kind] = [[step, points[step]] for step in sorted(points)]
    return history


def checkpoint_facts(checkpoint: Path) -> dict[str, Any]:
    """What an anemoi checkpoint says of itself (its ``anemoi-metadata/anemoi.json``): uuid, run id, the resolved
    Hydra config and the versions of the packages that trained it."""
    meta = read_meta(checkpoint)
    modules = (meta.get("provenance_training") or {}).get("module_versions") or {}
    versions = {k: v.get("version") for k, v in modules.items() if k.startswith("anemoi") or k in PACKAGES}
    return {"uuid": meta.get("uuid"), "run_id": meta.get("run_id"), "versions": versions, "config": meta.get("config")}


PACKAGES = ("torch", "pytorch_lightning", "torch_geometric", "hydra")  # recorded beside anemoi's own
