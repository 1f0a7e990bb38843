"""Scoring forecasts against a dataset: the regions scored (:mod:`.regions`), the per-date metrics and their
WeatherBench2 averages over initial dates (:mod:`.metrics`); pure numpy, so tests check them by hand and
against the ``scores`` library."""

from .metrics import aggregate, per_date
from .regions import STANDARD, Region, masks, regions

__all__ = ["STANDARD", "Region", "aggregate", "masks", "per_date", "regions"]
