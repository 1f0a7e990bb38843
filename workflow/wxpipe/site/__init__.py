"""The lineage catalogue as a static site: datasets, trainings, evaluations and every record, one page each.

Built from a joined catalogue (:func:`wxpipe.lineage.write_catalogue`) and whatever of its outputs is still
on disk; relative links only, no JavaScript, so it opens from ``file://``. ``_records``, ``_datasets`` and
``_runs`` gather the facts, ``_render`` turns them into pages, ``_build`` joins the two.
"""

from ._build import build_site

__all__ = ["build_site"]
