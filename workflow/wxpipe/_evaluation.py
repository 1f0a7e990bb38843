"""What an evaluation scores beyond its period and leads: regions, the climatology, a reference forecast, maps.

Re-exported by :mod:`wxpipe.config` (``EvaluationConfig`` holds them); kept apart so that module stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic

from ._strict import Name, Period, StrictModel

if TYPE_CHECKING:
    from .config import Config


class RegionConfig(StrictModel):
    """A lat/lon box scored on its own; ``lon`` west to east in degrees, crossing 180 when west > east."""

    lat: tuple[float, float] = pydantic.Field(description="south, north (degrees)")
    lon: tuple[float, float] = pydantic.Field((-180.0, 180.0), description="west, east (degrees)")

    @pydantic.model_validator(mode="after")
    def _box(self) -> RegionConfig:
        south, north = self.lat
        if not -90 <= south < north <= 90:
            raise ValueError(f"lat must be [south, north] within -90 .. 90, got {list(self.lat)}")
        if any(not -180 <= x <= 360 for x in self.lon):
            raise ValueError(f"lon must be [west, east] within -180 .. 360, got {list(self.lon)}")
        return self


class ClimatologyConfig(StrictModel):
    """The climatology baseline and ACC's reference: a mean by day of year and hour of day over ``period``."""

    period: Period = pydantic.Field(description="dates averaged; must not overlap evaluation.period")
    window: int = pydantic.Field(
        31, ge=1, le=183, description="days of year averaged around each day (odd; 1: no smoothing)"
    )

    @pydantic.model_validator(mode="after")
    def _odd(self) -> ClimatologyConfig:
        if self.window % 2 == 0:
            raise ValueError(f"window must be an odd number of days, got {self.window}")
        return self


class ReferenceConfig(StrictModel):
    """Another model's forecasts scored beside the run's: per lead (in steps), a dataset of the config whose
    dates are the forecasts' valid times."""

    name: Name = pydantic.Field(description="the baseline's name in scores and scorecards")
    leads: dict[int, Name] = pydantic.Field(min_length=1, description="lead in steps -> dataset")


class MapsConfig(StrictModel):
    variables: list[str] = pydantic.Field(default=[], description="variables drawn as error and bias maps")
    leads: list[int] = pydantic.Field(default=[], description="leads (steps) drawn; empty: the longest scored")


def check_evaluation(cfg: Config) -> None:
    """Refuse (``ValueError``, as a config validator raises) what an evaluation cannot score: a climatology period
    that overlaps the evaluation period, names of datasets, runs, baselines or leads the config lacks."""
    ev = cfg.evaluation
    if ev is None:
        return
    if ev.climatology is not None:
        from .guards import span_text

        clim, period = ev.climatology.period, ev.period
        if clim.start <= period.end and period.start <= clim.end:
            raise ValueError(
                f"evaluation.climatology.period {span_text((clim.start, clim.end))} overlaps evaluation.period "
                f"{span_text((period.start, period.end))}: a climatology must not see the dates it is scored on"
            )
    for what, leads in (("reference.leads", ev.reference.leads if ev.reference else {}), ("maps.leads", ev.maps.leads)):
        extra = sorted(set(leads) - set(ev.leads))
        if extra:
            raise ValueError(f"evaluation.{what}: leads {extra} are not among evaluation.leads {ev.leads}")
    for lead, name in (ev.reference.leads if ev.reference else {}).items():
        if name not in cfg.datasets:
            raise ValueError(f"evaluation.reference.leads.{lead}: no dataset {name!r}")
    for run in ev.compare:
        if run not in cfg.training:
            raise ValueError(f"evaluation.compare: no training run {run!r}")
    choices = baselines(cfg)
    if ev.baseline not in choices:
        raise ValueError(f"evaluation.baseline: {ev.baseline!r} is none of {choices}")


def baselines(cfg: Config) -> list[str]:
    """What skill can be measured against: the baselines the config scores, and its training runs."""
    ev = cfg.evaluation
    assert ev is not None
    names = ["persistence"]
    if ev.climatology is not None:
        names.append("climatology")
    if ev.reference is not None:
        names.append(ev.reference.name)
    return [*names, *cfg.training]
