"""Exact farthest point sampling in NumPy, for the CPU.

The same picks as the per-step tensor FPS of :func:`bipart_cli.geometry.farthest_point_sample`
(float32 squared distances summed x, y, z; ties to the lowest index), without torch:
2048 small sequential steps are all overhead as tensor ops on a CPU. Large clouds are
searched in spatial blocks, so late picks touch a few blocks, not every point.
"""

from __future__ import annotations

import numpy as np


def farthest_point_indices(points: np.ndarray, n_samples: int, start: int = 0) -> np.ndarray:
    """Exact farthest point sampling on the CPU: points (n, 3) -> (n_samples,) int64.

    The same picks as :func:`bipart_cli.geometry.farthest_point_sample` (float32
    squared distances summed x, y, z; ties to the lowest index), at a fraction of
    the work. The points are grouped into spatially compact blocks (a KD-tree's leaf
    order). A new pick ``c`` can only lower a point's distance if ``c`` is nearer to
    it than its current pick, so a block whose largest distance is below the squared
    distance from ``c`` to the block's bounding box is skipped; late picks touch a few
    blocks, not every point.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    if len(points) < PRUNED_MIN_POINTS:
        return _farthest_point_indices_full(points, n_samples, start)
    return _BlockedFarthestPoints(points).pick(n_samples, start)


PRUNED_MIN_POINTS = 4096
BLOCK = 64  # points per block


def _squared_distances(xyz: np.ndarray, center: np.ndarray) -> np.ndarray:
    """(...,) float32 ``(dx² + dy²) + dz²`` of xyz (..., 3) to center (3,), in the sum
    order of the reference, so distances (and so the picks) agree bit for bit."""
    delta = xyz - center  # (..., 3)
    np.multiply(delta, delta, out=delta)
    return (delta[..., 0] + delta[..., 1]) + delta[..., 2]


class _BlockedFarthestPoints:
    """One FPS run over points (n, 3) float32 in blocks (see :func:`farthest_point_indices`)."""

    def __init__(self, points: np.ndarray) -> None:
        from scipy.spatial import KDTree

        count = len(points)
        blocks = -(-count // BLOCK)
        # leaf order, padded with copies of the last point (never picked: distance -inf)
        order = KDTree(points, leafsize=BLOCK // 2, balanced_tree=False).indices
        self.order = np.concatenate([order, np.full(blocks * BLOCK - count, order[-1])])
        self.points = points
        self.block_points = points[self.order].reshape(blocks, BLOCK, 3)
        self.low = np.ascontiguousarray(self.block_points.min(axis=1).T)  # (3, blocks)
        self.high = np.ascontiguousarray(self.block_points.max(axis=1).T)
        self.gap = np.empty_like(self.low)  # scratch
        self.nearest = np.full((blocks, BLOCK), np.inf, dtype=np.float32)
        self.nearest.reshape(-1)[count:] = -np.inf
        self.block_max = self.nearest.max(axis=1)  # (blocks,)

    def pick(self, n_samples: int, start: int) -> np.ndarray:
        picks = np.empty(n_samples, dtype=np.int64)
        current = start
        for i in range(n_samples):
            picks[i] = current
            self._update(self.points[current])
            current = self._farthest()
        return picks

    def _update(self, center: np.ndarray) -> None:
        gap = self.gap  # (3, blocks): how far outside each block's bounding box, per axis
        np.maximum(self.low - center[:, None], center[:, None] - self.high, out=gap)
        np.maximum(gap, 0, out=gap)
        np.multiply(gap, gap, out=gap)
        box_distance = (gap[0] + gap[1]) + gap[2]  # (blocks,)
        # a little lenient: float32 rounding must not skip a block that changes
        touched = np.flatnonzero(self.block_max > box_distance * np.float32(1 - 1e-4))
        distance = _squared_distances(self.block_points[touched], center)  # (t, BLOCK)
        nearest = np.minimum(self.nearest[touched], distance)
        self.nearest[touched] = nearest
        self.block_max[touched] = nearest.max(axis=1)

    def _farthest(self) -> int:
        """The original index of the largest distance, the lowest index among ties."""
        largest = self.block_max.max()
        tied = np.flatnonzero(self.block_max == largest)
        rows = self.order.reshape(-1, BLOCK)[tied][self.nearest[tied] == largest]
        return int(rows.min())


def _farthest_point_indices_full(points: np.ndarray, n_samples: int, start: int) -> np.ndarray:
    """Plain exact FPS, every distance updated at every pick (small inputs)."""
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
