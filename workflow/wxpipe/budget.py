"""How many items (forecasts, initial dates) a job handles at once: as many as half its memory holds.

The rules give jobs ``mem_mb``; the commands take it as ``--memory-mb`` and split their work so that a
batch of items, each ``item_bytes`` in its largest working form, fits in half of it (the rest is for
the model, the dataset's chunks in flight and Python). On a GPU the device's free memory may bind
first: the predict stage then passes the smaller of the two.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CAP = 64  # more at once gains nothing: the work is already vectorised over a batch this big


def batch_size(item_bytes: int, memory_mb: int, *, what: str = "items", cap: int = CAP) -> int:
    """Items per batch so that ``item_bytes`` each fit in half of ``memory_mb``; at least 1 (said in a warning
    when even one is over that)."""
    room = memory_mb * 2**20 // 2
    n = max(1, min(cap, room // max(1, item_bytes)))
    if item_bytes > room:
        log.warning(
            "one of the %s takes %.1f GiB, more than half of the job's %d MB: raise the rule's mem_mb",
            what,
            item_bytes / 2**30,
            memory_mb,
        )
    return int(n)
