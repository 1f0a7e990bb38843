"""The validation set training reads besides its batches: a few samples spread evenly over the period.

Which samples exist and how one batch is read is :mod:`wxpipe.samples`, shared with the evaluation; the
training batches themselves come from :mod:`.loader`.
"""

from __future__ import annotations

import numpy as np


def evenly_spaced(starts: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` samples spread over the whole period (a cheap, deterministic validation set)."""
    if len(starts) <= limit:
        return starts
    return starts[np.linspace(0, len(starts) - 1, limit).round().astype(np.int64)]
