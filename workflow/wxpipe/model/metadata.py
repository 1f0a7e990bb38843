"""What a trained model is, in one flat record that every engine writes and evaluation can read.

anemoi spreads this over a nested checkpoint dictionary read through dozens of accessors; here it
is one frozen dataclass with a JSON round trip, small enough to read in a forecasts file's attrs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, get_args
from urllib.parse import urlsplit

Role = Literal["prognostic", "forcing", "diagnostic", "constant"]
NORMALISERS = ("mean-std", "std", "min-max", "max", "none")
VERSION = 1
_T = TypeVar("_T")


@dataclass(frozen=True)
class Variable:
    """One field the model reads or writes, and how the model normalises it.

    ``prognostic``: read at the input dates and predicted; ``diagnostic``: predicted only;
    ``forcing``: read at every step, never predicted; ``constant``: read once. A ``computed``
    variable is made by the engine from the dates and the grid (e.g. the local time), so no
    dataset has to provide it. ``mean`` and ``stdev`` are the training dataset's; ``normaliser`` says
    how the model scaled the variable with its statistics (anemoi's names: mean-std, std, min-max,
    max, none).
    """

    name: str
    role: Role
    computed: bool = False
    mean: float | None = None
    stdev: float | None = None
    normaliser: str | None = None

    def __post_init__(self) -> None:
        if self.role not in get_args(Role):
            raise ValueError(f"variable {self.name!r}: role {self.role!r} is not one of {get_args(Role)}")
        if self.normaliser not in (None, *NORMALISERS):
            raise ValueError(f"variable {self.name!r}: normaliser {self.normaliser!r} is not one of {NORMALISERS}")


@dataclass(frozen=True)
class ModelMetadata:
    """A model's contract: its variables and grid, its time step and input window, and where it came from.

    ``grid`` is :func:`wxpipe.grid.grid_fingerprint` of the latitudes and longitudes it was trained
    on; ``frequency_seconds`` is one model step; ``input_steps`` the past states it takes (k);
    ``training_step`` the optimiser step it was saved at. ``run_id`` and ``tracking_uri`` name its
    MLflow run (the URI never holds credentials); ``lineage`` is the checkpoint's lineage id, once known.
    """

    engine: str
    variables: tuple[Variable, ...]
    grid: str
    points: int
    frequency_seconds: int
    dataset_uuid: str
    input_steps: int = 1
    training_step: int = 0
    run_id: str | None = None
    tracking_uri: str | None = None
    lineage: str | None = None
    version: ClassVar[int] = VERSION

    def __post_init__(self) -> None:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError(f"variable names repeat: {names}")
        if not self.outputs:
            raise ValueError("a model predicts at least one prognostic or diagnostic variable")
        if self.input_steps < 1 or self.points < 1 or self.frequency_seconds < 1:
            raise ValueError("input_steps, points and frequency_seconds must be positive")
        if self.tracking_uri and urlsplit(self.tracking_uri).password is not None:
            raise ValueError("tracking_uri holds a password: record it redacted (wxpipe.tracking.redact)")

    @property
    def inputs(self) -> list[str]:
        """The variables a caller provides, in order: every one the model reads that it does not compute."""
        return [v.name for v in self.variables if v.role != "diagnostic" and not v.computed]

    @property
    def forcings(self) -> list[str]:
        """The inputs a caller provides at every valid time of a forecast, not just at the input dates."""
        return [v.name for v in self.variables if v.role == "forcing" and not v.computed]

    @property
    def outputs(self) -> list[str]:
        """The variables the model predicts, in order: prognostic then diagnostic as listed."""
        return [v.name for v in self.variables if v.role in ("prognostic", "diagnostic")]

    @property
    def frequency(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.frequency_seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """The inverse of :meth:`to_dict`; unknown or missing keys are errors, not guesses."""
        fields = dict(data)
        version = fields.pop("version", None)
        if version != VERSION:
            raise ValueError(f"model metadata version {version!r}, this wxpipe reads version {VERSION}")
        variables = tuple(_build(Variable, v) for v in fields.pop("variables", ()))
        return _build(cls, {**fields, "variables": variables})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        return cls.from_dict(json.loads(text))


def _build(cls: type[_T], data: Mapping[str, Any]) -> _T:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
    return cls(**data)
