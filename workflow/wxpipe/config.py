"""The workflow configuration (``config/config.yaml``), validated strictly before any job runs.

Relative paths are relative to the working directory, as everywhere in Snakemake.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic

from ._evaluation import ClimatologyConfig as ClimatologyConfig
from ._evaluation import MapsConfig as MapsConfig
from ._evaluation import ReferenceConfig as ReferenceConfig
from ._evaluation import RegionConfig as RegionConfig
from ._sites import SiteConfig as SiteConfig
from ._sites import TransferConfig as TransferConfig
from ._strict import Frequency, Name, Period, StrictModel
from ._training import LoaderConfig as LoaderConfig
from ._training import LossWeightsConfig as LossWeightsConfig
from ._training import NormaliserConfig as NormaliserConfig
from ._training import RolloutConfig as RolloutConfig
from ._training import VariablesConfig as VariablesConfig
from ._training import check_engine
from .errors import validation_error
from .yamlio import Location, load_with_lines


class DemoConfig(StrictModel):
    """The embedded demo archive: synthetic but structured weather written as GRIB2 by ecCodes."""

    out: Path = Path("results/demo/grib")
    start: dt.datetime
    end: dt.datetime
    frequency: Frequency = dt.timedelta(hours=6)
    grid: Literal["O32", "O48"] = "O32"
    seed: int = 0


class StatisticsConfig(StrictModel):
    """How the statistics stage runs for one dataset; changing it reruns statistics, never the dataset."""

    start: dt.datetime | None = pydantic.Field(None, description="first date; default: the recipe's statistics period")
    end: dt.datetime | None = pydantic.Field(None, description="last date; default: the recipe's statistics period")
    parts: int = pydantic.Field(2, ge=1, description="statistics jobs; each reads a chunk-aligned range of dates")

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> StatisticsConfig:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"statistics end {self.end} is before start {self.start}")
        return self


class DatasetConfig(StrictModel):
    recipe: Path
    parts: int = pydantic.Field(2, ge=1, description="load jobs; each writes a chunk-aligned range of dates")
    statistics: StatisticsConfig = StatisticsConfig.model_validate({})


class Extent(StrictModel):
    """Dates and grid points of a chunk or a shard (every variable and member is always in one)."""

    dates: int = pydantic.Field(gt=0, description="dates")
    values: int = pydantic.Field(gt=0, description="grid points")

    def arg(self) -> str:
        return f"dates={self.dates},values={self.values}"


class LayoutConfig(StrictModel):
    """Another chunking of a dataset, for models that read it in another pattern (e.g. time series)."""

    dataset: Name
    chunks: Extent = pydantic.Field(description="dates and grid points per chunk")
    zarr_format: Literal[2, 3] = pydantic.Field(2, description="3 is needed for shards; stock anemoi reads 2")
    shards: Extent | None = pydantic.Field(
        None, description="dates and grid points per shard (whole multiples of the chunks; Zarr v3): fewer files"
    )
    parts: int = pydantic.Field(2, ge=1, description="rechunk jobs; each writes a disjoint share of the target chunks")

    @pydantic.model_validator(mode="after")
    def _shards(self) -> LayoutConfig:
        if self.shards is not None:
            if self.zarr_format != 3:
                raise ValueError("shards need zarr_format: 3")
            if self.shards.dates % self.chunks.dates or self.shards.values % self.chunks.values:
                raise ValueError(f"shards {self.shards.arg()} are not whole multiples of chunks {self.chunks.arg()}")
        return self


class MlflowConfig(StrictModel):
    """Where a run is logged. Credentials never go here (this slice reaches shell commands and records):
    MLflow reads them from ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``/``_TOKEN`` in the job's environment."""

    tracking_uri: str | None = pydantic.Field(
        default=None,
        description="default: the MLFLOW_TRACKING_URI environment variable, else sqlite:///results/mlflow.db",
    )
    experiment: str = "wxpipe"
    mode: Literal["online", "offline", "fallback"] = pydantic.Field(
        "online",
        description="offline: log to a store beside the model (compute nodes without internet), copied to the "
        "server by the sync_mlflow rule after the job; fallback: online when the server answers, else offline",
    )

    @pydantic.field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, uri: str | None) -> str | None:
        from .tracking import CREDENTIALS, has_credentials, redact

        if uri is not None and has_credentials(uri):
            raise ValueError(f"{redact(uri)} with user:password@ would reach shell commands and records; {CREDENTIALS}")
        return uri


class TrainingConfig(StrictModel):
    """A forecaster: x(t+step) from k past states of x and their grid neighbours, trained on one dataset.

    The schedule keys (``SCHEDULE``: how long, how fast, how exactly, from where and logged where) may
    change between a run stopped part-way and its rerun, which continues under the new values. Every
    other key (model, variables, normaliser, loss weights, multistep_input, rollout, data, periods,
    seed) is the run's identity: a saved training state is continued only under the same values.
    """

    SCHEDULE: ClassVar[frozenset[str]] = frozenset(
        {
            *("steps", "batch_size", "learning_rate", "warmup", "min_learning_rate", "weight_decay"),
            *("gradient_clip", "accumulate", "precision", "checkpoint_every", "site", "mlflow", "loader", "fork"),
        }
    )

    dataset: Name
    site: Name | None = pydantic.Field(
        None, description="read the dataset from this file: site's copy (it must be in transfers), not results/"
    )
    train: Period
    validation: Period
    steps: int = pydantic.Field(300, gt=0, description="optimiser steps; raising it resumes a run and trains longer")
    batch_size: int = pydantic.Field(4, gt=0, description="samples per rank and micro-batch")
    accumulate: int = pydantic.Field(
        1, gt=0, description="micro-batches per optimiser step (gradient accumulation): batch_size x accumulate x ranks"
    )
    learning_rate: float = pydantic.Field(1e-3, gt=0, description="peak of the schedule: after warmup, cosine decay")
    warmup: int = pydantic.Field(0, ge=0, description="steps of linear warmup from 0 to learning_rate")
    min_learning_rate: float | None = pydantic.Field(
        None, ge=0, description="the rate the cosine decays to at the last step; default learning_rate / 10"
    )
    weight_decay: float = pydantic.Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    gradient_clip: float | None = pydantic.Field(
        None, gt=0, description="clip the gradients' global norm to this (none: no clipping)"
    )
    precision: Literal["fp32", "bf16"] = pydantic.Field(
        "fp32", description="bf16: the forward pass under bfloat16 autocast (weights and optimiser stay fp32)"
    )
    checkpoint_every: int = pydantic.Field(
        100, gt=0, description="steps between saves of the training state a killed run resumes from"
    )
    variables: VariablesConfig = VariablesConfig.model_validate({})
    multistep_input: int = pydantic.Field(1, gt=0, description="past states the model reads (k): t-k+1 .. t")
    rollout: RolloutConfig = RolloutConfig.model_validate({})
    normaliser: NormaliserConfig = NormaliserConfig()
    loss_weights: LossWeightsConfig = LossWeightsConfig()
    hidden: int = pydantic.Field(64, gt=0, description="width of the MLP's hidden layers")
    layers: int = pydantic.Field(2, gt=0, description="hidden layers of the MLP (its depth)")
    neighbours: int = pydantic.Field(9, gt=0)
    seed: int = 0
    fork: bool = pydantic.Field(
        False,
        description="when an identity key changed since the saved state: train a new run (a fork) starting from "
        "the state's weights where they fit, rather than refusing",
    )
    mlflow: MlflowConfig = MlflowConfig.model_validate({})
    loader: LoaderConfig = LoaderConfig.model_validate({})
    engine: Literal["wxpipe", "anemoi"] = pydantic.Field(
        "wxpipe", description="anemoi: train with anemoi-training in its own environment (make anemoi-env)"
    )
    anemoi: dict[str, Any] = pydantic.Field(
        default={},
        description="anemoi-training's Hydra overrides (dotted keys) but those wxpipe sets, for engine: anemoi",
    )

    @pydantic.model_validator(mode="after")
    def _engine(self) -> TrainingConfig:
        check_engine(self)
        return self

    @property
    def offsets(self) -> tuple[int, ...]:
        """The dates a sample reads, relative to its start: the k inputs and every rollout target."""
        return tuple(range(1 - self.multistep_input, self.rollout.max + 1))


class EvaluationConfig(StrictModel):
    period: Period
    leads: list[int] = pydantic.Field(default=[1, 2, 4], min_length=1, description="lead times in dataset steps")
    allow_overlap: bool = pydantic.Field(
        False,
        description="score although the period overlaps a run's training or validation period or the statistics "
        "period (the overlap is recorded with the scores); refused otherwise",
    )
    overlap: list[str] = pydantic.Field(
        default=[],
        description="set by the config check, never by hand: the overlaps allow_overlap let through, recorded with "
        "the scores",
    )
    other_datasets: dict[Name, str] = pydantic.Field(
        default={},
        description="run name -> dataset uuid: score that run on the store holding that dataset although it was "
        "trained on another (recorded with the scores); any other dataset than its own (or a copy) is refused",
    )
    mlflow: MlflowConfig = pydantic.Field(
        default_factory=lambda: MlflowConfig.model_validate({}),
        description="where evaluation runs are logged (each its own run, linked to the training run)",
    )
    regions: dict[Name, RegionConfig] = pydantic.Field(default={}, description="boxes scored beside the standard")
    climatology: ClimatologyConfig | None = pydantic.Field(None, description="the climatology baseline, ACC's too")
    reference: ReferenceConfig | None = pydantic.Field(None, description="another model's forecasts, as a baseline")
    baseline: str = pydantic.Field(
        "persistence", description="skill against: persistence, climatology, the reference's name or a run's"
    )
    maps: MapsConfig = pydantic.Field(default_factory=lambda: MapsConfig.model_validate({}))
    bootstrap: int = pydantic.Field(
        1000, ge=100, description="paired-bootstrap resamples of the initial dates for the scorecards' significance"
    )
    compare: list[Name] = pydantic.Field(
        default=[], description="training runs put side by side by the compare target; empty: every run"
    )


class Config(StrictModel):
    demo: DemoConfig | None = None
    datasets: dict[Name, DatasetConfig]
    layouts: dict[Name, LayoutConfig] = {}
    sites: dict[Name, SiteConfig] = {}
    transfers: list[TransferConfig] = []
    training: dict[Name, TrainingConfig] = {}
    evaluation: EvaluationConfig | None = None

    @pydantic.model_validator(mode="after")
    def _references(self) -> Config:
        for name, layout in self.layouts.items():
            if layout.dataset not in self.datasets:
                raise ValueError(f"layouts.{name}.dataset: no dataset {layout.dataset!r}")
        seen: set[tuple[str, str]] = set()
        for i, t in enumerate(self.transfers):
            if t.dataset is not None and t.dataset not in self.datasets:
                raise ValueError(f"transfers.{i}.dataset: no dataset {t.dataset!r}")
            if t.layout is not None and t.layout not in self.layouts:
                raise ValueError(f"transfers.{i}.layout: no layout {t.layout!r}")
            if t.model is not None and t.model not in self.training:
                raise ValueError(f"transfers.{i}.model: no training run {t.model!r}")
            if t.site not in self.sites:
                raise ValueError(f"transfers.{i}.site: no site {t.site!r}")
            if (t.site, t.name) in seen:
                raise ValueError(f"transfers.{i}: {t.name!r} is copied to site {t.site!r} twice")
            seen.add((t.site, t.name))
        for name, run in self.training.items():
            if run.dataset not in self.datasets:
                raise ValueError(f"training.{name}.dataset: no dataset {run.dataset!r}")
            if run.site is not None:
                if run.site not in self.sites or self.sites[run.site].scheme != "file":
                    raise ValueError(f"training.{name}.site: {run.site!r} is not a file: site in sites")
                if not any(t.dataset == run.dataset and t.site == run.site for t in self.transfers):
                    raise ValueError(f"training.{name}.site: no transfer of dataset {run.dataset!r} to {run.site!r}")
            lay = run.loader.layout
            if lay is not None and lay not in self.layouts:
                raise ValueError(f"training.{name}.loader.layout: no layout {lay!r}")
            if lay is not None and self.layouts[lay].dataset != run.dataset:
                of = self.layouts[lay].dataset
                raise ValueError(f"training.{name}.loader.layout: {lay!r} is a layout of {of!r}, not {run.dataset!r}")
        if self.training and self.evaluation is None:
            raise ValueError("training runs need an evaluation section")
        return self

    @pydantic.model_validator(mode="after")
    def _unseen(self) -> Config:
        """Scores on dates no run trained, validated or normalised on (:mod:`wxpipe.guards`); the overlaps
        ``allow_overlap`` lets through go to the evaluation jobs in ``evaluation.overlap``."""
        from ._evaluation import check_evaluation
        from .guards import check_periods

        if self.evaluation is None:
            return self
        check_evaluation(self)
        for run in self.evaluation.other_datasets:
            if run not in self.training:
                raise ValueError(f"evaluation.other_datasets.{run}: no training run {run!r}")
        found = check_periods(self)
        object.__setattr__(self, "evaluation", self.evaluation.model_copy(update={"overlap": found}))
        return self


def validate_config(data: Mapping[str, Any], sources: Sequence[str | Path] = ()) -> Config:
    """Validate a config dict (as Snakemake loaded it); errors name the config file and line."""
    try:
        return Config.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        lines: dict[Location, int] = {}
        for src in sources:  # later files override earlier ones, as in Snakemake
            lines.update(load_with_lines(src)[1])
        where = " or ".join(str(s) for s in sources) or "config"
        raise validation_error(exc, sources[-1] if len(sources) == 1 else where, lines) from None


def load_config(path: str | Path) -> Config:
    data, _ = load_with_lines(path, "config")
    return validate_config(data, [path])


def export_schemas(folder: Path) -> list[Path]:
    """Write the JSON schemas of the config and the recipe (a test keeps them in sync)."""
    from .recipe import Recipe

    out = []
    models: list[tuple[str, type[pydantic.BaseModel]]] = [("config", Config), ("recipe", Recipe)]
    for name, model in models:
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out


def params_of(model: pydantic.BaseModel) -> dict[str, Any]:
    """A JSON-ready slice of config, for Snakemake ``params:`` and lineage records."""
    data: dict[str, Any] = json.loads(model.model_dump_json())
    return data
