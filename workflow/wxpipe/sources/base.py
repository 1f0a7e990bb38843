"""What every source of fields provides to dataset creation.

A recipe's ``input`` becomes a list of sources; creation asks each for its variable names, the files it
reads for a date (checked before anything is written, and given to Snakemake as job inputs) and the
fields of a date. Fields are float arrays shaped (ensembles, values) on the dataset's grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class FieldSource(Protocol):
    def variables(self) -> list[str]:
        """Names as they appear in the dataset (``2t``, ``z_500``, ``cos_latitude``)."""
        ...

    def files(self, date: np.datetime64) -> list[Path]:
        """Files read for ``date`` (empty for computed fields)."""
        ...

    def read(self, date: np.datetime64) -> dict[str, np.ndarray]:
        """Every variable of this source at ``date``: name -> (ensembles, values) array."""
        ...

    def metadata(self) -> dict[str, dict[str, object]]:
        """Per-variable metadata seen so far (units, GRIB keys), for the ``variables_metadata`` attribute."""
        ...
