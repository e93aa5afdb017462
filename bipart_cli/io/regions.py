"""The asset's own structure: regions of faces that are one piece, and labels that follow them.

Artists and CAD exporters build objects from pieces: a door, a drawer front, a wheel
or a lid is usually its own mesh, or at least its own connected surface. A region
here is a set of faces connected through shared vertices (welded by position, as
exporters split vertices along seams) within one scene geometry instance. Such a
region can still span several parts (a cabinet modelled as one shell), so labels
follow a region only where the labels inside it already agree
(:func:`follow_regions`). Point clouds have no regions.
"""

from __future__ import annotations

import numpy as np

from .asset import Asset

# the share of a region's points that must carry one label before the rest follow it, and
# the most of the asset's points one region may relabel: a region that would move more is
# likely a piece that holds two parts (a body modelled with its lid). Both chosen on the
# train split of pm (benchmarks/quality/mesh_few_shot.py, RESULTS section 28.3).
REGION_AGREEMENT = 0.6
REGION_MAX_CHANGE = 0.05


def merged_vertex_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(f, 3) faces re-indexed so that vertices within 1e-7 of the extent are one."""
    vertices = np.asarray(vertices, dtype=np.float64)
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    keys = np.round(vertices / max(extent, 1e-300) * 1e7).astype(np.int64)
    _, merged = np.unique(keys, axis=0, return_inverse=True)
    return merged.reshape(-1)[np.asarray(faces, dtype=np.int64)]


def face_regions(asset: Asset) -> np.ndarray | None:
    """Region id of every face, (f,) int64 in [0, regions), or None for a point cloud.

    Two faces share a region when a chain of faces sharing a vertex (merged by
    position) joins them and they belong to the same scene geometry instance.
    """
    if asset.faces is None or len(asset.faces) == 0:
        return None
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    faces = merged_vertex_faces(asset.vertices, asset.faces)  # (f, 3)
    count = int(faces.max()) + 1
    # each face joins its three corners: edges (a, b) and (b, c)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, count))
    _, vertex_component = connected_components(graph, directed=False)
    component = vertex_component[faces[:, 0]].astype(np.int64)  # (f,)
    if asset.face_geometry is not None:
        pairs = np.stack([component, np.asarray(asset.face_geometry, np.int64)], axis=1)
        _, component = np.unique(pairs, axis=0, return_inverse=True)
    else:
        _, component = np.unique(component, return_inverse=True)
    return component.reshape(-1).astype(np.int64)


def follow_regions(
    labels: np.ndarray,
    regions: np.ndarray,
    num_parts: int,
    agreement: float = REGION_AGREEMENT,
    max_change: float = REGION_MAX_CHANGE,
) -> np.ndarray:
    """Labels where each region whose points agree takes its majority label throughout.

    labels : (n,) int64 in [-1, num_parts), ``-1`` unassigned; regions : (n,) int64
    region of each point (``face_regions()[dense.face_index]``), ``-1`` for none.
    A region follows its majority label when that label holds at least ``agreement``
    of the region's assigned points and the points that would change are at most
    ``max_change`` of all n points. Otherwise (a region that spans parts, such as a
    cabinet shell holding its door, or a bottle body modelled with its cap) its points
    keep their own labels, and so do all points of an asset that is one piece (every
    PSB and human_seg mesh). Returns (n,) int64.
    """
    labels = np.asarray(labels, dtype=np.int64)
    regions = np.asarray(regions, dtype=np.int64)
    voting = (labels >= 0) & (regions >= 0)
    if len(np.unique(regions[regions >= 0])) < 2 or not voting.any() or num_parts < 1:
        return labels.copy()  # a one-piece asset: its structure says nothing about parts
    votes = region_votes(labels, regions, num_parts)  # (regions, R)
    count = len(votes)
    totals = votes.sum(axis=1)
    winner = votes.argmax(axis=1)  # ties: the lowest part index
    majority = votes[np.arange(count), winner]
    agrees = (majority >= agreement * np.maximum(totals, 1)) & (totals > 0)
    agrees &= np.bincount(regions[regions >= 0], minlength=count) - majority <= max_change * len(
        labels
    )
    out = labels.copy()
    follow = (regions >= 0) & agrees[np.maximum(regions, 0)]
    out[follow] = winner[regions[follow]]
    return out


def region_votes(labels: np.ndarray, regions: np.ndarray, num_parts: int) -> np.ndarray:
    """(regions, num_parts) int64: how many assigned points of each region carry each label.

    labels : (n,) int64, ``-1`` unassigned; regions : (n,) int64, ``-1`` for none.
    """
    voting = (labels >= 0) & (regions >= 0)
    votes = np.zeros((int(regions.max(initial=-1)) + 1, num_parts), dtype=np.int64)
    np.add.at(votes, (regions[voting], labels[voting]), 1)
    return votes


def labels_following_regions(
    asset: Asset,
    face_index: np.ndarray | None,
    labels: np.ndarray,
    scores: np.ndarray,
    num_parts: int,
    agreement: float = REGION_AGREEMENT,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`follow_regions` over a mesh's dense samples.

    face_index : (n,) int64 the face of each sample (None for a cloud); labels (n,)
    int64 and scores (n,) float32 as predicted. Returns the labels, the scores (a point
    whose label changed scores its region's share of the new label) and how many
    points changed. Clouds, and ``agreement`` 1 or above, change nothing.
    """
    regions = None if face_index is None or agreement >= 1 else face_regions(asset)
    if regions is None:
        return labels, scores, 0
    point_regions = regions[face_index]  # (n,)
    followed = follow_regions(labels, point_regions, num_parts, agreement)
    changed = followed != labels
    if not changed.any():
        return labels, scores, 0
    votes = region_votes(np.asarray(labels, np.int64), point_regions, num_parts)
    share = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)  # (regions, R)
    scores = scores.copy()
    scores[changed] = share[point_regions[changed], followed[changed]]
    return followed, scores, int(changed.sum())
