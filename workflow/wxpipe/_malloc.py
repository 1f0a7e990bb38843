"""Let glibc keep freed field buffers for reuse instead of returning them to the kernel.

Every decoded GRIB field is a fresh array of a few hundred kB to a few MB. By default glibc serves
those with mmap and unmaps them on free, so the next field faults in fresh zeroed pages: on a 1°
grid that cost 40 % of the decode time in system calls. Raising the mmap and trim thresholds keeps
them on the heap (memory stays bounded: the same few buffers are reused).
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_buffers(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Tune glibc's malloc; a no-op (False) on other C libraries.

    The process's own symbols hold the C library's (``dlopen(NULL)``): no ``find_library``, which runs
    ``ldconfig -p`` in a subprocess (~50 ms at every command's start)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
