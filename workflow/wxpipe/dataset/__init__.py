"""The on-disk dataset contract (DESIGN.md): an anemoi-compatible Zarr group.

Creation is split as on HPC: :func:`init` writes the empty store and its metadata, a :class:`Writer`
writes a part's whole write units (:class:`Part`: parts never share one, so they run as separate jobs),
and :func:`finalise` checks that every date is present or declared missing. A per-date flag
(``_build/loaded``; ``finalise`` removes the ``_build`` group) is written after the date's data, so an
interrupted part resumes and nothing half-written is marked done.

Behind this face: ``_contract`` (the store, its attributes and statistics set), ``_parts`` (parts and
write units), ``_chunks`` (the chunk-file fast path), ``_store`` (zarr access, build flags),
and ``_codecs``; provenance (what made the store) is :mod:`wxpipe.provenance`, shared with lineage records.
"""

from ..provenance import git_commit, provenance
from ._chunks import ChunkFiles, Writer, chunk_file_codec, direct_codec, read_dates
from ._codecs import codecs
from ._contract import (
    FORMAT_VERSION,
    STATISTICS_BASE,
    STATISTICS_DIGEST,
    STATISTICS_PENDING,
    STATISTICS_SET,
    Dataset,
    check_statistics,
    finalise,
    init,
    open_dataset,
    statistics_arrays,
    statistics_digest,
)
from ._parts import LoadPlan, OutputBlock, Part, chunks_of, load_dates, plan_load, write_unit_of
from ._store import BUILD, LOADED, array, build_flags, loaded, read, remove_build

__all__ = [
    "BUILD",
    "FORMAT_VERSION",
    "LOADED",
    "STATISTICS_BASE",
    "STATISTICS_DIGEST",
    "STATISTICS_PENDING",
    "STATISTICS_SET",
    "ChunkFiles",
    "Dataset",
    "LoadPlan",
    "OutputBlock",
    "Part",
    "Writer",
    "array",
    "build_flags",
    "check_statistics",
    "chunk_file_codec",
    "chunks_of",
    "codecs",
    "direct_codec",
    "finalise",
    "git_commit",
    "init",
    "load_dates",
    "loaded",
    "open_dataset",
    "plan_load",
    "provenance",
    "read",
    "read_dates",
    "remove_build",
    "statistics_arrays",
    "statistics_digest",
    "write_unit_of",
]
