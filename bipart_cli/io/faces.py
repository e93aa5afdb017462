"""From per-point labels to a mesh's face labels: a vote of the samples on each face,
smoothed over the faces around it."""

from __future__ import annotations

import numpy as np

from .. import kdtree
from .asset import Asset, PointSample
from .regions import merged_vertex_faces


def face_labels_from_points(
    asset: Asset, dense: PointSample, point_labels: np.ndarray, k: int = 8, smooth: int = 0
) -> np.ndarray:
    """Transfer per-point labels to the asset's faces by a majority vote.

    A face votes among the samples drawn on it (``dense.face_index``); a face with
    no sample on it (too small, or ``dense`` has no face index) votes among the
    ``k`` samples nearest its centroid (scipy KDTree), leaving out samples whose
    normal faces the other way (the far side of a thin plate, or a surface the face
    is pressed against) unless none is left. With ``smooth`` > 0 each face's vote
    shares are then averaged with its edge neighbours' that many rounds
    (:func:`smooth_over_faces`). Ties go to the assigned part with the lowest index.

    point_labels : (n,) int64, ``-1`` unassigned  ->  (f,) int64, ``-1`` unassigned
    """
    from scipy.spatial import KDTree

    point_labels = np.asarray(point_labels, dtype=np.int64)
    n_faces = len(asset.faces)
    n_parts = int(point_labels.max()) + 1 if len(point_labels) else 0
    column = np.where(point_labels < 0, n_parts, point_labels)  # unassigned votes last
    votes = np.zeros((n_faces, n_parts + 1), dtype=np.int64)
    if dense.face_index is not None:
        np.add.at(votes, (dense.face_index, column), 1)
    unsampled = np.nonzero(votes.sum(axis=1) == 0)[0]
    if len(unsampled) and len(dense.points):
        centroids = asset.normalize(asset.vertices[asset.faces[unsampled]].mean(axis=1))
        k = min(k, len(dense.points))
        _, nearest = kdtree.query(KDTree(dense.points), centroids, k=k)
        nearest = np.asarray(nearest).reshape(len(unsampled), k)
        weight = np.ones(nearest.shape, dtype=np.int64)
        if dense.normals is not None:
            tri = asset.vertices[asset.faces[unsampled]]
            normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
            facing = np.einsum("fkc,fc->fk", dense.normals[nearest], normal) > -0.5
            weight = np.where(facing.any(axis=1, keepdims=True), facing, True).astype(np.int64)
        rows = np.repeat(unsampled, k)
        np.add.at(votes, (rows, column[nearest.reshape(-1)]), weight.reshape(-1))
    shares = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)  # (f, R + 1)
    shares = smooth_over_faces(asset.vertices, asset.faces, shares, smooth)
    winner = shares.argmax(axis=1)
    return np.where(winner == n_parts, -1, winner).astype(np.int64)


def smooth_over_faces(
    vertices: np.ndarray, faces: np.ndarray, shares: np.ndarray, rounds: int
) -> np.ndarray:
    """``rounds`` of ``p <- (p + mean of the edge-adjacent faces' p) / 2``.

    vertices : (v, 3); faces : (f, 3) vertex indices; shares : (f, C) per-face label
    shares  ->  (f, C). Faces meet when they share an edge (trimesh's ``face_adjacency``)
    between vertices at the same place: exporters split vertices along UV seams and
    flat-shaded edges, so vertices are merged by position first. A face with no
    neighbour keeps its shares. The mesh-side twin of the point smoothing
    (``refine.smooth_probabilities``): a face then agrees with the faces around it.
    """
    if rounds <= 0 or len(faces) < 2:
        return shares
    import scipy.sparse
    from trimesh.graph import face_adjacency

    pairs = face_adjacency(faces=merged_vertex_faces(vertices, faces))  # (m, 2)
    if len(pairs) == 0:
        return shares
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    adjacency = scipy.sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(faces), len(faces))
    )
    degree = np.asarray(adjacency.sum(axis=1)).reshape(-1, 1)  # (f, 1)
    lonely = degree[:, 0] == 0
    for _ in range(rounds):
        mean = (adjacency @ shares) / np.maximum(degree, 1)
        mean[lonely] = shares[lonely]
        shares = 0.5 * shares + 0.5 * mean
    return shares
