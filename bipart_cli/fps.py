"""Farthest point sampling on the CPU, torch-free (``io`` uses it too).

Two callers want two things:

- the encoder's groups (2048 network points -> 512 ...) must pick what the per-step tensor
  FPS of :func:`bipart_cli.geometry.farthest_point_sample` picks on a GPU from a given
  start: :func:`farthest_point_indices`, plain exact FPS in NumPy;
- a cloud's network points (2048 of a dense sample of 20,000 or more) want speed:
  :func:`farthest_points` runs fpsample's bucketed KD-tree FPS (QuickFPS, compiled),
  about 10 ms for 20,000 points where NumPy's 2048 sequential steps take 200-300 ms.
  Each of its picks is a farthest point of the cloud from the picks before it (the
  tests check this against a slow loop); ties may go to another point than NumPy's.
"""

from __future__ import annotations

import numpy as np


def farthest_point_indices(points: np.ndarray, n_samples: int, start: int = 0) -> np.ndarray:
    """Exact FPS from ``start``: points (n, 3) -> (n_samples,) int64.

    The same picks as :func:`bipart_cli.geometry.farthest_point_sample` (float32
    squared distances summed x, y, z; ties to the lowest index), every distance
    updated at every pick.
    """
    xyz = [np.ascontiguousarray(points[:, axis], dtype=np.float32) for axis in range(3)]
    nearest = np.full(len(points), np.inf, dtype=np.float32)  # squared distance to the picks
    distance, term = np.empty_like(nearest), np.empty_like(nearest)
    picks = np.empty(n_samples, dtype=np.int64)
    current = start
    for i in range(n_samples):
        picks[i] = current
        np.subtract(xyz[0], xyz[0][current], out=distance)
        np.multiply(distance, distance, out=distance)
        for axis in (1, 2):
            np.subtract(xyz[axis], xyz[axis][current], out=term)
            np.multiply(term, term, out=term)
            np.add(distance, term, out=distance)
        np.minimum(nearest, distance, out=nearest)
        current = int(nearest.argmax())
    return picks


def farthest_points(points: np.ndarray, n_samples: int, start_index: int) -> np.ndarray:
    """FPS of points (n, 3), ``n_samples <= n``, by fpsample: (n_samples,) int64.

    fpsample (0.3 to 1.0) reads ``start_index`` in its KD-tree's order, not the
    cloud's, so the first pick is the tree's ``start_index``-th point: a seeded
    start gives a seeded random first pick, just not the point at that index.
    The picks depend on the tree's height, so it is a fixed function of ``n``.
    """
    import fpsample

    cloud = np.ascontiguousarray(points, dtype=np.float32)
    picks = fpsample.bucket_fps_kdline_sampling(
        cloud, n_samples, h=tree_height(len(cloud)), start_idx=start_index
    )
    return np.asarray(picks, dtype=np.int64)


def tree_height(count: int) -> int:
    """fpsample's KD-tree height for ``count`` points: buckets of a few hundred points
    (5 for 4096 points, 6 for 20,000, 8 for a million; the fastest measured on a CPU)."""
    return int(np.clip(round(np.log2(max(count, 2)) / 2.5), 3, 9))


def picks_identity() -> str:
    """What :func:`farthest_points`' picks depend on beside the points and the seed: the
    library and its version (stored picks are keyed by it)."""
    from .store import library_version

    return f"fpsample {library_version('fpsample')} kdline"
