"""What training and evaluation both need to know about a flattened grid: area weights and identity.

Plain numpy, no model code: the evaluation imports this without any engine installed.
"""

from __future__ import annotations

import hashlib

import numpy as np


def area_weights(latitudes: np.ndarray) -> np.ndarray:
    """Per-point area weights with mean 1 (WeatherBench2 style).

    A latitude row's area is proportional to cos(latitude); on a reduced Gaussian grid a row's
    points share it equally, so a point's weight is cos(lat) / points-in-its-row. On a regular
    lat-lon grid every row has the same count and this is plain cos(lat).
    """
    lat = np.asarray(latitudes, dtype=np.float64)
    _, row, count = np.unique(np.round(lat, 8), return_inverse=True, return_counts=True)
    w = np.clip(np.cos(np.deg2rad(lat)), 0.0, None) / count[row]
    total = w.sum()
    if not total > 0:
        raise ValueError("area weights: every point is at a pole")
    weights: np.ndarray = w * (len(w) / total)
    return weights


def grid_fingerprint(latitudes: np.ndarray, longitudes: np.ndarray) -> str:
    """A short hash of the grid, so a model or a forecasts file refuses a dataset on another grid."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.round(latitudes, 6), dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(np.round(longitudes, 6), dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
