"""Rechunking a dataset into another layout, and verifying a layout against its source.

A layout keeps the dataset contract (``data``, ``dates``, ``latitudes``, ``longitudes``, the
statistics arrays, the attributes) in other chunks: ``(dates, all variables, all members, values)``,
optionally Zarr v3 with shards of whole chunks. The plan is computed first, then executed:

- the *write unit* is a target shard when sharded, else a target chunk; units are written whole and
  never shared between two writers, so parts (:func:`write_part`) run as separate jobs;
- a *region* is a run of write units in one row of dates (a date range x a point range), read once
  from the source; it is the unit of memory: whole rows of dates when they fit ``max_mem``, else
  as many units along the points as fit, and a refusal only when one unit alone does not fit;
- a per-unit flag (``_build/done``, like the dataset's ``_build/loaded``) is written after the unit's
  data, so an interrupted part resumes (``resume=True``) and nothing half-written is done.

:func:`init` writes the empty layout, :func:`write_part` one part, :func:`rechunk` both in one
process; :func:`verify` compares a layout with its source region by region.
"""

from ._plan import SHARD_WRITE_OVERHEAD, Layout, Plan, Region, Span, parse_extent, parse_size, plan
from ._run import DONE, done, init, rechunk, small_arrays, write_part
from ._verify import verify

__all__ = [
    "DONE",
    "SHARD_WRITE_OVERHEAD",
    "Layout",
    "Plan",
    "Region",
    "Span",
    "done",
    "init",
    "parse_extent",
    "parse_size",
    "plan",
    "rechunk",
    "small_arrays",
    "verify",
    "write_part",
]
