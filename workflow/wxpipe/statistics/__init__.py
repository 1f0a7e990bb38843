"""Per-variable statistics over the statistics period, exact in float64 and mergeable.

Chunks are reduced to (count, mean, M2) and merged with Chan's pairwise formula (:class:`Moments`).
``sums``/``squares`` are still written: they are the merge inputs anemoi-datasets expects.

Samples are pooled over dates x ensemble members x grid points. Tendency statistics (anemoi's
``statistics.tendencies``) are the same moments of ``x[t + delta] - x[t]`` over the pairs whose two
dates are both in the period and neither is missing; they are stored as
``statistics_tendencies_<delta>_<stat>`` arrays, which ``anemoi.datasets`` reads with
``statistics_tendencies(delta)``.

The work splits like dataset creation: :func:`plan_statistics` says which chunks one
:class:`~wxpipe.dataset.Part` reads (whole write units of the period, plus the few dates before it that
its tendencies need) and :func:`run_statistics` reads and reduces them; :func:`compute` does both into a
:class:`Summary`. :func:`save_part`/:func:`load_part` keep a summary in a small ``.npz``;
:func:`merge_parts` joins the parts of one run and :func:`write` stores the result.
"""

from ..dataset import STATISTICS_SET
from ._moments import Moments, Summary
from ._plan import ChunkRead, StatisticsPlan, plan_for, plan_statistics
from ._run import allow_nans_of, compute, of_dataset, period_of, run_statistics, tendencies_of
from ._store import load_part, merge_parts, save_part, store_lock, write

__all__ = [
    "STATISTICS_SET",
    "ChunkRead",
    "Moments",
    "StatisticsPlan",
    "Summary",
    "allow_nans_of",
    "compute",
    "load_part",
    "merge_parts",
    "of_dataset",
    "period_of",
    "plan_for",
    "plan_statistics",
    "run_statistics",
    "save_part",
    "store_lock",
    "tendencies_of",
    "write",
]
