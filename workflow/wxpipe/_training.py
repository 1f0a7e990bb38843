"""What a training run learns, as its config says it: variable roles, rollout, normalisers and loss weights.

Re-exported by :mod:`wxpipe.config` (``TrainingConfig`` holds them); kept apart so that module stays small.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import ConfigDict

from ._strict import Name, StrictModel


class VariablesConfig(StrictModel):
    """What each dataset variable is to the model; every variable named in neither list is prognostic."""

    forcing: list[str] | None = pydantic.Field(
        None,
        description="inputs only, never predicted; default: the dataset's constant_fields and the variables its"
        " forcings source computed",
    )
    diagnostic: list[str] = pydantic.Field(default=[], description="outputs only, never inputs (e.g. tp)")


class RolloutConfig(StrictModel):
    """Autoregressive steps the loss is averaged over: ``start``, one more every ``every`` steps, up to ``max``."""

    start: int = pydantic.Field(1, ge=1, description="rollout steps at the first optimiser step")
    max: int = pydantic.Field(1, ge=1, description="the most rollout steps; every sample reaches this far ahead")
    every: int = pydantic.Field(100, gt=0, description="optimiser steps between one more rollout step")

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> RolloutConfig:
        if self.max < self.start:
            raise ValueError(f"rollout max {self.max} is below start {self.start}")
        return self

    def at(self, step: int) -> int:
        """The rollout steps of optimiser step ``step`` (1-based)."""
        return min(self.max, self.start + max(0, step - 1) // self.every)


Normaliser = Literal["mean-std", "std", "min-max", "max", "none"]


class NormaliserConfig(StrictModel):
    """How each variable is scaled for the model (the dataset's statistics): x' = (x - shift) / scale.

    mean-std: (x - mean) / stdev; std: x / stdev; min-max: (x - minimum) / (maximum - minimum);
    max: x / maximum; none: x. A name is a variable (``t_850``) or a parameter (``t``: every level).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    default: Normaliser = "mean-std"
    mean_std: list[str] = pydantic.Field(default=[], alias="mean-std")
    std: list[str] = []
    min_max: list[str] = pydantic.Field(default=[], alias="min-max")
    max: list[str] = []
    none: list[str] = []

    def listed(self) -> dict[str, list[str]]:
        """Each normaliser and the names given it."""
        return {"mean-std": self.mean_std, "std": self.std, "min-max": self.min_max, "max": self.max, "none": self.none}


class PressureLevelScaler(StrictModel):
    """anemoi's ReLU pressure-level scaler: a level's weight is max(minimum, slope x level in hPa)."""

    minimum: float = pydantic.Field(0.2, ge=0)
    slope: float = pydantic.Field(0.001, ge=0)


class LossWeightsConfig(StrictModel):
    """Weights of each output variable in the loss (after the area weights): variable x level.

    ``variables`` maps a variable (``t_850``) or a parameter (``t``) to a weight (default 1); ``levels``
    maps a level (parsed from names like ``t_850``) to a weight, and ``pressure_level`` gives the
    levels not listed a weight from the level itself; variables without a level weigh 1 there.
    """

    variables: dict[str, float] = {}
    levels: dict[int, float] = {}
    pressure_level: PressureLevelScaler | None = None

    @pydantic.field_validator("variables", "levels")
    @classmethod
    def _non_negative(cls, weights: dict[Any, float]) -> dict[Any, float]:
        negative = sorted(str(k) for k, w in weights.items() if w < 0)
        if negative:
            raise ValueError(f"negative weights for {negative}")
        return weights


class LoaderConfig(StrictModel):
    """How training reads its samples: schedule keys (they change speed, never the batches drawn)."""

    workers: int = pydantic.Field(4, gt=0, description="threads reading and decoding chunks, per rank")
    prefetch: int = pydantic.Field(2, gt=0, description="batches read ahead of the optimiser step")
    layout: Name | None = pydantic.Field(
        None,
        description="read this layout of the run's dataset (chunks suited to the samples) instead of the dataset:"
        " its copy at the run's site when a transfer puts it there; predict and evaluate still read the dataset",
    )


#: TrainingConfig keys only the built-in engine reads: set on an anemoi run they are refused (say it in anemoi:)
BUILTIN_ONLY = frozenset(
    {"hidden", "layers", "neighbours", "loss_weights", "loader", "warmup", "min_learning_rate"}
    | {"weight_decay", "fork"}
)


def check_engine(cfg: Any) -> None:
    """Refuse (``ValueError``) an ``anemoi:`` block on a built-in run, and built-in keys set on an anemoi run (those
    whose values differ from their defaults: a job's settings repeat every key): each engine reads its own."""
    engine, fields = cfg.engine, type(cfg).model_fields
    if engine != "anemoi" and cfg.anemoi:
        raise ValueError("anemoi: Hydra overrides are for engine: anemoi")
    changed = [k for k in sorted(BUILTIN_ONLY) if getattr(cfg, k) != fields[k].get_default(call_default_factory=True)]
    if engine == "anemoi" and changed:
        raise ValueError(f"{', '.join(changed)}: the built-in engine's keys; anemoi-training's go in the anemoi block")
