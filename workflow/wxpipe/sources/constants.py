"""anemoi's ``constants`` source: a deprecated alias of ``forcings``, kept so old recipes build.

In anemoi-datasets ``constants`` takes the same ``template`` and ``param`` as ``forcings`` and
computes the same fields through the same code (its docs list ``insolation`` and
``cos_julian_day`` among them): despite the name, it is not "fields repeated from one date"
(that is anemoi's ``repeated_dates`` source). Which variables are constant in time, for the
dataset's ``constant_fields``, is what :meth:`ForcingsSource.constant_variables` tells.
"""

from __future__ import annotations

import numpy as np

from ..recipe import Constants
from .forcings import ForcingsSource


class ConstantsSource(ForcingsSource):
    """A ``constants`` source (implements :class:`~wxpipe.sources.base.FieldSource`)."""

    def __init__(self, spec: Constants, latitudes: np.ndarray, longitudes: np.ndarray) -> None:
        super().__init__(spec, latitudes, longitudes)
