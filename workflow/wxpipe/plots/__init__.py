"""Figures for MLflow and the Snakemake report: the training loss curve and the evaluation's scorecard, lead-time
curves and error maps.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas, never pyplot, so nothing depends on
a display or on pyplot's global state, and each file is written atomically. The evaluation figures read the
scores datasets of :mod:`wxpipe.scores.table` (one run) or :func:`wxpipe.compare.combine` (several).
"""

from ._curves import lead_curves
from ._loss import loss_curve
from ._maps import error_maps
from ._scorecard import scorecard

__all__ = ["error_maps", "lead_curves", "loss_curve", "scorecard"]
