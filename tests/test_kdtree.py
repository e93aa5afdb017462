"""KD-tree queries are threaded only when large, and answer the same either way."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import KDTree, cKDTree

from bipart_cli import kdtree


class _Recorded:
    """A real tree whose queries also note the ``workers`` they were asked for."""

    def __init__(self, points: np.ndarray) -> None:
        self.tree = cKDTree(points)
        self.workers: list[int] = []

    def query(self, queries, k=1, workers=1, **kwargs):
        self.workers.append(workers)
        return self.tree.query(queries, k=k, workers=workers, **kwargs)


@pytest.mark.parametrize("tree_type", [KDTree, cKDTree])
@pytest.mark.parametrize("count, k", [(100, 1), (2048, 8), (kdtree.THREADED_QUERIES, 1)])
def test_the_same_neighbours_as_a_threaded_query(tree_type, count, k):
    rng = np.random.default_rng(count + k)
    tree = tree_type(rng.normal(size=(500, 3)))
    queries = rng.normal(size=(count, 3))
    distances, indices = kdtree.query(tree, queries, k=k)
    expected_distances, expected_indices = tree.query(queries, k=k, workers=-1)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(distances, expected_distances)


def test_threads_only_from_the_threshold():
    rng = np.random.default_rng(0)
    tree = _Recorded(rng.normal(size=(200, 3)))
    below = kdtree.THREADED_QUERIES // 4 - 1
    kdtree.query(tree, rng.normal(size=(below, 3)), k=4)  # below: one thread
    kdtree.query(tree, rng.normal(size=(below + 1, 3)), k=4)  # at it: every core
    kdtree.query(tree, rng.normal(size=(3, 3)), k=2, distance_upper_bound=0.5)
    assert tree.workers == [1, -1, 1]
