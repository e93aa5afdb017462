"""Seeded sampling: a dense coloured cloud for rendering, FPS indices for the network."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InvalidInputError
from ..fps import farthest_points
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
    return farthest_points(points, n_samples, start_index=int(rng.integers(n)))
