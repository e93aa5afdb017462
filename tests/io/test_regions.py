"""The asset's pieces (``io.regions``): welded components per node, and labels that follow them
only where the labels inside a piece agree."""

from __future__ import annotations

import numpy as np
import trimesh

from bipart_cli.io import Asset, sample_dense
from bipart_cli.io.regions import (
    face_regions,
    follow_regions,
    labels_following_regions,
)


def _asset(meshes: list[trimesh.Trimesh], face_geometry: list[int] | None = None) -> Asset:
    """One Asset of ``meshes`` concatenated; ``face_geometry`` gives each mesh's node."""
    vertices, faces, offset = [], [], 0
    for mesh in meshes:
        vertices.append(np.asarray(mesh.vertices))
        faces.append(np.asarray(mesh.faces) + offset)
        offset += len(mesh.vertices)
    geometry = None
    if face_geometry is not None:
        geometry = np.concatenate(
            [np.full(len(m.faces), g) for m, g in zip(meshes, face_geometry, strict=True)]
        )
    return Asset(
        vertices=np.concatenate(vertices).astype(np.float64),
        faces=np.concatenate(faces).astype(np.int64),
        face_geometry=geometry,
    )


def _box(center, size=1.0) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(size, size, size)).apply_translation(center)


def _split_vertices(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh with every face given its own three vertices (as flat-shaded exports are)."""
    vertices = np.asarray(mesh.vertices)[np.asarray(mesh.faces).reshape(-1)]
    return trimesh.Trimesh(vertices, np.arange(len(vertices)).reshape(-1, 3), process=False)


def _slow_regions(asset: Asset) -> np.ndarray:
    """Reference: union-find over faces that share a vertex position, within one node."""
    faces = np.asarray(asset.faces)
    parent = list(range(len(faces)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    positions = [{tuple(np.round(asset.vertices[v], 9)) for v in face} for face in faces]
    node = asset.face_geometry if asset.face_geometry is not None else np.zeros(len(faces))
    for a in range(len(faces)):
        for b in range(a + 1, len(faces)):
            if node[a] == node[b] and positions[a] & positions[b]:
                parent[find(a)] = find(b)
    roots = [find(i) for i in range(len(faces))]
    _, ids = np.unique(roots, return_inverse=True)
    return ids


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_regions_are_welded_components_within_each_node():
    touching = [_box((0, 0, 0)), _box((1, 0, 0))]  # share a face's corners at x = 0.5
    apart = _split_vertices(_box((5, 0, 0)))  # welded by position despite split vertices
    asset = _asset([*touching, apart], face_geometry=[0, 0, 1])
    regions = face_regions(asset)
    assert _same_partition(regions, _slow_regions(asset))
    assert len(set(regions.tolist())) == 2  # the touching boxes weld; the far box is its own
    # the same geometry, each box its own node: three pieces
    assert len(set(face_regions(_asset([*touching, apart], [0, 1, 2])).tolist())) == 3


def test_a_point_cloud_has_no_regions():
    cloud = Asset(vertices=np.random.default_rng(0).normal(size=(50, 3)), faces=None)
    assert face_regions(cloud) is None


def _slow_follow(labels, regions, num_parts, agreement, max_change):
    out = labels.copy()
    if len(set(regions.tolist()) - {-1}) < 2:
        return out
    for region in set(regions.tolist()) - {-1}:
        members = (regions == region) & (labels >= 0)
        if not members.any():
            continue
        counts = np.bincount(labels[members], minlength=num_parts)
        winner = int(np.argmax(counts))
        moved = int(((regions == region) & (labels != winner)).sum())
        if counts.max() >= agreement * members.sum() and moved <= max_change * len(labels):
            out[regions == region] = winner
    return out


def test_follow_regions_against_a_loop():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n, parts = 200, 4
        regions = rng.integers(-1, 6, n)
        # regions that mostly agree, and some that do not
        labels = np.where(rng.random(n) < 0.8, regions % parts, rng.integers(-1, parts, n))
        for agreement in (0.5, 0.7, 0.9, 1.0):
            for max_change in (0.02, 0.1, 1.0):
                expected = _slow_follow(labels, regions, parts, agreement, max_change)
                found = follow_regions(labels, regions, parts, agreement, max_change)
                assert np.array_equal(found, expected)


def test_a_piece_that_spans_parts_keeps_its_labels():
    labels = np.array([0] * 6 + [1] * 4 + [1] * 9 + [0])
    regions = np.array([0] * 10 + [1] * 10)
    out = follow_regions(labels, regions, 2, agreement=0.7, max_change=1.0)
    assert out[:10].tolist() == labels[:10].tolist()  # 60% agree: a door and a body, kept
    assert out[10:].tolist() == [1] * 10  # 90% agree: the stray point follows


def test_a_piece_that_would_move_a_large_share_of_the_asset_keeps_its_labels():
    # a bottle body modelled with its cap (85% body, 15% cap), and a separate label piece
    labels = np.array([0] * 85 + [1] * 15 + [0] * 10)
    regions = np.array([0] * 100 + [1] * 10)
    assert follow_regions(labels, regions, 2, 0.6, max_change=0.05).tolist() == labels.tolist()
    assert follow_regions(labels, regions, 2, 0.6, max_change=0.2).tolist() == [0] * 110


def test_a_one_piece_asset_keeps_its_labels():
    labels = np.array([0] * 97 + [1] * 3)  # a small part, 3% of a one-piece mesh
    regions = np.zeros(100, dtype=np.int64)
    assert follow_regions(labels, regions, 2, 0.6, max_change=1.0).tolist() == labels.tolist()


def test_labels_follow_the_pieces_of_a_sampled_mesh():
    left, right = _box((0, 0, 0)), _box((3, 0, 0))
    asset = _asset([left, right], face_geometry=[0, 1])
    asset.center, asset.scale = np.array([1.5, 0.0, 0.0]), 2.5
    dense = sample_dense(asset, n_points=2000, seed=0)
    on_right = dense.face_index >= len(left.faces)
    truth = on_right.astype(np.int64)
    noisy = truth.copy()
    flip = np.random.default_rng(7).random(len(noisy)) < 0.02  # not the sampling seed
    noisy[flip] = 1 - noisy[flip]
    scores = np.full(len(noisy), 0.6, np.float32)
    labels, new_scores, changed = labels_following_regions(
        asset, dense.face_index, noisy, scores, 2, agreement=0.7
    )
    assert np.array_equal(labels, truth)
    assert changed == int(flip.sum())
    assert np.all((new_scores[flip] > 0.8) & (new_scores[flip] <= 1.0))
    assert np.array_equal(new_scores[~flip], scores[~flip])
    # off (agreement 1), or a cloud (no face index): unchanged
    for off in (
        labels_following_regions(asset, dense.face_index, noisy, scores, 2, agreement=1.0),
        labels_following_regions(asset, None, noisy, scores, 2, agreement=0.7),
    ):
        assert off[0] is noisy and off[2] == 0
