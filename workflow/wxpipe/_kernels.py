"""Compiled inner loops (numba) for the passes numpy makes too many trips over memory for: the statistics
pass's shifted sums and the loader's NaN check (imported lazily by both, so training runs without numba).

The sums of shifted values and of their squares are the statistics pass's hot loop: in numpy it is
a float32 -> float64 subtraction into a temporary, then a sum and a dot product over it (three trips
through a 3 MB temporary per date); here it is one read of the data, vectorised. Compiled code is
cached beside this file (or in numba's user cache when that is read-only), so only the first run
on a machine compiles (~2 s).
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM keep several partial sums in vector lanes (pairwise-like, so no less exact
# than a sequential sum); NaN and infinity semantics stay strict, so a NaN still poisons its sum.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _row_sums(row: np.ndarray, shift: float) -> tuple[float, float]:  # pragma: no cover - compiled
    s1 = 0.0
    s2 = 0.0
    for j in range(row.size):
        y = np.float64(row[j]) - shift
        s1 += y
        s2 += y * y
    return s1, s2


@numba.njit(nogil=True, cache=True)
def _shifted_sums(block: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(block.shape[0]):
        out[i, 0], out[i, 1] = _row_sums(block[i], shift[i])


def shifted_sums(block: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``i`` of ``block`` (variables, samples): ``sum(x - shift[i])`` and ``sum((x - shift[i])**2)``,
    each term in float64. Releases the GIL, so several threads reduce at once."""
    out = np.empty((block.shape[0], 2))
    _shifted_sums(np.ascontiguousarray(block), np.ascontiguousarray(shift, dtype=np.float64), out)
    return out[:, 0], out[:, 1]


def warm() -> None:
    """Compile the kernels, or load them from the cache: numba's one-off start (~0.8 s with a warm
    cache), which the first call pays otherwise."""
    for dtype in (np.float32, np.float64):
        shifted_sums(np.zeros((1, 1), dtype), np.zeros(1))


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def all_finite(x: np.ndarray) -> bool:  # pragma: no cover - compiled
    """No NaN or infinity in the 1-D ``x``: x - x is 0 but for those; one vectorised pass, without the
    temporary array of ``np.isfinite(x).all()`` (twice as slow on a decoded date)."""
    acc = x.dtype.type(0)
    for i in range(x.size):
        acc += x[i] - x[i]
    return bool(acc == 0)
