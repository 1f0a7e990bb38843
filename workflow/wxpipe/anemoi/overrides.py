"""The Hydra overrides of anemoi-training 0.17 for one wxpipe training run.

wxpipe owns what it knows better than a Hydra file: the dataset copy, the periods, the variable roles (from the
same lists as the built-in engine), the run's folders, MLflow, the hardware the rule got and the schedule keys
both engines share. The run's ``anemoi:`` block sets the rest (model, graph, optimiser details) in anemoi's own
keys; a key of it that touches an owned one is an error naming both, never a silent win for either side.
The seed is not a Hydra key: anemoi-training reads ``ANEMOI_BASE_SEED`` (:attr:`Run.environment`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._training import BUILTIN_ONLY as BUILTIN_ONLY
from ..config import TrainingConfig
from ..errors import WxpipeError
from ..roles import forcings, normalisers
from ..timeutil import format_frequency, iso, parse_frequency

PRECISION = {"fp32": "32", "bf16": "bf16-mixed"}  # Lightning's names; anemoi wants a string, "32" not 32
NORMALISERS = ("mean-std", "std", "min-max", "max", "none")
DATASET = "data"  # anemoi 0.17's name of the one dataset of a single-dataset run


@dataclass(frozen=True)
class Run:
    """What wxpipe knows of a run beyond its config: where things are, what the job got."""

    name: str
    dataset: str  # the copy the run reads
    variables: Sequence[str]
    attrs: Mapping[str, Any]  # the dataset's root attributes (variables_metadata, constant_fields, frequency)
    output: str  # the run's folder: checkpoints, logs, plots
    tracking_uri: str
    offline: bool
    accelerator: str = "cpu"  # Lightning's: cuda where torch sees GPUs
    devices: int = 1  # per node: one rank each
    nodes: int = 1

    def environment(self, cfg: TrainingConfig) -> dict[str, str]:
        return {"ANEMOI_BASE_SEED": str(cfg.seed), "MLFLOW_ALLOW_FILE_STORE": "true"}


def owned(cfg: TrainingConfig, run: Run) -> dict[str, Any]:
    """Every key wxpipe sets, with its value."""
    forcing = forcings(run.variables, run.attrs) if cfg.variables.forcing is None else list(cfg.variables.forcing)
    frequency = format_frequency(parse_frequency(run.attrs["frequency"]))
    data, loader, mlflow = f"data.datasets.{DATASET}", "dataloader", "diagnostics.log.mlflow"
    values: dict[str, Any] = {
        "system.input.dataset": run.dataset,
        "system.input.graph": f"{run.output}/graph.pt",  # built from the config on the first start, then reused
        "system.output.root": run.output,
        "system.hardware.accelerator": run.accelerator,
        "system.hardware.num_gpus_per_node": run.devices,
        "system.hardware.num_nodes": run.nodes,
        "data.frequency": frequency,
        "task.timestep": frequency,
        f"{data}.forcing": forcing,
        f"{data}.diagnostic": list(cfg.variables.diagnostic),
        "task.multistep_input": cfg.multistep_input,
        "task.rollout.start": cfg.rollout.start,
        "task.rollout.maximum": cfg.rollout.max,
        "training.max_steps": cfg.steps,
        "training.precision": PRECISION[cfg.precision],
        "training.accum_grad_batches": cfg.accumulate,
        "training.optimization.lr": cfg.learning_rate,
        f"{loader}.batch_size.training": cfg.batch_size,
        # last.ckpt every checkpoint_every steps (anemoi's default saves once an epoch): what a killed run resumes from
        "diagnostics.checkpoint.every_n_train_steps.save_frequency": cfg.checkpoint_every,
        "diagnostics.checkpoint.every_n_train_steps.num_models_saved": 1,
        f"{mlflow}.enabled": True,
        f"{mlflow}.tracking_uri": run.tracking_uri,
        f"{mlflow}.offline": run.offline,
        f"{mlflow}.experiment_name": cfg.mlflow.experiment,
        f"{mlflow}.run_name": run.name,
    }
    kinds = normalisers(tuple(run.variables), cfg.normaliser)
    normaliser = f"{data}.processors.normalizer.config"
    values[f"{normaliser}.default"] = cfg.normaliser.default
    for kind in NORMALISERS:  # each list set whole: anemoi's defaults name variables (sdor, z) a dataset may lack
        values[f"{normaliser}.{kind}"] = [
            v for v, k in zip(run.variables, kinds, strict=True) if k == kind and k != cfg.normaliser.default
        ]
    for split, period in (("training", cfg.train), ("validation", cfg.validation)):
        values[f"{loader}.{split}.datasets.{DATASET}.start"] = iso(period.start)
        values[f"{loader}.{split}.datasets.{DATASET}.end"] = iso(period.end)
    if cfg.gradient_clip is not None:
        values["training.gradient_clip.val"] = cfg.gradient_clip
        values["training.gradient_clip.algorithm"] = "norm"
    return values


def user_overrides(block: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The ``anemoi:`` block as dotted keys: nested mappings flattened (``model: {num_channels: 16}`` and
    ``model.num_channels: 16`` say the same)."""
    flat: dict[str, Any] = {}
    for key, value in block.items():
        dotted = f"{prefix}{key}"
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", str(key)):
            raise WxpipeError(f"anemoi.{dotted}: not a Hydra key (letters, digits, _, - and dots)")
        if isinstance(value, Mapping) and value:
            flat.update(user_overrides(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def overrides(cfg: TrainingConfig, run: Run, where: str) -> list[str]:
    """The command line's overrides: wxpipe's keys, then the ``anemoi:`` block's, each ``++key=value``.
    ``where`` names the run's config section (``training.<run>``) in errors."""
    if cfg.engine != "anemoi":
        raise WxpipeError(f"{where}: engine is {cfg.engine!r}, not 'anemoi'")
    mine, theirs = owned(cfg, run), user_overrides(cfg.anemoi)
    for key in theirs:
        clash = [k for k in mine if k == key or k.startswith(f"{key}.") or key.startswith(f"{k}.")]
        if clash:
            raise WxpipeError(
                f"{where}.anemoi.{key}: wxpipe sets {', '.join(clash)} from the run's config (dataset, periods, "
                f"variables, folders, MLflow, hardware, schedule); set it there, not in the anemoi block"
            )
    return [f"++{k}={hydra_value(v)}" for k, v in {**mine, **theirs}.items()]


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar: strings quoted (paths, dates and ``6h`` alike), lists and mappings
    in brackets, null/true/false."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise WxpipeError(f"cannot pass {value!r} ({type(value).__name__}) to Hydra")
