"""Dense surface sampling and farthest point sampling: determinism, weighting, references."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from bipart_cli.io import (
    Asset,
    asset_from_scene,
    finalize_asset,
    sample_dense,
    sample_network_indices,
)


def _mesh_asset(vertices, faces, face_colors=None) -> Asset:
    asset = Asset(
        vertices=np.asarray(vertices, float), faces=np.asarray(faces), face_colors=face_colors
    )
    asset.vertex_colors = np.full((len(asset.vertices), 3), 128, np.uint8)
    return finalize_asset(asset)


def test_same_seed_same_sample_other_seed_other_sample(chair_asset):
    a = sample_dense(chair_asset, 5000, seed=1)
    b = sample_dense(chair_asset, 5000, seed=1)
    c = sample_dense(chair_asset, 5000, seed=2)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.colors, b.colors)
    assert not np.array_equal(a.points, c.points)


def test_samples_are_on_their_faces_in_unit_sphere_coordinates(chair_asset):
    dense = sample_dense(chair_asset, 3000, seed=0)
    assert dense.points.dtype == np.float32 and dense.points.shape == (3000, 3)
    assert np.linalg.norm(dense.points, axis=1).max() <= 1.0 + 1e-5
    xyz = chair_asset.denormalize(dense.points)
    tri = chair_asset.vertices[chair_asset.faces[dense.face_index]]
    closest = trimesh.triangles.closest_point(tri, xyz)
    assert np.abs(closest - xyz).max() < 1e-5
    np.testing.assert_array_equal(dense.labels, chair_asset.labels[dense.face_index])
    normals = trimesh.triangles.normals(tri)[0]
    np.testing.assert_allclose(np.abs((dense.normals * normals).sum(1)), 1.0, atol=1e-5)


def test_area_weighting_gives_proportional_counts():
    # two disjoint triangles with areas 1 : 3
    vertices = [[0, 0, 0], [1, 0, 0], [0, 2, 0], [5, 0, 0], [8, 0, 0], [5, 2, 0]]
    asset = _mesh_asset(vertices, [[0, 1, 2], [3, 4, 5]])
    n = 40_000
    counts = np.bincount(sample_dense(asset, n, seed=0).face_index, minlength=2)
    expected = n * 0.25
    sigma = np.sqrt(n * 0.25 * 0.75)
    assert abs(counts[0] - expected) < 5 * sigma


def test_face_colours_colour_their_samples():
    vertices = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]
    colors = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    asset = _mesh_asset(vertices, [[0, 1, 2], [1, 3, 2]], face_colors=colors)
    dense = sample_dense(asset, 500, seed=0)
    np.testing.assert_array_equal(dense.colors, colors[dense.face_index])


def test_vertex_colours_are_interpolated():
    vertices = [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    asset = _mesh_asset(vertices, [[0, 1, 2]])
    asset.vertex_colors = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    dense = sample_dense(asset, 300, seed=0)
    xyz = asset.denormalize(dense.points)  # barycentric weights of corners 1 and 2 are x and y
    np.testing.assert_allclose(dense.colors[:, 0], np.round(255 * xyz[:, 0]), atol=1)
    np.testing.assert_allclose(dense.colors[:, 1], np.round(255 * xyz[:, 1]), atol=1)


def test_point_cloud_subset_is_seeded_sorted_and_unique(tmp_path):
    from bipart_cli.io import load_asset

    points = np.random.default_rng(0).normal(size=(1000, 3))
    np.save(tmp_path / "p.npy", points)
    asset = load_asset(tmp_path / "p.npy")
    small = sample_dense(asset, 200, seed=5)
    again = sample_dense(asset, 200, seed=5)
    np.testing.assert_array_equal(small.points, again.points)
    # every sampled point is an input point, no repeats
    original = asset.denormalize(small.points)
    nearest = np.linalg.norm(original[:, None] - points[None], axis=2).argmin(1)
    assert len(set(nearest.tolist())) == 200
    assert np.all(np.diff(nearest) > 0)
    whole = sample_dense(asset, 5000)
    assert len(whole) == 1000 and whole.face_index is None


def _naive_fps(points: np.ndarray, n: int, start: int) -> list[int]:
    """Literal farthest point sampling: next = argmax of min distance to the chosen set."""
    chosen = [start]
    for _ in range(n - 1):
        best, best_d = -1, -1.0
        for i, p in enumerate(points):
            d = min(float(((p - points[j]) ** 2).sum()) for j in chosen)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fps_matches_naive_reference(seed):
    points = np.random.default_rng(seed).random((60, 3)).astype(np.float32)
    indices = sample_network_indices(points, n_samples=12, seed=seed)
    assert indices.dtype == np.int64 and indices.shape == (12,)
    assert indices.tolist() == _naive_fps(points.astype(np.float64), 12, int(indices[0]))


def test_numpy_fps_picks_what_the_tensor_fps_picks():
    import torch

    from bipart_cli.fps import farthest_point_indices
    from bipart_cli.geometry import _farthest_point_sample, farthest_point_sample

    points = np.random.default_rng(5).standard_normal((3, 5000, 3)).astype(np.float32)
    starts = torch.tensor([17, 0, 4999])
    per_step = _farthest_point_sample(torch.from_numpy(points), 256, starts)  # tensor ops
    for cloud, start, expected in zip(points, starts.tolist(), per_step, strict=True):
        np.testing.assert_array_equal(farthest_point_indices(cloud, 256, start), expected.numpy())
    # the network's FPS on a CPU is the NumPy one, batched
    network = farthest_point_sample(torch.from_numpy(points), 256, starts)
    torch.testing.assert_close(network, per_step)
    assert network.dtype == torch.long and network.shape == (3, 256)


def test_fps_start_is_seeded():
    points = np.random.default_rng(0).random((500, 3))
    starts = {int(sample_network_indices(points, 8, seed=s)[0]) for s in range(6)}
    assert len(starts) > 1
    np.testing.assert_array_equal(
        sample_network_indices(points, 8, 3), sample_network_indices(points, 8, 3)
    )


def test_dense_then_fps_on_a_generated_shape(chair_scene):
    asset = asset_from_scene(chair_scene)
    dense = sample_dense(asset, 8000, seed=0)
    indices = sample_network_indices(dense.points, 512, seed=0)
    assert len(np.unique(indices)) == 512
    # FPS covers every part of the chair
    assert set(dense.labels[indices].tolist()) == set(range(len(asset.part_names)))


def _farthest_each_time(points: np.ndarray, picks: np.ndarray) -> bool:
    """Whether every pick after the first is a farthest point from the picks before it
    (a slow loop in float64; ties may go to any of the tied points)."""
    points = points.astype(np.float64)
    nearest = np.full(len(points), np.inf)
    for previous, pick in zip(picks[:-1], picks[1:], strict=True):
        nearest = np.minimum(nearest, ((points - points[previous]) ** 2).sum(axis=1))
        if nearest[pick] < nearest.max() * (1 - 1e-5):
            return False
    return True


@pytest.mark.parametrize(
    "cloud",
    [
        lambda rng: rng.standard_normal((12000, 3)) * 100,  # far from unit scale
        lambda rng: np.stack(np.meshgrid(*[np.arange(24)] * 3), -1).reshape(-1, 3) * 0.1,  # ties
        lambda rng: np.c_[rng.random((9000, 2)), np.zeros(9000)],  # flat
        lambda rng: np.repeat(rng.random((3000, 3)), 3, axis=0),  # duplicates
        lambda rng: rng.random((4097, 3)) * 1e-3,  # tiny scale
    ],
    ids=["normal", "grid", "plane", "duplicates", "tiny"],
)
def test_fpsample_picks_a_farthest_point_each_time(cloud):
    from bipart_cli.fps import farthest_points

    points = cloud(np.random.default_rng(3)).astype(np.float32)
    picks = farthest_points(points, 1500, start_index=11)
    assert picks.dtype == np.int64 and picks.shape == (1500,)
    assert len(np.unique(picks)) == 1500  # every cloud has more distinct points
    assert _farthest_each_time(points, picks)
    # and a slow loop misses it when one pick is swapped for a point that is not farthest
    swapped = picks.copy()
    swapped[700] = picks[1]
    assert not _farthest_each_time(points, swapped)


def test_fpsample_picks_what_numpy_picks_from_its_first_pick():
    """Without ties the picks are exactly the plain NumPy FPS started where fpsample started."""
    from bipart_cli.fps import farthest_point_indices, farthest_points

    points = np.random.default_rng(8).standard_normal((20000, 3)).astype(np.float32)
    picks = farthest_points(points, 2048, start_index=123)
    np.testing.assert_array_equal(picks, farthest_point_indices(points, 2048, int(picks[0])))
