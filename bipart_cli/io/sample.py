"""Seeded sampling: a dense coloured cloud for rendering, FPS indices for the network."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InvalidInputError
from .asset import Asset, PointSample

log = logging.getLogger("bipart")


def sample_dense(asset: Asset, n_points: int = 100_000, seed: int = 0) -> PointSample:
    """Area-weighted surface samples (meshes) or the points themselves (clouds).

    Returns a :class:`PointSample` in unit-sphere coordinates (``asset.normalize``):
    points (n, 3) float32, colors (n, 3) uint8 (texture, face or vertex colours),
    normals (n, 3) float32 (meshes: face normals; clouds: None), face_index (n,)
    int64 (meshes) and labels (n,) int64 carried from the asset's labels. A point
    cloud with more than ``n_points`` points gives a seeded random subset (in the
    original order). Same asset and seed, same sample.
    """
    if n_points < 1:
        raise ValueError(f"n_points must be positive, got {n_points}")
    if not asset.is_mesh:
        return _sample_cloud(asset, n_points, seed)
    import trimesh

    mesh = trimesh.Trimesh(asset.vertices, asset.faces, process=False, validate=False)
    points, face_index, barycentric = trimesh.sample.sample_surface(
        mesh, n_points, return_barycentric=True, seed=seed
    )
    face_index = np.asarray(face_index, dtype=np.int64)
    labels = None if asset.labels is None else asset.labels[face_index].astype(np.int64)
    return PointSample(
        points=asset.normalize(points).astype(np.float32),
        colors=_surface_colors(asset, face_index, barycentric),
        normals=np.asarray(mesh.face_normals[face_index], dtype=np.float32),
        face_index=face_index,
        labels=labels,
    )


def _sample_cloud(asset: Asset, n_points: int, seed: int) -> PointSample:
    n = len(asset.vertices)
    if n > n_points:
        keep = np.sort(np.random.default_rng(seed).choice(n, n_points, replace=False))
    else:
        keep = np.arange(n)
    colors = asset.vertex_colors
    return PointSample(
        points=asset.normalize(asset.vertices[keep]).astype(np.float32),
        colors=np.full((len(keep), 3), 128, np.uint8) if colors is None else colors[keep],
        labels=None if asset.labels is None else asset.labels[keep].astype(np.int64),
    )


def _surface_colors(asset: Asset, face_index: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
    """Colour of each sample: texture (UV-interpolated) > face colour > vertex colours.

    face_index : (n,) int64; barycentric : (n, 3)  ->  (n, 3) uint8
    """
    corners = asset.faces[face_index]  # (n, 3)
    if asset.face_colors is not None:
        colors = asset.face_colors[face_index].astype(np.float64)
    elif asset.vertex_colors is not None:
        colors = (asset.vertex_colors[corners] * barycentric[:, :, None]).sum(axis=1)
    else:
        colors = np.full((len(face_index), 3), 128.0)
    if asset.face_texture is not None and asset.vertex_uv is not None:
        from trimesh.visual.color import uv_to_interpolated_color

        texture_of_sample = asset.face_texture[face_index]
        for texture_id in np.unique(texture_of_sample[texture_of_sample >= 0]):
            rows = np.nonzero(texture_of_sample == texture_id)[0]
            uv = (asset.vertex_uv[corners[rows]] * barycentric[rows, :, None]).sum(axis=1)
            rgba = uv_to_interpolated_color(uv, asset.textures[texture_id])
            colors[rows] = np.asarray(rgba)[:, :3]
    return np.clip(np.round(colors), 0, 255).astype(np.uint8)


def sample_network_indices(points: np.ndarray, n_samples: int = 2048, seed: int = 0) -> np.ndarray:
    """Farthest point sampling of ``n_samples`` indices from points (n, 3).

    The first pick is a seeded random point. With fewer than ``n_samples`` points
    every point is kept and seeded repeats fill the rest (a warning is logged), so
    the network always gets ``n_samples`` points.

    Returns
    -------
    indices : (n_samples,) int64 into ``points``
    """
    points = np.asarray(points)
    n = len(points)
    if n == 0:
        raise InvalidInputError("cannot sample points from an empty point set")
    rng = np.random.default_rng(seed)
    if n < n_samples:
        log.warning(
            "only %d points, fewer than the %d the network takes: repeating points", n, n_samples
        )
        repeats = rng.choice(n, n_samples - n, replace=True)
        return np.concatenate([np.arange(n), repeats]).astype(np.int64)
    return farthest_point_indices(points, n_samples, start=int(rng.integers(n)))


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
BLOCK = 32  # points per block


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
