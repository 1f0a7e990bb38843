"""The grid's neighbour search: the KD-tree path gives exactly what a brute force over every pair gives.

The reference ranks every point of the grid for every row (the O(n²) search the KD-tree replaced):
self first, then the float64 dot product, equal dot products to the lower index, then the neighbours
after the first by bearing. Structured grids are full of exact ties (east and west neighbours, the
coincident points of a regular grid's pole rows), so they test the tie rule as much as the search.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from wxpipe.train.features import _local_offsets, neighbour_indices, neighbour_offsets, unit_vectors

Grid = Callable[[int], tuple[np.ndarray, np.ndarray]]
K_MAX = 12


def brute_force_ranking(latitudes: np.ndarray, longitudes: np.ndarray, k: int, rows: int = 256) -> np.ndarray:
    """(values, k) ranked by (self, dot product, index) against every point; prefixes rank for smaller k."""
    xyz = unit_vectors(latitudes, longitudes)
    x, y, z = xyz.T
    n = len(xyz)
    ranked = np.empty((n, k), dtype=np.int64)
    for lo in range(0, n, rows):
        block = np.arange(lo, min(lo + rows, n))
        dot = x[block, None] * x + y[block, None] * y + z[block, None] * z
        dot[np.arange(len(block)), block] = np.inf
        kth = -np.partition(-dot, k - 1, axis=1)[:, k - 1]
        for r, i in enumerate(block):
            tied_or_better = np.flatnonzero(dot[r] >= kth[r])  # ascending index, so a stable sort keeps ties in it
            ranked[i] = tied_or_better[np.argsort(-dot[r, tied_or_better], kind="stable")[:k]]
    return ranked


def by_bearing(xyz: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """The search's last step, as it always was: the neighbours after the first by bearing, stable over the ranking."""
    out = ranked.copy()
    if out.shape[1] > 2:
        east, north = _local_offsets(xyz, out[:, 1:])
        order = np.argsort(np.arctan2(east, north), axis=1, kind="stable")
        out[:, 1:] = np.take_along_axis(out[:, 1:], order, axis=1)
    return out


def regular(step: float) -> tuple[np.ndarray, np.ndarray]:
    """A regular lat-lon grid with both pole rows (each pole row is one point, repeated)."""
    lat, lon = np.meshgrid(np.arange(90.0, -90.0 - step / 2, -step), np.arange(0.0, 360.0, step), indexing="ij")
    return lat.ravel(), lon.ravel()


def scattered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n))), rng.uniform(-180.0, 180.0, n)


@pytest.mark.parametrize("grid", ["O32", "O48", "regular-5", "regular-7.5", "scattered"])
def test_kd_tree_search_equals_the_brute_force(grid: str, octahedral_grid: Grid) -> None:
    if grid.startswith("O"):
        lat, lon = octahedral_grid(int(grid[1:]))
    elif grid.startswith("regular"):
        lat, lon = regular(float(grid.split("-")[1]))
    else:
        lat, lon = scattered(3000)
    xyz = unit_vectors(lat, lon)
    ranking = brute_force_ranking(lat, lon, K_MAX)
    assert (ranking[:, 0] == np.arange(len(lat))).all()
    for k in (1, 2, 3, 5, 9, K_MAX):
        expect = by_bearing(xyz, ranking[:, :k])
        np.testing.assert_array_equal(neighbour_indices(lat, lon, k), expect, err_msg=f"{grid}, k={k}")


def test_pole_rows_break_ties_by_index() -> None:
    lat, lon = regular(10.0)  # 36 coincident points at each pole
    nb = neighbour_indices(lat, lon, 5)
    assert sorted(nb[0]) == [0, 1, 2, 3, 4]
    assert nb[20, 0] == 20 and sorted(nb[20, 1:]) == [0, 1, 2, 3]
    south = len(lat) - 36
    assert sorted(nb[-1]) == [south, south + 1, south + 2, south + 3, len(lat) - 1]


def test_the_result_does_not_depend_on_chunks_or_threads(octahedral_grid: Grid) -> None:
    lat, lon = octahedral_grid(16)
    nb = neighbour_indices(lat, lon, 9)
    np.testing.assert_array_equal(neighbour_indices(lat, lon, 9, chunk=37, workers=1), nb)
    np.testing.assert_array_equal(neighbour_indices(lat, lon, 9, chunk=10_000, workers=2), nb)


def test_every_point_and_a_single_point() -> None:
    lat, lon = scattered(40, seed=3)
    nb = neighbour_indices(lat, lon, 40)
    assert (nb[:, 0] == np.arange(40)).all()
    assert all(sorted(row) == list(range(40)) for row in nb)
    np.testing.assert_array_equal(neighbour_indices(np.array([10.0]), np.array([20.0]), 1), [[0]])
    assert neighbour_offsets(lat, lon, nb).shape == (40, 39, 2)


def test_coincident_points_still_put_each_point_first() -> None:
    lat = np.array([0.0, 0.0, 0.0, 1.0, -1.0])
    lon = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    nb = neighbour_indices(lat, lon, 3)
    assert list(nb[:, 0]) == [0, 1, 2, 3, 4]
    assert sorted(nb[2, 1:]) == [0, 1]


@pytest.mark.parametrize("k", [0, 6])
def test_neighbour_count_out_of_range_is_refused(k: int) -> None:
    lat, lon = scattered(5)
    with pytest.raises(ValueError, match=f"neighbours={k}"):
        neighbour_indices(lat, lon, k)
