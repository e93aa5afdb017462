"""Geometric descriptors: invariances, determinism, and each family against a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path
from scipy.spatial.transform import Rotation

from bipart_cli.descriptors import (
    DESCRIPTOR_NAMES,
    global_distance_features,
    heat_kernel_signature,
    knn_graph,
    local_covariance_features,
    point_descriptors,
    wave_kernel_signature,
)


@pytest.fixture(scope="module")
def chair_points(chair_asset):
    from bipart_cli.io import sample_dense

    return sample_dense(chair_asset, n_points=2048, seed=0).points.astype(np.float64)


def test_shape_names_and_determinism(chair_points):
    first = point_descriptors(chair_points)
    assert first.shape == (2048, len(DESCRIPTOR_NAMES))
    assert first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, point_descriptors(chair_points))


def test_invariant_to_rotation_translation_and_scale(chair_points):
    rotation = Rotation.from_euler("xyz", [0.7, -1.9, 2.4]).as_matrix()
    moved = 3.5 * chair_points @ rotation.T + np.array([4.0, -2.0, 0.5])
    original, transformed = point_descriptors(chair_points), point_descriptors(moved)
    spectral = np.array([name.startswith(("hks", "wks")) for name in DESCRIPTOR_NAMES])
    # kNN, covariance and graph families: equal up to rounding, relative to each column's spread
    spread = original.std(0) + 1e-3
    error = (np.abs(original - transformed).max(0) / spread)[~spectral]
    assert error.max() < 2e-3, np.array(DESCRIPTOR_NAMES)[~spectral][int(error.argmax())]
    # the tufted-cover Laplacian re-triangulates each neighbourhood, so its spectrum moves a
    # little with the pose (the chair's flat boxes have many tied Delaunay choices)
    for column in np.flatnonzero(spectral):
        correlation = np.corrcoef(original[:, column], transformed[:, column])[0, 1]
        assert correlation > 0.95, DESCRIPTOR_NAMES[column]


def test_local_covariance_against_per_point_loop():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(60, 3)) * [1.0, 0.3, 0.05]
    from scipy.spatial import KDTree

    distances, neighbours = KDTree(xyz).query(xyz, k=9)
    fast = local_covariance_features(xyz, neighbours, distances[:, -1])
    for i in range(len(xyz)):
        patch = xyz[neighbours[i]]
        values, vectors = np.linalg.eigh(np.cov(patch.T, bias=True))
        l3, l2, l1 = values
        radial = xyz[i] / np.linalg.norm(xyz[i])
        expected = [
            (l1 - l2) / l1,
            (l2 - l3) / l1,
            l3 / l1,
            l3 / (l1 + l2 + l3),
            abs(vectors[:, 0] @ radial),
            np.log(distances[i, -1]),
        ]
        np.testing.assert_allclose(fast[i], expected, rtol=1e-6, atol=1e-9)


def test_global_distances_against_loop():
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(50, 3))
    fast = global_distance_features(xyz, (0.1, 0.5, 0.9))
    for i in range(len(xyz)):
        distances = [np.linalg.norm(xyz[i] - xyz[j]) for j in range(len(xyz))]
        expected = [np.linalg.norm(xyz[i]), *np.quantile(distances, [0.1, 0.5, 0.9])]
        np.testing.assert_allclose(fast[i], expected, rtol=1e-9)


def test_geodesic_follows_the_surface_not_the_air():
    """On a U-shaped strip, the two arm tips are close in space but far along the strip."""
    from bipart_cli.descriptors import geodesic_features

    t = np.linspace(0, 1, 200)
    left = np.stack([np.zeros_like(t), t * 2, np.zeros_like(t)], 1)
    bottom = np.stack([t * 0.4, np.zeros_like(t), np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, 0.4), t * 2, np.zeros_like(t)], 1)
    xyz = np.concatenate([left, bottom, right])
    from scipy.spatial import KDTree

    distances, neighbours = KDTree(xyz).query(xyz, k=5)
    graph = knn_graph(distances, neighbours)
    full = shortest_path(graph, directed=False)
    tip_a, tip_b = 199, 599
    assert full[tip_a, tip_b] > 4 * np.linalg.norm(xyz[tip_a] - xyz[tip_b])
    features = geodesic_features(xyz, graph, num_sources=len(xyz), quantiles=(0.5,))
    eccentricity = full.mean(0)
    np.testing.assert_allclose(features[:, 0], eccentricity / eccentricity.mean(), rtol=1e-9)
    # the tips are the most eccentric points, the bottom's middle among the least
    assert features[tip_a, 0] > features[300, 0]


def test_disconnected_pieces_give_finite_geodesics():
    from bipart_cli.descriptors import geodesic_features

    rng = np.random.default_rng(2)
    xyz = np.concatenate([rng.normal(size=(100, 3)) * 0.1, rng.normal(size=(100, 3)) * 0.1 + 5])
    from scipy.spatial import KDTree

    distances, neighbours = KDTree(xyz).query(xyz, k=6)
    features = geodesic_features(xyz, knn_graph(distances, neighbours), 16, (0.5,))
    assert np.isfinite(features).all()


def test_heat_and_wave_kernels_against_sums():
    rng = np.random.default_rng(3)
    evals = np.concatenate([[0.0], np.sort(rng.uniform(0.5, 40, 11))])
    evecs = rng.normal(size=(30, 12))
    hks = heat_kernel_signature(evals, evecs, 5)
    times = np.geomspace(4 * np.log(10) / evals[-1], 4 * np.log(10) / evals[1], 5)
    for x in range(30):
        for j, t in enumerate(times):
            value = sum(np.exp(-lam * t) * evecs[x, i] ** 2 for i, lam in enumerate(evals))
            value /= sum(np.exp(-lam * t) for lam in evals)
            assert hks[x, j] == pytest.approx(np.log(value * 30), rel=1e-9)
    wks = wave_kernel_signature(evals, evecs, 4)
    logs = np.log(evals[1:])
    energies = np.linspace(logs[0], logs[-1], 6)[1:-1]
    sigma = 7 * (energies[1] - energies[0])
    for x in range(30):
        for j, e in enumerate(energies):
            w = np.exp(-((e - logs) ** 2) / (2 * sigma**2))
            expected = (w * evecs[x, 1:] ** 2).sum() / w.sum()
            assert wks[x, j] == pytest.approx(np.log(expected * 30), rel=1e-9)


def test_degenerate_and_bad_clouds():
    line = np.stack([np.linspace(0, 1, 64), np.zeros(64), np.zeros(64)], 1)
    assert np.isfinite(point_descriptors(line)).all()
    with pytest.raises(ValueError, match="NaN"):
        point_descriptors(np.full((64, 3), np.nan))
    with pytest.raises(ValueError, match="N >= 16"):
        point_descriptors(np.zeros((5, 3)))


def test_two_small_pieces_near_each_other_still_join_the_largest():
    """Linking each piece to its nearest other piece paired two small ones off (inf geodesics)."""
    from scipy.spatial import KDTree

    from bipart_cli.descriptors import geodesic_features

    rng = np.random.default_rng(4)
    big = rng.normal(size=(300, 3)) * 0.2
    small_a = rng.normal(size=(30, 3)) * 0.02 + [6.0, 0, 0]
    small_b = rng.normal(size=(30, 3)) * 0.02 + [6.3, 0, 0]
    xyz = np.concatenate([big, small_a, small_b])
    distances, neighbours = KDTree(xyz).query(xyz, k=6)
    features = geodesic_features(xyz, knn_graph(distances, neighbours), 32, (0.5,))
    assert np.isfinite(features).all()
